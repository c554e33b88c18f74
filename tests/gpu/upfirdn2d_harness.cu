// C entry points around LaunchUpfirdn2d so Python (ctypes + CuPy) can drive the CUDA
// kernel without TensorFlow. Built with upfirdn2d_kernel.cu.cc by build_libs.py.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "harness_args.h"
#include "kernels/upfirdn2d_kernel.h"

using sg2tf_harness::Upfirdn2dParamsFrom;

extern "C" {

// Writes [out_h, out_w]; returns 0, or 1 when the output would be empty.
int sg2tf_upfirdn2d_out_size(const int64_t* args, int64_t* out_hw) {
  const sg2tf::Upfirdn2dParams p = Upfirdn2dParamsFrom(args);
  out_hw[0] = p.out_h;
  out_hw[1] = p.out_w;
  return (p.out_h >= 1 && p.out_w >= 1) ? 0 : 1;
}

// dtype: 0 float32, 1 float16, 2 bfloat16. x, f, y: device pointers; strides: host, null
// for dense NHWC (see harness_args.h). Returns a cudaError_t.
int sg2tf_upfirdn2d_launch_strided(int dtype, const int64_t* args, const int64_t* strides,
                                   const void* x, const float* f, void* y, void* stream) {
  const sg2tf::Upfirdn2dParams p = Upfirdn2dParamsFrom(args, strides);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case 0:
      return sg2tf::LaunchUpfirdn2d<float>(p, static_cast<const float*>(x), f,
                                           static_cast<float*>(y), s);
    case 1:
      return sg2tf::LaunchUpfirdn2d<__half>(p, static_cast<const __half*>(x), f,
                                            static_cast<__half*>(y), s);
    case 2:
      return sg2tf::LaunchUpfirdn2d<__nv_bfloat16>(p, static_cast<const __nv_bfloat16*>(x), f,
                                                   static_cast<__nv_bfloat16*>(y), s);
    default:
      return cudaErrorInvalidValue;
  }
}

// Dense NHWC x and y.
int sg2tf_upfirdn2d_launch(int dtype, const int64_t* args, const void* x, const float* f,
                           void* y, void* stream) {
  return sg2tf_upfirdn2d_launch_strided(dtype, args, nullptr, x, f, y, stream);
}

const char* sg2tf_cuda_error_string(int err) {
  return cudaGetErrorString(static_cast<cudaError_t>(err));
}

}  // extern "C"
