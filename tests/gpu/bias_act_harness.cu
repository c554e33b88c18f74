// C entry points around LaunchBiasAct so Python (ctypes + CuPy) can drive the CUDA kernel
// without TensorFlow. Built together with bias_act_kernel.cu.cc by nvcc_util.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bias_act_kernel.h"

namespace {

// args: size, channels, inner, act, grad, has_bias, has_xref, has_yref, has_dy.
sg2tf::BiasActParams ParamsFrom(const int64_t* a, const float* f) {
  sg2tf::BiasActParams p;
  p.size = a[0];
  p.channels = a[1];
  p.inner = a[2];
  p.act = static_cast<sg2tf::Act>(a[3]);
  p.grad = static_cast<int>(a[4]);
  p.has_bias = a[5] != 0;
  p.has_xref = a[6] != 0;
  p.has_yref = a[7] != 0;
  p.has_dy = a[8] != 0;
  p.alpha = f[0];
  p.gain = f[1];
  p.clamp = f[2];
  return p;
}

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

// dtype: 0 float32, 1 float16, 2 bfloat16. args: see ParamsFrom; fargs: alpha, gain, clamp.
// Pointers are device pointers (null when absent). Returns a cudaError_t; queues the
// kernel on `stream` without waiting.
int sg2tf_bias_act_launch(int dtype, const int64_t* args, const float* fargs, const void* x,
                          const void* b, const void* xref, const void* yref, const void* dy,
                          void* y, void* stream) {
  const sg2tf::BiasActParams p = ParamsFrom(args, fargs);
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
