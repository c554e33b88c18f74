// The argument arrays the ctypes harnesses receive (tests/gpu/backends.py packs them), shared
// by the CUDA harnesses (upfirdn2d_harness.cu, bias_act_harness.cu) and the CPU one
// (cpu_harness.cc) so every backend reads them the same way.
#ifndef SG2TF_TESTS_GPU_HARNESS_ARGS_H_
#define SG2TF_TESTS_GPU_HARNESS_ARGS_H_

#include <cstdint>

#include "kernels/bias_act_kernel.h"
#include "kernels/upfirdn2d_kernel.h"

namespace sg2tf_harness {

// a: n, in_h, in_w, c, fh, fw, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip.
// strides: null (dense NHWC) or x_n, x_h, x_w, y_n, y_h, y_w in elements (views).
inline sg2tf::Upfirdn2dParams Upfirdn2dParamsFrom(const int64_t* a,
                                                  const int64_t* strides = nullptr) {
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
  if (strides != nullptr) {
    p.x_stride_n = strides[0];
    p.x_stride_h = strides[1];
    p.x_stride_w = strides[2];
    p.y_stride_n = strides[3];
    p.y_stride_h = strides[4];
    p.y_stride_w = strides[5];
  }
  return p;
}

// a: size, channels, inner, act, grad, has_bias, has_xref, has_yref, has_dy;
// f: alpha, gain, clamp.
inline sg2tf::BiasActParams BiasActParamsFrom(const int64_t* a, const float* f) {
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

}  // namespace sg2tf_harness

#endif  // SG2TF_TESTS_GPU_HARNESS_ARGS_H_
