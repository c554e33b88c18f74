// Sg2tfBiasAct on the CPU: the implementation behind BiasActCpu, as templates over TF's
// element types (float, Eigen::half, Eigen::bfloat16; float32 arithmetic). No TensorFlow
// header besides Eigen's 16-bit float types; included by bias_act_kernel.cc, which
// instantiates BiasActCpu and defines the OpKernels (the same pattern as upfirdn2d_cpu.h).
//
// Work is split into blocks of kBlock elements; each block runs a loop specialised at
// compile time for the activation, the derivative mode, the clamp mask and the bias layout
// (SelectRangeFn), so the inner loops vectorise. With db (Sg2tfBiasActReduce) each block is
// summed per channel right after it is written, while it is still in cache.
#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_CPU_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_CPU_H_

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "Eigen/Core"
#include "kernels/bias_act_kernel.h"
#include "kernels/bias_act_math.h"

namespace sg2tf {
namespace bias_act_cpu {

// Tells the compiler the loop has no loop-carried dependence, which stays true when y
// aliases x exactly (in-place): element j is read before it is written.
#if defined(__clang__)
#define SG2TF_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define SG2TF_IVDEP _Pragma("GCC ivdep")
#else
#define SG2TF_IVDEP
#endif

// Elements per parallel-for unit: large enough that per-unit overhead is negligible and
// most spans run the vectorised loop whole.
constexpr int64_t kBlock = 8192;
// Bias tile for the channels-last case: b repeated to at least this many elements, so that
// even a few channels give long contiguous spans.
constexpr int64_t kMinTile = 1024;
// Outputs at least this large bypass the caches (non-temporal stores): they would not stay
// cached for the next op anyway.
constexpr int64_t kStreamBytes = int64_t{16} << 20;

template <typename T>
inline float Load(T v) {
  return static_cast<float>(v);
}

template <typename T>
inline T Store(float v) {
  return static_cast<T>(v);
}

template <typename T>
struct CpuArgs {
  const BiasActParams* p;
  BiasActScalars s;
  const T* x;
  const T* xref;
  const T* yref;
  const T* dy;
  T* y;
  const float* bias;  // float copy of b: tiled (inner == 1) or one per channel (inner > 1).
  int64_t tile_len;
  bool stream;  // Write y with non-temporal stores (float outputs much larger than caches).
};

// The inner loop over n contiguous elements, reading S (T, or float staging buffers) and
// writing D (T, or a float staging buffer). Every choice is a template constant, so each
// instantiation is a straight-line loop that the compiler vectorises.
template <Act A, int G, bool kMask, bool kVecBias, typename S, typename D>
inline void ComputeLoop(int64_t n, const S* x, const float* bvec, float bscalar, const S* xref,
                        const S* yref, const S* dy, D* y, const BiasActScalars& s) {
  constexpr ActRef kRef = ActRefOf(A);
  constexpr bool kReadX = G > 0 && kRef == ActRef::kX;
  constexpr bool kReadY = G > 0 && (kRef == ActRef::kY || kMask);
  constexpr bool kReadDy = G == 2;
  const BiasActScalars sc = s;  // A local copy: provably not aliased by the stores.
  SG2TF_IVDEP
  for (int64_t j = 0; j < n; ++j) {
    const float bias = kVecBias ? bvec[j] : bscalar;
    const float xr = kReadX ? Load(xref[j]) : 0.f;
    const float yr = kReadY ? Load(yref[j]) : 0.f;
    const float d = kReadDy ? Load(dy[j]) : 0.f;
    y[j] = Store<D>(BiasActElement<A>(G, kMask, Load(x[j]), bias, xr, yr, d, sc));
  }
}

// Staging: float chunks small enough to stay in L1.
constexpr int64_t kChunk = 512;

// half -> float and back, 16 at a time with F16C (GCC does not vectorise Eigen::half's
// scalar conversions), rounding to nearest even like Eigen.
inline void ToFloatN(const Eigen::half* src, float* dst, int64_t n) {
  int64_t j = 0;
#if defined(__F16C__) && defined(__AVX__)
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
    _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(h));
  }
#endif
  for (; j < n; ++j) dst[j] = static_cast<float>(src[j]);
}

inline void FromFloatN(const float* src, Eigen::half* dst, int64_t n) {
  int64_t j = 0;
#if defined(__F16C__) && defined(__AVX__)
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), h);
  }
#endif
  for (; j < n; ++j) dst[j] = static_cast<Eigen::half>(src[j]);
}

// Copies a float chunk out with non-temporal stores: for outputs far larger than the
// caches, this saves the read-for-ownership of every destination line (a third of the
// memory traffic of an elementwise op, which is memory bound here).
inline void StreamOut(const float* src, float* dst, int64_t n) {
  int64_t j = 0;
#if defined(__AVX__)
  for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 31) != 0; ++j) dst[j] = src[j];
  for (; j + 8 <= n; j += 8) _mm256_stream_ps(dst + j, _mm256_loadu_ps(src + j));
#endif
  for (; j < n; ++j) dst[j] = src[j];
}

inline void StreamFence() {
#if defined(__AVX__)
  _mm_sfence();  // Non-temporal stores are weakly ordered: publish them before returning.
#endif
}

// One span: direct for float and bfloat16 (GCC vectorises their conversions), through
// float staging buffers for half, and for float outputs that are streamed.
template <typename T, Act A, int G, bool kMask, bool kVecBias>
void RunSpan(int64_t n, const T* x, const float* bvec, float bscalar, const T* xref,
             const T* yref, const T* dy, T* y, const BiasActScalars& s, bool stream) {
  constexpr bool kHalf = std::is_same<T, Eigen::half>::value;
  constexpr bool kFloat = std::is_same<T, float>::value;
  if (!kHalf && !(kFloat && stream)) {
    ComputeLoop<A, G, kMask, kVecBias>(n, x, bvec, bscalar, xref, yref, dy, y, s);
    return;
  }
  constexpr ActRef kRef = ActRefOf(A);
  alignas(64) float out[kChunk];
  for (int64_t off = 0; off < n; off += kChunk) {
    const int64_t m = std::min(kChunk, n - off);
    const float* bv = kVecBias ? bvec + off : nullptr;
    if constexpr (kHalf) {
      alignas(64) float xb[kChunk], xrb[kChunk], yrb[kChunk], dyb[kChunk];
      ToFloatN(x + off, xb, m);
      if (G > 0 && kRef == ActRef::kX) ToFloatN(xref + off, xrb, m);
      if (G > 0 && (kRef == ActRef::kY || kMask)) ToFloatN(yref + off, yrb, m);
      if (G == 2) ToFloatN(dy + off, dyb, m);
      ComputeLoop<A, G, kMask, kVecBias>(m, xb, bv, bscalar, xrb, yrb, dyb, out, s);
      FromFloatN(out, y + off, m);
    } else if constexpr (kFloat) {
      auto at = [off](const T* p) { return p != nullptr ? p + off : nullptr; };
      ComputeLoop<A, G, kMask, kVecBias>(m, x + off, bv, bscalar, at(xref), at(yref), at(dy),
                                         out, s);
      StreamOut(out, y + off, m);
    }
  }
}

template <typename T>
inline const T* Offset(const T* p, int64_t i) {
  return p != nullptr ? p + i : nullptr;
}

// Elements [begin, end), split into spans along which the bias is contiguous or constant.
template <typename T, Act A, int G, bool kMask>
void RunRange(const CpuArgs<T>& a, int64_t begin, int64_t end) {
  const BiasActParams& p = *a.p;
  auto span = [&](int64_t i, int64_t n, const float* bvec, float bscalar) {
    if (bvec != nullptr) {
      RunSpan<T, A, G, kMask, true>(n, a.x + i, bvec, 0.f, Offset(a.xref, i), Offset(a.yref, i),
                                    Offset(a.dy, i), a.y + i, a.s, a.stream);
    } else {
      RunSpan<T, A, G, kMask, false>(n, a.x + i, nullptr, bscalar, Offset(a.xref, i),
                                     Offset(a.yref, i), Offset(a.dy, i), a.y + i, a.s, a.stream);
    }
  };
  // The derivatives of 'y'-ref activations read the output, so they never need b.
  constexpr bool kUsesBias = G == 0 || ActRefOf(A) == ActRef::kX;
  if (!kUsesBias || !p.has_bias) {
    span(begin, end - begin, nullptr, 0.f);
  } else if (p.inner == 1) {  // Channels last (NHWC): the tile lines up with the channels.
    int64_t off = begin % p.channels;
    for (int64_t i = begin; i < end; off = 0) {
      const int64_t n = std::min(end - i, a.tile_len - off);
      span(i, n, a.bias + off, 0.f);
      i += n;
    }
  } else {  // Channel axis before others (e.g. NCHW): b is constant along `inner`.
    for (int64_t i = begin; i < end;) {
      const int64_t row = i / p.inner;
      const int64_t n = std::min(end - i, (row + 1) * p.inner - i);
      span(i, n, nullptr, a.bias[row % p.channels]);
      i += n;
    }
  }
  if (a.stream) StreamFence();
}

template <typename T>
using RangeFn = void (*)(const CpuArgs<T>&, int64_t, int64_t);

template <typename T>
RangeFn<T> SelectRangeFn(const BiasActParams& p, bool mask) {
  return DispatchAct(p.act, [&](auto tag) -> RangeFn<T> {
    constexpr Act A = decltype(tag)::value;
    if (p.grad == 0) return &RunRange<T, A, 0, false>;
    if (p.grad == 1) return mask ? &RunRange<T, A, 1, true> : &RunRange<T, A, 1, false>;
    return mask ? &RunRange<T, A, 2, true> : &RunRange<T, A, 2, false>;
  });
}

// ---------------------------------------------------------------------------------------
// Channel sums of the output (the bias gradient), fused into the pass that writes it: each
// block is summed right after it is computed, while it is still in cache, so db costs no
// extra trip through memory (TF's BiasAddGrad reads the whole gradient again, at ~10 GB/s).

// At most this many shards, each with its own float accumulators (cheap to fold at the end).
constexpr int64_t kMaxReduceShards = 64;
constexpr int64_t kMinShardBlocks = 4;

// acc[j] += y[j] over a span: a straight vectorisable loop.
template <typename T>
inline void AddSpan(const T* y, int64_t n, float* acc) {
  SG2TF_IVDEP
  for (int64_t j = 0; j < n; ++j) acc[j] += Load(y[j]);
}

// The sum of a span, with 8 independent partial sums (vectorisable without -ffast-math).
template <typename T>
inline float SumSpan(const T* y, int64_t n) {
  float part[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) part[k] += Load(y[j + k]);
  }
  for (; j < n; ++j) part[0] += Load(y[j]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// Adds y[begin, end) into acc. Channels last (inner == 1): acc has `acc_len` slots, a
// multiple of the channel count, filled position by position (long contiguous spans even
// for a few channels). Otherwise acc has one slot per channel, constant along `inner`.
template <typename T>
void AccumulateRange(const BiasActParams& p, const T* y, int64_t begin, int64_t end,
                     int64_t acc_len, float* acc) {
  if (p.inner == 1) {
    for (int64_t i = begin; i < end;) {
      const int64_t off = i % acc_len;
      const int64_t n = std::min(end - i, acc_len - off);
      AddSpan(y + i, n, acc + off);
      i += n;
    }
    return;
  }
  for (int64_t i = begin; i < end;) {
    const int64_t row = i / p.inner;
    const int64_t n = std::min(end - i, (row + 1) * p.inner - i);
    acc[row % p.channels] += SumSpan(y + i, n);
    i += n;
  }
}

// Rough CPU cycles per element, for TF's sharding heuristics.
inline int64_t CyclesPerElement(const BiasActParams& p) {
  const bool cheap = p.act == Act::kLinear || p.act == Act::kRelu || p.act == Act::kLrelu;
  return (cheap ? 2 : 30) + 2 * p.grad;
}

template <typename T>
bool RunCpu(const BiasActParams& p, const T* x, const T* b, const T* xref, const T* yref,
                const T* dy, T* y, T* db, const ParallelForFn& parallel_for) {
  if (p.size == 0) {
    if (db != nullptr) std::fill(db, db + p.channels, Store<T>(0.f));
    return true;
  }
  const int act = static_cast<int>(p.act);
  if (act < 0 || act >= kNumActs || p.grad < 0 || p.grad >= kNumGradModes || p.channels < 1 ||
      p.inner < 1 || p.size < 0 || x == nullptr || y == nullptr ||
      (p.has_bias && b == nullptr) || (p.has_xref && xref == nullptr) ||
      (p.has_yref && yref == nullptr) || (p.has_dy && dy == nullptr) ||
      (BiasActNeedsXref(p) && !p.has_xref) || (BiasActNeedsYref(p) && !p.has_yref) ||
      (p.grad == 2 && !p.has_dy)) {
    return false;
  }
  CpuArgs<T> a;
  a.p = &p;
  a.s = MakeBiasActScalars(p);
  if (p.clamp >= 0.f) a.s.clamp = Load(Store<T>(p.clamp));
  a.x = x;
  a.xref = p.has_xref ? xref : nullptr;
  a.yref = p.has_yref ? yref : nullptr;
  a.dy = p.has_dy ? dy : nullptr;
  a.y = y;
  std::vector<float> bias;
  if (p.has_bias) {
    const int64_t c = std::max<int64_t>(p.channels, 1);
    const int64_t reps = p.inner == 1 ? (kMinTile + c - 1) / c : 1;
    bias.resize(c * reps);
    for (int64_t r = 0; r < reps; ++r) {
      for (int64_t i = 0; i < c; ++i) bias[r * c + i] = Load(b[i]);
    }
  }
  a.bias = bias.data();
  a.tile_len = static_cast<int64_t>(bias.size());
  // With db, every block is read back right after it is written: keep it in cache.
  a.stream = db == nullptr && std::is_same<T, float>::value && p.size * sizeof(T) >= kStreamBytes;
  const bool mask = p.grad > 0 && p.clamp >= 0.f && a.yref != nullptr;
  const RangeFn<T> fn = SelectRangeFn<T>(p, mask);
  const int64_t blocks = (p.size + kBlock - 1) / kBlock;
  if (db == nullptr) {
    parallel_for(blocks, kBlock * CyclesPerElement(p), [&](int64_t b0, int64_t b1) {
      fn(a, b0 * kBlock, std::min(b1 * kBlock, p.size));
    });
    return true;
  }
  const int64_t c = p.channels;
  const int64_t acc_len = p.inner == 1 ? c * ((kMinTile + c - 1) / c) : c;
  // At least kMinShardBlocks blocks per shard: every shard adds acc_len floats to zero and
  // to fold, which small tensors would otherwise spend more on than on the sums.
  const int64_t per_shard = std::max<int64_t>(
      kMinShardBlocks, (blocks + kMaxReduceShards - 1) / kMaxReduceShards);
  const int64_t shards = (blocks + per_shard - 1) / per_shard;
  std::vector<float> acc(shards * acc_len, 0.f);
  parallel_for(shards, per_shard * kBlock * (CyclesPerElement(p) + 1),
               [&](int64_t s0, int64_t s1) {
                 for (int64_t s = s0; s < s1; ++s) {
                   const int64_t end = std::min((s + 1) * per_shard * kBlock, p.size);
                   for (int64_t i = s * per_shard * kBlock; i < end; i += kBlock) {
                     const int64_t j = std::min(i + kBlock, end);
                     fn(a, i, j);
                     AccumulateRange(p, y, i, j, acc_len, acc.data() + s * acc_len);
                   }
                 }
               });
  // Fold the shards slot by slot (contiguous, vectorised), then the tile's repeats.
  std::vector<double> total(acc_len, 0.0);
  for (int64_t s = 0; s < shards; ++s) {
    const float* as = acc.data() + s * acc_len;
    for (int64_t k = 0; k < acc_len; ++k) total[k] += as[k];
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (int64_t k = ch; k < acc_len; k += c) sum += total[k];
    db[ch] = Store<T>(static_cast<float>(sum));
  }
  return true;
}

}  // namespace bias_act_cpu
}  // namespace sg2tf

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_BIAS_ACT_CPU_H_
