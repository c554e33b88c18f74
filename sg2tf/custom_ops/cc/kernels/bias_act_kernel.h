// Sg2tfBiasAct: fused bias + activation + gain + clamp and its first/second derivatives.
// Contract: ../README.md. This header includes no TF header, so the CUDA side
// (bias_act_kernel.cu.cc) compiles with plain nvcc and tests drive it without TF.

#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_KERNEL_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_KERNEL_H_

#include <cstdint>

#include "kernels/parallel_for.h"

#if defined(__CUDACC__) || GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

namespace sg2tf {

// Values are the `ActSpec.index` of `activation_funcs` in sg2tf/custom_ops/bias_act.py.
enum class Act : int {
  kLinear = 0,
  kRelu = 1,
  kLrelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kElu = 5,
  kSelu = 6,
  kSoftplus = 7,
  kSwish = 8,
};
constexpr int kNumActs = 9;
constexpr int kNumGradModes = 3;  // 0 forward, 1 first derivative, 2 second derivative.

struct BiasActParams {
  int64_t size = 0;      // Elements of x (and of y).
  int64_t channels = 1;  // x.shape[axis]: elements of b when it is present.
  int64_t inner = 1;     // Product of x's dims after `axis`: the stride of the channel index.
  Act act = Act::kLinear;
  int grad = 0;
  float alpha = 0.f;
  float gain = 1.f;
  float clamp = -1.f;  // < 0: no clamp (and no gradient mask).
  bool has_bias = false;
  bool has_xref = false;
  bool has_yref = false;
  bool has_dy = false;
};

// What an activation's derivatives are computed from (bias_act.py `grad_ref`): the
// pre-activation v = xref + b, the output a = yref / gain, or nothing (linear).
enum class ActRef : int { kNone = 0, kX = 1, kY = 2 };

constexpr ActRef ActRefOf(Act act) {
  return act == Act::kLinear ? ActRef::kNone : act == Act::kSwish ? ActRef::kX : ActRef::kY;
}

// The refs a mode/activation must be given; the TF kernel reports a missing one.
inline bool BiasActNeedsXref(const BiasActParams& p) {
  return p.grad > 0 && ActRefOf(p.act) == ActRef::kX;
}
inline bool BiasActNeedsYref(const BiasActParams& p) {
  return p.grad > 0 && ActRefOf(p.act) == ActRef::kY;
}

// CPU implementation on raw host pointers. T: float, Eigen::half or Eigen::bfloat16
// (implemented in bias_act_cpu.h, instantiated in bias_act_kernel.cc). b, xref, yref, dy
// may be null when absent (see the has_* flags). y may alias x (in-place). If db is not null it also receives, in the same
// pass, the sum of y over every axis but `axis` ([channels] elements, accumulated in float
// per shard and in double across shards): the bias gradient when y is a gradient (grad 1/2).
// Returns false, writing nothing, when p is inconsistent (act/grad out of range, or a ref
// the mode needs is absent).
template <typename T>
bool BiasActCpu(const BiasActParams& p, const T* x, const T* b, const T* xref, const T* yref,
                const T* dy, T* y, T* db, const ParallelForFn& parallel_for);

#if defined(__CUDACC__) || GOOGLE_CUDA
// CUDA launcher on raw device pointers; T: float, __half or __nv_bfloat16. Returns the launch
// error (cudaSuccess when the kernel was queued, or when size == 0), or cudaErrorInvalidValue
// for inconsistent p (as BiasActCpu). The kernel is asynchronous on `stream`.
template <typename T>
cudaError_t LaunchBiasAct(const BiasActParams& p, const T* x, const T* b, const T* xref,
                          const T* yref, const T* dy, T* y, cudaStream_t stream);
#endif

}  // namespace sg2tf

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_KERNEL_H_
