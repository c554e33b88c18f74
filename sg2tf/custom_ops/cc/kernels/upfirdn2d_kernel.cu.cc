// Sg2tfUpfirdn2d CUDA kernel and launcher. No TensorFlow header: compiled by plain nvcc
// (build.py, tests/gpu). Contract: ../README.md.
//
// One thread per output element of an NHWC output row, channels fastest, so a warp reads
// neighbouring channels (coalesced) and shares the filter taps. Each thread walks only
// the non-zero (polyphase) taps of its output sample; arithmetic is float32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "kernels/cuda_types.h"
#include "kernels/upfirdn2d_kernel.h"

namespace sg2tf {
namespace {


// I (int32_t or int64_t) is the type of the per-axis index arithmetic, which has integer
// divisions; memory offsets are always int64_t.
template <typename T, typename I>
__global__ void Upfirdn2dKernel(const Upfirdn2dParams p, const T* __restrict__ x,
                                const float* __restrict__ f, T* __restrict__ y) {
  const I c_count = static_cast<I>(p.c);
  const I row_len = static_cast<I>(p.out_w) * c_count;
  const int64_t rows = p.n * p.out_h;
  for (int64_t row = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; row < rows;
       row += int64_t(gridDim.y) * blockDim.y) {
    const int64_t n = row / p.out_h;
    const I oy = static_cast<I>(row - n * p.out_h);
    const Upfirdn2dTapsT<I> yt = Upfirdn2dAxisTaps<I>(
        oy, static_cast<I>(p.upy), static_cast<I>(p.downy), static_cast<I>(p.pady0),
        static_cast<I>(p.in_h), static_cast<I>(p.fh));
    const T* xn = x + n * p.x_stride_n;
    T* yrow = y + n * p.y_stride_n + int64_t(oy) * p.y_stride_h;
    for (I j = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; j < row_len;
         j += static_cast<I>(gridDim.x) * blockDim.x) {
      const I ox = j / c_count;
      const I c = j - ox * c_count;
      const Upfirdn2dTapsT<I> xt = Upfirdn2dAxisTaps<I>(
          ox, static_cast<I>(p.upx), static_cast<I>(p.downx), static_cast<I>(p.padx0),
          static_cast<I>(p.in_w), static_cast<I>(p.fw));
      float acc = 0.0f;
      const T* xp = xn + int64_t(yt.i0) * p.x_stride_h + int64_t(xt.i0) * p.x_stride_w + c;
      for (I ky = 0; ky < yt.count; ++ky) {
        const I ty = yt.t0 + ky * static_cast<I>(p.upy);
        // Tap t multiplies f reversed (true convolution) unless flip_filter.
        const float* frow = f + int64_t(p.flip_filter ? ty : static_cast<I>(p.fh) - 1 - ty) * p.fw;
        const T* xr = xp + int64_t(ky) * p.x_stride_h;
        for (I kx = 0; kx < xt.count; ++kx) {
          const I tx = xt.t0 + kx * static_cast<I>(p.upx);
          const float w = __ldg(frow + (p.flip_filter ? tx : static_cast<I>(p.fw) - 1 - tx));
          acc = fmaf(w, ToFloat(xr[int64_t(kx) * p.x_stride_w]), acc);
        }
      }
      yrow[int64_t(ox) * p.y_stride_w + c] = FromFloat<T>(acc);
    }
  }
}

// True when every value the per-axis arithmetic can reach fits in int32.
bool FitsInt32(const Upfirdn2dParams& p) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max() / 2;
  const int64_t abs_py0 = p.pady0 < 0 ? -p.pady0 : p.pady0;
  const int64_t abs_px0 = p.padx0 < 0 ? -p.padx0 : p.padx0;
  const int64_t reach_y = p.out_h * p.downy + p.in_h * p.upy + p.fh + abs_py0;
  const int64_t reach_x = p.out_w * p.downx + p.in_w * p.upx + p.fw + abs_px0;
  return reach_y < kMax && reach_x < kMax && p.out_w * p.c < kMax;
}

}  // namespace

template <typename T>
cudaError_t LaunchUpfirdn2d(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                            cudaStream_t stream) {
  if (p.n < 0 || p.c < 0 || p.in_h < 0 || p.in_w < 0 || p.out_h < 1 || p.out_w < 1 ||
      p.fh < 1 || p.fw < 1 || p.upx < 1 || p.upy < 1 || p.downx < 1 || p.downy < 1) {
    return cudaErrorInvalidValue;
  }
  if (p.n == 0 || p.c == 0) return cudaSuccess;
  const int64_t row_len = p.out_w * p.c;
  const int64_t rows = p.n * p.out_h;
  // 256 threads per block; short rows (few channels, narrow images) stack several rows
  // in one block instead of leaving most threads idle.
  int bx = 32;
  while (bx < 256 && bx < row_len) bx *= 2;
  const dim3 block(bx, 256 / bx);
  const int64_t gx = (row_len + bx - 1) / bx;
  const int64_t gy = (rows + block.y - 1) / block.y;
  const dim3 grid(static_cast<unsigned>(gx < (1 << 20) ? gx : (1 << 20)),
                  static_cast<unsigned>(gy < 65535 ? gy : 65535));
  if (FitsInt32(p)) {
    Upfirdn2dKernel<T, int32_t><<<grid, block, 0, stream>>>(p, x, f, y);
  } else {
    Upfirdn2dKernel<T, int64_t><<<grid, block, 0, stream>>>(p, x, f, y);
  }
  return cudaGetLastError();
}

template cudaError_t LaunchUpfirdn2d<float>(const Upfirdn2dParams&, const float*, const float*,
                                            float*, cudaStream_t);
template cudaError_t LaunchUpfirdn2d<__half>(const Upfirdn2dParams&, const __half*, const float*,
                                             __half*, cudaStream_t);
template cudaError_t LaunchUpfirdn2d<__nv_bfloat16>(const Upfirdn2dParams&, const __nv_bfloat16*,
                                                    const float*, __nv_bfloat16*, cudaStream_t);

}  // namespace sg2tf
