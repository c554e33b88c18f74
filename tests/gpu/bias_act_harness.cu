// C entry points around LaunchBiasAct so Python (ctypes + CuPy) can drive the CUDA kernel
// without TensorFlow. Built with bias_act_kernel.cu.cc by build_libs.py.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "harness_args.h"
#include "kernels/bias_act_kernel.h"

namespace {

template <typename T>
cudaError_t Launch(const sg2tf::BiasActParams& p, const void* x, const void* b,
                   const void* xref, const void* yref, const void* dy, void* y,
                   cudaStream_t s) {
  return sg2tf::LaunchBiasAct<T>(p, static_cast<const T*>(x), static_cast<const T*>(b),
                                 static_cast<const T*>(xref), static_cast<const T*>(yref),
                                 static_cast<const T*>(dy), static_cast<T*>(y), s);
}

}  // namespace

extern "C" {

int sg2tf_bias_act_num_acts() { return sg2tf::kNumActs; }

// 0 none, 1 'x' (xref + b), 2 'y' (yref / gain): what act's derivatives read.
int sg2tf_bias_act_ref_kind(int act) {
  return static_cast<int>(sg2tf::ActRefOf(static_cast<sg2tf::Act>(act)));
}

// dtype: 0 float32, 1 float16, 2 bfloat16. args: see harness_args.h; fargs: alpha, gain, clamp.
// Pointers are device pointers (null when absent). Returns a cudaError_t; queues the
// kernel on `stream` without waiting.
int sg2tf_bias_act_launch(int dtype, const int64_t* args, const float* fargs, const void* x,
                          const void* b, const void* xref, const void* yref, const void* dy,
                          void* y, void* stream) {
  const sg2tf::BiasActParams p = sg2tf_harness::BiasActParamsFrom(args, fargs);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case 0:
      return Launch<float>(p, x, b, xref, yref, dy, y, s);
    case 1:
      return Launch<__half>(p, x, b, xref, yref, dy, y, s);
    case 2:
      return Launch<__nv_bfloat16>(p, x, b, xref, yref, dy, y, s);
    default:
      return cudaErrorInvalidValue;
  }
}

const char* sg2tf_bias_act_error_string(int err) {
  return cudaGetErrorString(static_cast<cudaError_t>(err));
}

}  // extern "C"
