// Sg2tfUpfirdn2d: parameters, the per-axis tap arithmetic shared by the CPU and CUDA
// kernels, and the raw-pointer entry points. No TensorFlow header, so the CUDA side and the
// standalone tests (tests/gpu) compile without TF. Contract: ../README.md.
#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_KERNEL_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_KERNEL_H_

#include <cstdint>

#include "kernels/parallel_for.h"

#if defined(__CUDACC__)
#define SG2TF_HOST_DEVICE __host__ __device__
#else
#define SG2TF_HOST_DEVICE
#endif

namespace sg2tf {

// Sizes of one call. x is [n, in_h, in_w, c], y is [n, out_h, out_w, c], f is [fh, fw];
// the strides are in elements and let a caller hand in views (C must stay contiguous).
struct Upfirdn2dParams {
  int64_t n = 0, in_h = 0, in_w = 0, c = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t fh = 0, fw = 0;
  int64_t upx = 1, upy = 1, downx = 1, downy = 1;
  int64_t padx0 = 0, padx1 = 0, pady0 = 0, pady1 = 0;
  bool flip_filter = false;
  int64_t x_stride_n = 0, x_stride_h = 0, x_stride_w = 0;  // x_stride_c == 1
  int64_t y_stride_n = 0, y_stride_h = 0, y_stride_w = 0;  // y_stride_c == 1
};

// floor((in*up + p0 + p1 - taps) / down) + 1, or 0 when the output would be empty.
inline int64_t Upfirdn2dOutSize(int64_t in, int64_t up, int64_t down, int64_t p0, int64_t p1,
                                int64_t taps) {
  const int64_t span = in * up + p0 + p1 - taps;
  return span < 0 ? 0 : span / down + 1;
}

// Fills sizes and dense NHWC strides; returns false when the output would be empty.
inline bool Upfirdn2dSetDenseParams(Upfirdn2dParams* p) {
  p->out_h = Upfirdn2dOutSize(p->in_h, p->upy, p->downy, p->pady0, p->pady1, p->fh);
  p->out_w = Upfirdn2dOutSize(p->in_w, p->upx, p->downx, p->padx0, p->padx1, p->fw);
  p->x_stride_w = p->c;
  p->x_stride_h = p->in_w * p->c;
  p->x_stride_n = p->in_h * p->in_w * p->c;
  p->y_stride_w = p->c;
  p->y_stride_h = p->out_w * p->c;
  p->y_stride_n = p->out_h * p->out_w * p->c;
  return p->out_h >= 1 && p->out_w >= 1;
}

// The non-zero taps of output sample `o` along one axis. In the zero-inserted, padded
// signal, tap t of output o reads position o*down + t, i.e. upsampled index
// s + t with s = o*down - p0, which holds an input sample only when (s + t) % up == 0.
// Those taps are t = t0 + k*up reading input i0 + k for k in [0, count).
template <typename I>
struct Upfirdn2dTapsT {
  I i0, t0, count;
};
using Upfirdn2dTaps = Upfirdn2dTapsT<int64_t>;

// I is int64_t, or int32_t on the GPU when every size involved fits (cheaper division).
template <typename I>
SG2TF_HOST_DEVICE inline Upfirdn2dTapsT<I> Upfirdn2dAxisTaps(I o, I up, I down, I p0, I in,
                                                             I taps) {
  const I s = o * down - p0;
  I t = (-s) % up;
  if (t < 0) t += up;
  I i = (s + t) / up;  // exact: s + t is a multiple of up
  if (i < 0) {         // taps before the first input sample read padding
    t += -i * up;
    i = 0;
  }
  if (t >= taps || i >= in) return {0, 0, 0};  // every tap reads padding
  I count = (taps - t + up - 1) / up;
  if (count > in - i) count = in - i;
  return {i, t, count};
}

// The parallel-for callback (parallel_for.h); the old name is kept as an alias.
using Upfirdn2dParallelFor = ParallelForFn;

// CPU: x and y as above, f in host memory. T is float, Eigen::half or Eigen::bfloat16
// (implemented in upfirdn2d_cpu.h, instantiated in upfirdn2d_kernel.cc); float32 arithmetic.
template <typename T>
void Upfirdn2dCpu(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                  const Upfirdn2dParallelFor& parallel_for);

}  // namespace sg2tf

#if defined(GOOGLE_CUDA) || defined(__CUDACC__)
#include <cuda_runtime.h>

namespace sg2tf {

// CUDA: x, f and y in device memory; enqueued on `stream`, returns the launch error.
// T is float, __half or __nv_bfloat16 (instantiated in upfirdn2d_kernel.cu.cc).
template <typename T>
cudaError_t LaunchUpfirdn2d(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                            cudaStream_t stream);

}  // namespace sg2tf
#endif  // GOOGLE_CUDA || __CUDACC__

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_KERNEL_H_
