// C entry points around LaunchUpfirdn2d so Python (ctypes + CuPy) can drive the CUDA
// kernel without TensorFlow. Built together with upfirdn2d_kernel.cu.cc by nvcc_util.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/upfirdn2d_kernel.h"

namespace {

// args: n, in_h, in_w, c, fh, fw, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip.
sg2tf::Upfirdn2dParams ParamsFrom(const int64_t* a) {
  sg2tf::Upfirdn2dParams p;
  p.n = a[0];
  p.in_h = a[1];
  p.in_w = a[2];
  p.c = a[3];
  p.fh = a[4];
  p.fw = a[5];
  p.upx = a[6];
  p.upy = a[7];
  p.downx = a[8];
  p.downy = a[9];
  p.padx0 = a[10];
  p.padx1 = a[11];
  p.pady0 = a[12];
  p.pady1 = a[13];
  p.flip_filter = a[14] != 0;
  sg2tf::Upfirdn2dSetDenseParams(&p);
  return p;
}

}  // namespace

extern "C" {

// Writes [out_h, out_w]; returns 0, or 1 when the output would be empty.
int sg2tf_upfirdn2d_out_size(const int64_t* args, int64_t* out_hw) {
  const sg2tf::Upfirdn2dParams p = ParamsFrom(args);
  out_hw[0] = p.out_h;
  out_hw[1] = p.out_w;
  return (p.out_h >= 1 && p.out_w >= 1) ? 0 : 1;
}

// dtype: 0 float32, 1 float16, 2 bfloat16. x, f, y: device pointers. Returns a cudaError_t.
int sg2tf_upfirdn2d_launch(int dtype, const int64_t* args, const void* x, const float* f,
                           void* y, void* stream) {
  const sg2tf::Upfirdn2dParams p = ParamsFrom(args);
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

const char* sg2tf_cuda_error_string(int err) {
  return cudaGetErrorString(static_cast<cudaError_t>(err));
}

}  // extern "C"
