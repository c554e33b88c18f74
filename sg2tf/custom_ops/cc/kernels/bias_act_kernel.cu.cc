// Sg2tfBiasAct CUDA kernel and launcher. No TF headers: this file compiles with plain nvcc
// and is tested standalone (tests/gpu/test_bias_act_cuda.py). The element math is the one
// the CPU kernel uses (bias_act_math.h).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "kernels/cuda_types.h"
#include "kernels/bias_act_kernel.h"
#include "kernels/bias_act_math.h"

namespace sg2tf {
namespace {

constexpr int kThreads = 256;
// Resident blocks per SM the grid-stride loop aims for; more only adds scheduling.
constexpr int kBlocksPerSm = 8;


// What one launch reads; the flags are uniform over the grid, so their branches cost little.
struct KernelFlags {
  bool use_bias;  // Forward, or a derivative of an x-ref activation, with b present.
  bool read_xref;
  bool read_yref;
  bool use_mask;
};

// Grid-stride loop over all elements. I is int32_t when every index (and the stride
// overshoot) fits, which makes the channel-index division much cheaper than int64.
// x and y may alias (in-place), so they are not __restrict__.
template <typename T, Act A, typename I>
__global__ void __launch_bounds__(kThreads)
    BiasActKernel(I size, I channels, I inner, int grad, KernelFlags f, BiasActScalars s,
                  const T* x, const T* __restrict__ b, const T* __restrict__ xref,
                  const T* __restrict__ yref, const T* __restrict__ dy, T* y) {
  const I stride = static_cast<I>(blockDim.x) * static_cast<I>(gridDim.x);
  for (I i = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + threadIdx.x; i < size;
       i += stride) {
    float bias = 0.f;
    if (f.use_bias) {
      const I c = inner == 1 ? i % channels : (i / inner) % channels;
      bias = ToFloat(b[c]);
    }
    const float xr = f.read_xref ? ToFloat(xref[i]) : 0.f;
    const float yr = f.read_yref ? ToFloat(yref[i]) : 0.f;
    const float d = grad == 2 ? ToFloat(dy[i]) : 0.f;
    y[i] = FromFloat<T>(BiasActElement<A>(grad, f.use_mask, ToFloat(x[i]), bias, xr, yr, d, s));
  }
}

template <typename T, Act A, typename I>
cudaError_t Launch(const BiasActParams& p, const KernelFlags& f, const BiasActScalars& s,
                   int blocks, const T* x, const T* b, const T* xref, const T* yref,
                   const T* dy, T* y, cudaStream_t stream) {
  BiasActKernel<T, A, I><<<blocks, kThreads, 0, stream>>>(
      static_cast<I>(p.size), static_cast<I>(p.channels), static_cast<I>(p.inner), p.grad, f, s,
      x, b, xref, yref, dy, y);
  return cudaGetLastError();
}

template <typename T>
float RoundTo(float v);
template <>
float RoundTo<float>(float v) {
  return v;
}
template <>
float RoundTo<__half>(float v) {
  return __half2float(__float2half_rn(v));
}
template <>
float RoundTo<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

}  // namespace

template <typename T>
cudaError_t LaunchBiasAct(const BiasActParams& p, const T* x, const T* b, const T* xref,
                          const T* yref, const T* dy, T* y, cudaStream_t stream) {
  if (p.size == 0) return cudaSuccess;
  const int act = static_cast<int>(p.act);
  if (act < 0 || act >= kNumActs || p.grad < 0 || p.grad >= kNumGradModes || p.channels < 1 ||
      p.inner < 1 || p.size < 0) {
    return cudaErrorInvalidValue;
  }
  KernelFlags f;
  f.use_bias = p.has_bias && (p.grad == 0 || ActRefOf(p.act) == ActRef::kX);
  f.read_xref = BiasActNeedsXref(p);
  f.read_yref = p.grad > 0 && p.has_yref;
  f.use_mask = p.grad > 0 && p.has_yref && p.clamp >= 0.f;
  if (x == nullptr || y == nullptr || (f.use_bias && b == nullptr) ||
      (f.read_xref && (!p.has_xref || xref == nullptr)) ||
      (BiasActNeedsYref(p) && !f.read_yref) || (f.read_yref && yref == nullptr) ||
      (p.grad == 2 && (!p.has_dy || dy == nullptr))) {
    return cudaErrorInvalidValue;
  }
  BiasActScalars s = MakeBiasActScalars(p);
  // Clamped outputs were stored as T(clamp); compare against exactly that.
  if (p.clamp >= 0.f) s.clamp = RoundTo<T>(p.clamp);

  int device = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  const int64_t want = (p.size + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(std::min<int64_t>(want, int64_t{sms} * kBlocksPerSm));
  const bool small = p.size + int64_t{blocks} * kThreads <= INT32_MAX;
  return DispatchAct(p.act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    return small ? Launch<T, A, int32_t>(p, f, s, blocks, x, b, xref, yref, dy, y, stream)
                 : Launch<T, A, int64_t>(p, f, s, blocks, x, b, xref, yref, dy, y, stream);
  });
}

template cudaError_t LaunchBiasAct<float>(const BiasActParams&, const float*, const float*,
                                          const float*, const float*, const float*, float*,
                                          cudaStream_t);
template cudaError_t LaunchBiasAct<__half>(const BiasActParams&, const __half*, const __half*,
                                           const __half*, const __half*, const __half*, __half*,
                                           cudaStream_t);
template cudaError_t LaunchBiasAct<__nv_bfloat16>(const BiasActParams&, const __nv_bfloat16*,
                                                  const __nv_bfloat16*, const __nv_bfloat16*,
                                                  const __nv_bfloat16*, const __nv_bfloat16*,
                                                  __nv_bfloat16*, cudaStream_t);

}  // namespace sg2tf
