// The scalar math of Sg2tfBiasAct, shared verbatim by the CPU kernel (g++) and the CUDA
// kernel (nvcc), so the two cannot drift apart. Everything is float32; callers convert
// half/bfloat16 on load and store. Formulas: ../README.md.

#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_MATH_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_MATH_H_

#include <math.h>

#include <type_traits>

#include "kernels/bias_act_kernel.h"

#if defined(__CUDACC__)
#define SG2TF_HD __host__ __device__ __forceinline__
#else
#define SG2TF_HD inline
#endif

namespace sg2tf {

constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluScale = 1.0507009873554805f;
// softplus(v) == v in float32 beyond this, and exp(v) would overflow long before.
constexpr float kSoftplusLinear = 20.f;

// NaN inputs propagate (select conditions are written so that NaN takes the v branch).
// Per activation: Forward(v) on the pre-activation v = x + b (before gain), and its first
// and second derivatives D1/D2 written in terms of r, which is the activation output
// a = yref / gain for ActRef::kY, the pre-activation v = xref + b for ActRef::kX, and
// unused for ActRef::kNone.
template <Act A>
struct ActMath;

template <>
struct ActMath<Act::kLinear> {
  static SG2TF_HD float Forward(float v, float) { return v; }
  static SG2TF_HD float D1(float, float) { return 1.f; }
  static SG2TF_HD float D2(float, float) { return 0.f; }
};

template <>
struct ActMath<Act::kRelu> {
  static SG2TF_HD float Forward(float v, float) { return v < 0.f ? 0.f : v; }
  static SG2TF_HD float D1(float a, float) { return a > 0.f ? 1.f : 0.f; }
  static SG2TF_HD float D2(float, float) { return 0.f; }
};

template <>
struct ActMath<Act::kLrelu> {
  static SG2TF_HD float Forward(float v, float alpha) { return v > 0.f ? v : v * alpha; }
  static SG2TF_HD float D1(float a, float alpha) { return a > 0.f ? 1.f : alpha; }
  static SG2TF_HD float D2(float, float) { return 0.f; }
};

template <>
struct ActMath<Act::kTanh> {
  static SG2TF_HD float Forward(float v, float) { return tanhf(v); }
  static SG2TF_HD float D1(float a, float) { return 1.f - a * a; }
  static SG2TF_HD float D2(float a, float) { return -2.f * a * (1.f - a * a); }
};

template <>
struct ActMath<Act::kSigmoid> {
  static SG2TF_HD float Forward(float v, float) { return 1.f / (1.f + expf(-v)); }
  static SG2TF_HD float D1(float a, float) { return a * (1.f - a); }
  static SG2TF_HD float D2(float a, float) { return a * (1.f - a) * (1.f - 2.f * a); }
};

template <>
struct ActMath<Act::kElu> {
  // alpha is the negative saturation value; min() keeps the unused branch finite.
  static SG2TF_HD float Forward(float v, float alpha) {
    return v < 0.f ? alpha * expm1f(fminf(v, 0.f)) : v;
  }
  static SG2TF_HD float D1(float a, float alpha) { return a >= 0.f ? 1.f : a + alpha; }
  static SG2TF_HD float D2(float a, float alpha) { return a >= 0.f ? 0.f : a + alpha; }
};

template <>
struct ActMath<Act::kSelu> {
  static SG2TF_HD float Forward(float v, float) {
    return v <= 0.f ? kSeluScale * kSeluAlpha * expm1f(fminf(v, 0.f)) : kSeluScale * v;
  }
  static SG2TF_HD float D1(float a, float) {
    return a > 0.f ? kSeluScale : a + kSeluScale * kSeluAlpha;
  }
  static SG2TF_HD float D2(float a, float) { return a > 0.f ? 0.f : a + kSeluScale * kSeluAlpha; }
};

template <>
struct ActMath<Act::kSoftplus> {
  static SG2TF_HD float Forward(float v, float) {
    return v > kSoftplusLinear ? v : log1pf(expf(v));
  }
  // sigmoid(v) == 1 - exp(-softplus(v)).
  static SG2TF_HD float D1(float a, float) { return 1.f - expf(-a); }
  static SG2TF_HD float D2(float a, float) {
    const float d = 1.f - expf(-a);
    return d * (1.f - d);
  }
};

template <>
struct ActMath<Act::kSwish> {
  static SG2TF_HD float Forward(float v, float) { return v / (1.f + expf(-v)); }
  static SG2TF_HD float D1(float v, float) {
    const float sg = 1.f / (1.f + expf(-v));
    return sg * (1.f + v * (1.f - sg));
  }
  static SG2TF_HD float D2(float v, float) {
    const float sg = 1.f / (1.f + expf(-v));
    return sg * (1.f - sg) * (2.f + v * (1.f - 2.f * sg));
  }
};

// Op-level constants, derived once per call from BiasActParams.
struct BiasActScalars {
  float alpha;
  float gain;
  float inv_gain;  // 0 when gain == 0: the result is then 0 rather than NaN.
  float clamp;     // < 0: none. The gradient mask compares yref against it, so callers
                   // round it to the storage type (clamped outputs equal T(clamp)).
  float clamp_hi;  // clamp, or +inf when there is none, so clamping needs no branch.
};

inline BiasActScalars MakeBiasActScalars(const BiasActParams& p) {
  BiasActScalars s;
  s.alpha = p.alpha;
  s.gain = p.gain;
  s.inv_gain = p.gain != 0.f ? 1.f / p.gain : 0.f;
  s.clamp = p.clamp;
  s.clamp_hi = p.clamp >= 0.f ? p.clamp : INFINITY;
  return s;
}

// One output element. grad and use_mask are compile-time constants on the CPU (the branches
// fold away after inlining) and warp-uniform on the GPU. Inputs a mode does not read may
// hold anything (callers pass 0).
//   x:    the input x (grad 0), dy (grad 1) or d_dx (grad 2)
//   bias: b[c], or 0
//   xref, yref: the references at this element; dy: the incoming dy (grad 2 only)
template <Act A>
SG2TF_HD float BiasActElement(int grad, bool use_mask, float x, float bias, float xref,
                              float yref, float dy, const BiasActScalars& s) {
  if (grad == 0) {
    float y = ActMath<A>::Forward(x + bias, s.alpha) * s.gain;
    // Written as selects (not fminf/fmaxf) so that NaN propagates like tf.clip_by_value.
    y = y < -s.clamp_hi ? -s.clamp_hi : y;
    y = y > s.clamp_hi ? s.clamp_hi : y;
    return y;
  }
  constexpr ActRef kRef = ActRefOf(A);
  const float r = kRef == ActRef::kX ? xref + bias : kRef == ActRef::kY ? yref * s.inv_gain : 0.f;
  float out = grad == 1 ? x * s.gain * ActMath<A>::D1(r, s.alpha)
                        : x * dy * s.gain * ActMath<A>::D2(r, s.alpha);
  // Clamped outputs pass no gradient. A select, so inf/NaN in x do not leak through.
  if (use_mask && !(fabsf(yref) < s.clamp)) out = 0.f;
  return out;
}

// Maps a run-time Act to a compile-time one: f(ActTag<A>{}). Callers validate the range
// first; an out-of-range value falls back to linear.
template <Act A>
using ActTag = std::integral_constant<Act, A>;

template <typename F>
inline auto DispatchAct(Act act, F&& f) -> decltype(f(ActTag<Act::kLinear>{})) {
  switch (act) {
    case Act::kRelu: return f(ActTag<Act::kRelu>{});
    case Act::kLrelu: return f(ActTag<Act::kLrelu>{});
    case Act::kTanh: return f(ActTag<Act::kTanh>{});
    case Act::kSigmoid: return f(ActTag<Act::kSigmoid>{});
    case Act::kElu: return f(ActTag<Act::kElu>{});
    case Act::kSelu: return f(ActTag<Act::kSelu>{});
    case Act::kSoftplus: return f(ActTag<Act::kSoftplus>{});
    case Act::kSwish: return f(ActTag<Act::kSwish>{});
    case Act::kLinear:
    default: return f(ActTag<Act::kLinear>{});
  }
}

}  // namespace sg2tf

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_MATH_H_
