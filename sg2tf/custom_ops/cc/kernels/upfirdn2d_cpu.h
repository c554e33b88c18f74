// Sg2tfUpfirdn2d on the CPU: the polyphase implementation behind Upfirdn2dCpu, as
// templates over a storage type (float32, or float16/bfloat16 bits). No TensorFlow header;
// included by upfirdn2d_kernel.cc, which maps TF's types onto the storage types.
//
// Work is split over output rows (n, oy). Within a row, the channels of NHWC are
// contiguous, so the inner loops run over 16-wide vectors of channels with float32
// accumulators kept in registers, visiting only the non-zero taps (Upfirdn2dAxisTaps):
//   - PixelVec: one output pixel, any up/down/filter;
//   - BlockVec: kBlock neighbouring pixels of a filter-only pass, sharing loads;
//   - flat rows (RunRowFlat): few channels, vectorized along (pixel, channel) instead.
// Uses GCC/Clang vector extensions; -march decides the instruction set.
#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_CPU_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_CPU_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/upfirdn2d_kernel.h"

#define SG2TF_UPF_INLINE inline __attribute__((always_inline))

// 64-byte vectors passed between inline functions: without AVX-512 GCC notes an ABI
// change that cannot matter here (nothing is exported).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace sg2tf {
namespace upfirdn2d_cpu {

// ---------------------------------------------------------------------------------------
// Storage <-> float32 on one value or on a vector of 16 (GCC vector extensions: the compiler
// keeps the accumulators in registers and picks the widest ISA of -march). The 16-bit
// conversions are integer/float formulas rather than Eigen's or _Float16's scalar ones so
// they vectorize; both round to nearest even and agree bit for bit with Eigen and NumPy.

constexpr int kLanes = 16;
typedef float VF __attribute__((vector_size(kLanes * 4)));
typedef uint32_t VU __attribute__((vector_size(kLanes * 4)));
typedef uint16_t VH __attribute__((vector_size(kLanes * 2)));

template <typename To, typename From>
inline To BitCast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "BitCast size mismatch");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

template <typename U>
inline U Splat(uint32_t v) {
  return U{} + v;
}

inline uint32_t Widen(uint16_t h) { return h; }
inline VU Widen(VH h) { return __builtin_convertvector(h, VU); }
inline uint16_t Narrow(uint32_t u) { return uint16_t(u); }
inline VH Narrow(VU u) { return __builtin_convertvector(u, VH); }

// F is float or VF, U the matching uint32_t or VU holding half bits in the low 16.
template <typename F, typename U>
inline F HalfToFloat(U h) {
  const U sign = (h & 0x8000u) << 16;
  const U em = h & 0x7fffu;
  const U rebiased = (em << 13) + ((127u - 15u) << 23);  // right for normal halves
  const U inf_nan = rebiased + ((128u - 16u) << 23);
  // Subnormal halves: 2^-14 * (1 + m/1024) - 2^-14. Only normal floats take part, so this
  // stays exact under the flush-to-zero / denormals-are-zero mode TF's threads run in.
  const U subnormal = BitCast<U>(BitCast<F>(rebiased + (1u << 23)) - 0x1p-14f);
  const U u = em >= 0x7c00u ? inf_nan : (em < 0x0400u ? subnormal : rebiased);
  return BitCast<F>(u | sign);
}

template <typename F, typename U>
inline U FloatToHalf(F v) {
  U u = BitCast<U>(v);
  const U sign = u & 0x80000000u;
  u ^= sign;
  const U inf_nan = u > 0x7f800000u ? Splat<U>(0x7e00u) : Splat<U>(0x7c00u);
  // Below 2^-14 the result is subnormal: adding 0.5 makes the FPU round the mantissa at
  // the subnormal half's last bit.
  const U subnormal = BitCast<U>(BitCast<F>(u) + 0.5f) - (126u << 23);
  const U normal = (u + ((15u - 127u) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13;
  const U h = u >= (143u << 23) ? inf_nan : (u < (113u << 23) ? subnormal : normal);
  return h | (sign >> 16);
}

template <typename F, typename U>
inline F Bfloat16ToFloat(U b) {
  return BitCast<F>(b << 16);
}

template <typename F, typename U>
inline U FloatToBfloat16(F v) {
  const U u = BitCast<U>(v);
  const U rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const U nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
  return (u & 0x7fffffffu) > 0x7f800000u ? nan : rounded;
}

struct F32Storage {
  using S = float;
  static float Load(const S* p) { return *p; }
  static void Store(S* p, float v) { *p = v; }
  static VF LoadV(const S* p) {
    VF v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void StoreV(S* p, const VF& v) { std::memcpy(p, &v, sizeof(v)); }
};

// The 16-bit formats, stored as their bits; Codec converts (widened) bits to float and back.
template <typename Codec>
struct Bits16Storage {
  using S = uint16_t;
  static float Load(const S* p) { return Codec::template ToFloat<float>(Widen(*p)); }
  static void Store(S* p, float v) { *p = Narrow(Codec::template FromFloat<float, uint32_t>(v)); }
  static VF LoadV(const S* p) {
    VH h;
    std::memcpy(&h, p, sizeof(h));
    return Codec::template ToFloat<VF>(Widen(h));
  }
  static void StoreV(S* p, const VF& v) {
    const VH h = Narrow(Codec::template FromFloat<VF, VU>(v));
    std::memcpy(p, &h, sizeof(h));
  }
};

struct HalfCodec {
  template <typename F, typename U>
  static F ToFloat(U bits) { return HalfToFloat<F>(bits); }
  template <typename F, typename U>
  static U FromFloat(F v) { return FloatToHalf<F, U>(v); }
};

struct Bfloat16Codec {
  template <typename F, typename U>
  static F ToFloat(U bits) { return Bfloat16ToFloat<F>(bits); }
  template <typename F, typename U>
  static U FromFloat(F v) { return FloatToBfloat16<F, U>(v); }
};

using F16Storage = Bits16Storage<HalfCodec>;
using BF16Storage = Bits16Storage<Bfloat16Codec>;

// ---------------------------------------------------------------------------------------
// One output pixel's channels [0, NV * 16): the taps are a (ny x nx) grid of input pixels
// starting at xp (row step sh, column step sw) with weights wp[ky * wsy + kx * wsx].
template <typename Cvt, int NV>
SG2TF_UPF_INLINE void PixelVec(const typename Cvt::S* xp, int64_t sh, int64_t sw, const float* wp,
                               int64_t wsy, int64_t wsx, int64_t ny, int64_t nx,
                               typename Cvt::S* yp) {
  // With fewer than 4 vectors of channels, even and odd column taps go to two sets of
  // accumulators so that there are enough independent multiply-add chains.
  VF acc0[NV], acc1[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) acc0[v] = acc1[v] = VF{};
  for (int64_t ky = 0; ky < ny; ++ky) {
    const typename Cvt::S* xr = xp + ky * sh;
    const float* wr = wp + ky * wsy;
    int64_t kx = 0;
    for (; NV < 4 && kx + 1 < nx; kx += 2) {
      const typename Cvt::S* xs = xr + kx * sw;
      const float w0 = wr[kx * wsx], w1 = wr[(kx + 1) * wsx];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        acc0[v] += w0 * Cvt::LoadV(xs + v * kLanes);
        acc1[v] += w1 * Cvt::LoadV(xs + sw + v * kLanes);
      }
    }
    for (; kx < nx; ++kx) {
      const typename Cvt::S* xs = xr + kx * sw;
      const float w0 = wr[kx * wsx];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc0[v] += w0 * Cvt::LoadV(xs + v * kLanes);
    }
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) Cvt::StoreV(yp + v * kLanes, acc0[v] + acc1[v]);
}

// kBlock consecutive output pixels whose column taps are the same NX weights on inputs
// shifted by one per pixel (the interior of a filter-only pass, upx == downx == 1): each
// input vector is loaded once and feeds every pixel that uses it, cutting the loads per
// multiply-add from 1 to (kBlock + NX - 1) / (kBlock * NX). (With downx == 2 the extra
// address registers made it slower than PixelVec, so downsampling does not use it.)
#if defined(__AVX512F__)
constexpr int kBlock = 4;  // kBlock * NV accumulators must fit in 32 vector registers
#else
constexpr int kBlock = 2;
#endif

template <typename Cvt, int NV, int NX>
SG2TF_UPF_INLINE void BlockVec(const typename Cvt::S* xp, int64_t sh, int64_t sw, const float* wp,
                               int64_t wsy, int64_t ny, int64_t ysw, typename Cvt::S* yp) {
  VF acc[kBlock][NV];
#pragma GCC unroll 16
  for (int b = 0; b < kBlock; ++b) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[b][v] = VF{};
  }
  for (int64_t ky = 0; ky < ny; ++ky) {
    const typename Cvt::S* xr = xp + ky * sh;
    const float* wr = wp + ky * wsy;
#pragma GCC unroll 64
    for (int j = 0; j < kBlock - 1 + NX; ++j) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        const VF xv = Cvt::LoadV(xr + j * sw + v * kLanes);
#pragma GCC unroll 16
        for (int b = 0; b < kBlock; ++b) {
          const int k = j - b;
          if (k >= 0 && k < NX) acc[b][v] += wr[k] * xv;
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int b = 0; b < kBlock; ++b) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) Cvt::StoreV(yp + b * ysw + v * kLanes, acc[b][v]);
  }
}

// The channel tail (fewer than 16 channels).
template <typename Cvt>
SG2TF_UPF_INLINE void PixelTail(const typename Cvt::S* xp, int64_t sh, int64_t sw, const float* wp,
                                int64_t wsy, int64_t wsx, int64_t ny, int64_t nx, int64_t cn,
                                typename Cvt::S* yp) {
  float acc[kLanes];
  for (int64_t c = 0; c < cn; ++c) acc[c] = 0.0f;
  for (int64_t ky = 0; ky < ny; ++ky) {
    for (int64_t kx = 0; kx < nx; ++kx) {
      const typename Cvt::S* xs = xp + ky * sh + kx * sw;
      const float w = wp[ky * wsy + kx * wsx];
      for (int64_t c = 0; c < cn; ++c) acc[c] += w * Cvt::Load(xs + c);
    }
  }
  for (int64_t c = 0; c < cn; ++c) Cvt::Store(yp + c, acc[c]);
}

// Few channels (not a multiple of 16, below 64): vectors over channels would be mostly
// empty, so interior pixels are computed along the flattened (pixel, channel) row instead.
// Take the outputs of the same phase, o' = o0 + q*upx on the grid with down = 1: they use
// the same column taps on input pixels i0 + q + k, so for every tap the inputs are
// contiguous in j = q*C + c. A run of them is filtered with 16-wide vectors into a float
// buffer, then copied to the outputs it holds (every downx-th o'; with downx > 1 this
// computes downx times too many columns, still far cheaper than scalar code).
struct PhaseRun {
  int64_t o0, len;     // virtual outputs o' = o0 + q*upx for q in [0, len)
  int64_t i0, t0, nx;  // column taps: input pixel i0 + q + k, filter column t0 + k*upx
  // The real outputs among them: q = q0 + m*qs is output pixel ox0 + m*oxs.
  int64_t q0, qs, ox0, oxs;
};

// Everything one output row needs; built once per call.
struct RowPlan {
  const Upfirdn2dParams* p;
  const float* g;              // [fh, fw] filter in correlation order
  const Upfirdn2dTaps* xtaps;  // [out_w] column taps, the same for every row
  const uint8_t* block_ok;     // [out_w] BlockVec may run on pixels [ox, ox + kBlock)
  int block_nx;                // 0: no blocking, else NX of BlockVec
  const PhaseRun* runs;        // few-channel path: one run per phase, or none
  int64_t num_runs;
  const uint8_t* in_run;       // [out_w] output pixel is written by a run
  int64_t max_run_len;
};

template <typename Cvt, int NX>
SG2TF_UPF_INLINE void RunBlock(const Upfirdn2dParams& p, const typename Cvt::S* xp, const float* wp,
                               int64_t ny, typename Cvt::S* yp) {
  const int64_t sh = p.x_stride_h, sw = p.x_stride_w, wsy = p.upy * p.fw;
  int64_t c = 0;
  for (; c + 4 * kLanes <= p.c; c += 4 * kLanes) {
    BlockVec<Cvt, 4, NX>(xp + c, sh, sw, wp, wsy, ny, p.y_stride_w, yp + c);
  }
  for (; c + kLanes <= p.c; c += kLanes) {
    BlockVec<Cvt, 1, NX>(xp + c, sh, sw, wp, wsy, ny, p.y_stride_w, yp + c);
  }
  for (int b = 0; c < p.c && b < kBlock; ++b) {
    PixelTail<Cvt>(xp + b * sw + c, sh, sw, wp, wsy, 1, ny, NX, p.c - c,
                   yp + b * p.y_stride_w + c);
  }
}

// All channels of output pixel ox in a row whose row taps are yt.
template <typename Cvt>
SG2TF_UPF_INLINE void RunPixel(const RowPlan& plan, const Upfirdn2dTaps& yt,
                               const typename Cvt::S* xrow, typename Cvt::S* yrow, int64_t ox) {
  const Upfirdn2dParams& p = *plan.p;
  const Upfirdn2dTaps& xt = plan.xtaps[ox];
  const int64_t ny = yt.count, nx = xt.count;  // ny or nx == 0: all taps read padding
  const int64_t wsy = p.upy * p.fw, wsx = p.upx;
  const int64_t sh = p.x_stride_h, sw = p.x_stride_w;
  const typename Cvt::S* xp = xrow + xt.i0 * sw;
  const float* wp = plan.g + yt.t0 * p.fw + xt.t0;
  typename Cvt::S* yp = yrow + ox * p.y_stride_w;
  int64_t c = 0;
  for (; c + 4 * kLanes <= p.c; c += 4 * kLanes) {
    PixelVec<Cvt, 4>(xp + c, sh, sw, wp, wsy, wsx, ny, nx, yp + c);
  }
  if (c + 2 * kLanes <= p.c) {
    PixelVec<Cvt, 2>(xp + c, sh, sw, wp, wsy, wsx, ny, nx, yp + c);
    c += 2 * kLanes;
  }
  if (c + kLanes <= p.c) {
    PixelVec<Cvt, 1>(xp + c, sh, sw, wp, wsy, wsx, ny, nx, yp + c);
    c += kLanes;
  }
  if (c < p.c) PixelTail<Cvt>(xp + c, sh, sw, wp, wsy, wsx, ny, nx, p.c - c, yp + c);
}

template <typename Cvt>
void RunRow(const RowPlan& plan, const typename Cvt::S* x, typename Cvt::S* y, int64_t row) {
  using S = typename Cvt::S;
  const Upfirdn2dParams& p = *plan.p;
  const int64_t n = row / p.out_h, oy = row - n * p.out_h;
  const Upfirdn2dTaps yt = Upfirdn2dAxisTaps(oy, p.upy, p.downy, p.pady0, p.in_h, p.fh);
  S* yrow = y + n * p.y_stride_n + oy * p.y_stride_h;
  const S* xrow = x + n * p.x_stride_n + yt.i0 * p.x_stride_h;
  for (int64_t ox = 0; ox < p.out_w; ++ox) {
    if (plan.block_ok[ox]) {
      const Upfirdn2dTaps& xt = plan.xtaps[ox];
      const S* xp = xrow + xt.i0 * p.x_stride_w;
      const float* wp = plan.g + yt.t0 * p.fw + xt.t0;
      S* yp = yrow + ox * p.y_stride_w;
      switch (plan.block_nx) {
        case 2: RunBlock<Cvt, 2>(p, xp, wp, yt.count, yp); break;
        case 3: RunBlock<Cvt, 3>(p, xp, wp, yt.count, yp); break;
        default: RunBlock<Cvt, 4>(p, xp, wp, yt.count, yp); break;
      }
      ox += kBlock - 1;
      continue;
    }
    RunPixel<Cvt>(plan, yt, xrow, yrow, ox);
  }
}

// NV independent 16-wide chunks of a flattened run (several accumulators hide the
// multiply-add latency); the taps of input row ky, column k are at xs + ky*sh + k*sk.
constexpr int kFlatChunks = 4;

template <typename Cvt, int NV, bool kDirect>
SG2TF_UPF_INLINE void FlatChunks(const typename Cvt::S* xs, int64_t sh, int64_t sk, const float* wp,
                                 int64_t wsy, int64_t wsx, int64_t ny, int64_t nx, float* buf,
                                 typename Cvt::S* yp) {
  VF acc[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) acc[v] = VF{};
  for (int64_t ky = 0; ky < ny; ++ky) {
    for (int64_t k = 0; k < nx; ++k) {
      const float w = wp[ky * wsy + k * wsx];
      const typename Cvt::S* xk = xs + ky * sh + k * sk;
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v] += w * Cvt::LoadV(xk + v * kLanes);
    }
  }
  if (kDirect) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) Cvt::StoreV(yp + v * kLanes, acc[v]);
  } else {
    std::memcpy(buf, acc, sizeof(acc));
  }
}

// The few-channel row (see PhaseRun). kDirect (upx == downx == 1): a run is a contiguous
// stretch of the output row and is stored directly; otherwise it goes through buf
// (max_run_len * C floats) and only the real outputs are copied out.
template <typename Cvt, bool kDirect>
void RunRowFlat(const RowPlan& plan, const typename Cvt::S* x, typename Cvt::S* y, int64_t row,
                float* buf) {
  using S = typename Cvt::S;
  const Upfirdn2dParams& p = *plan.p;
  const int64_t n = row / p.out_h, oy = row - n * p.out_h;
  const Upfirdn2dTaps yt = Upfirdn2dAxisTaps(oy, p.upy, p.downy, p.pady0, p.in_h, p.fh);
  S* yrow = y + n * p.y_stride_n + oy * p.y_stride_h;
  const S* xrow = x + n * p.x_stride_n + yt.i0 * p.x_stride_h;
  const int64_t sh = p.x_stride_h, cc = p.c, wsy = p.upy * p.fw, wsx = p.upx;
  for (int64_t r = 0; r < plan.num_runs; ++r) {
    const PhaseRun& run = plan.runs[r];
    const int64_t len = run.len * cc;
    const S* xr = xrow + run.i0 * cc;
    const float* wp = plan.g + yt.t0 * p.fw + run.t0;
    S* yr = yrow + run.o0 * cc;  // kDirect only
    int64_t j = 0;
    for (; j + kFlatChunks * kLanes <= len; j += kFlatChunks * kLanes) {
      FlatChunks<Cvt, kFlatChunks, kDirect>(xr + j, sh, cc, wp, wsy, wsx, yt.count, run.nx,
                                            buf + j, yr + j);
    }
    for (; j + kLanes <= len; j += kLanes) {
      FlatChunks<Cvt, 1, kDirect>(xr + j, sh, cc, wp, wsy, wsx, yt.count, run.nx, buf + j,
                                  yr + j);
    }
    for (; j < len; ++j) {
      float acc = 0.0f;
      for (int64_t ky = 0; ky < yt.count; ++ky) {
        for (int64_t k = 0; k < run.nx; ++k) {
          acc += wp[ky * wsy + k * wsx] * Cvt::Load(xr + ky * sh + k * cc + j);
        }
      }
      if (kDirect) {
        Cvt::Store(yr + j, acc);
      } else {
        buf[j] = acc;
      }
    }
    if (!kDirect) {
      S* yp = yrow + run.ox0 * p.y_stride_w;
      for (int64_t q = run.q0; q < run.len; q += run.qs, yp += run.oxs * p.y_stride_w) {
        for (int64_t c = 0; c < cc; ++c) Cvt::Store(yp + c, buf[q * cc + c]);
      }
    }
  }
  for (int64_t ox = 0; ox < p.out_w; ++ox) {
    if (!plan.in_run[ox]) RunPixel<Cvt>(plan, yt, xrow, yrow, ox);
  }
}

// The interior runs of the few-channel path, one per phase of o' (grid with down = 1).
inline void PlanRuns(const Upfirdn2dParams& p, std::vector<PhaseRun>* runs,
              std::vector<uint8_t>* in_run) {
  const int64_t virtual_w = (p.out_w - 1) * p.downx + 1;
  int64_t gcd = p.upx, b = p.downx;
  while (b != 0) {
    const int64_t t = gcd % b;
    gcd = b;
    b = t;
  }
  for (int64_t r = 0; r < p.upx && r < virtual_w; ++r) {
    PhaseRun run{};
    for (int64_t o = r; o < virtual_w; o += p.upx) {
      const Upfirdn2dTaps t = Upfirdn2dAxisTaps<int64_t>(o, p.upx, 1, p.padx0, p.in_w, p.fw);
      // Interior: no tap clipped by either border (a left clip moves t0 past upx).
      const bool interior =
          t.count > 0 && t.t0 < p.upx && t.count == (p.fw - t.t0 + p.upx - 1) / p.upx;
      if (interior && run.len > 0 && t.i0 == run.i0 + run.len && t.t0 == run.t0 &&
          t.count == run.nx) {
        ++run.len;
      } else if (interior && run.len == 0) {
        run.o0 = o;
        run.len = 1;
        run.i0 = t.i0;
        run.t0 = t.t0;
        run.nx = t.count;
      } else if (run.len > 0) {
        break;  // the interior of a phase is contiguous; what follows is the right border
      }
    }
    run.q0 = 0;
    while (run.q0 < run.len && (run.o0 + run.q0 * p.upx) % p.downx != 0) ++run.q0;
    if (run.q0 >= run.len) continue;  // no real output in this run
    run.qs = p.downx / gcd;
    run.ox0 = (run.o0 + run.q0 * p.upx) / p.downx;
    run.oxs = p.upx / gcd;
    runs->push_back(run);
    for (int64_t q = run.q0, ox = run.ox0; q < run.len; q += run.qs, ox += run.oxs) {
      (*in_run)[ox] = 1;
    }
  }
}

template <typename Cvt>
void RunCpu(const Upfirdn2dParams& p, const typename Cvt::S* x, const float* f,
            typename Cvt::S* y, const Upfirdn2dParallelFor& parallel_for) {
  // g[ty][tx] multiplies padded-upsampled sample (o*down + t): the filter reversed for a
  // true convolution, as given for correlation (flip_filter).
  std::vector<float> g(p.fh * p.fw);
  for (int64_t ty = 0; ty < p.fh; ++ty) {
    for (int64_t tx = 0; tx < p.fw; ++tx) {
      g[ty * p.fw + tx] = p.flip_filter ? f[ty * p.fw + tx]
                                        : f[(p.fh - 1 - ty) * p.fw + (p.fw - 1 - tx)];
    }
  }
  std::vector<Upfirdn2dTaps> xtaps(p.out_w);
  int64_t tap_sum = 0;
  for (int64_t ox = 0; ox < p.out_w; ++ox) {
    xtaps[ox] = Upfirdn2dAxisTaps(ox, p.upx, p.downx, p.padx0, p.in_w, p.fw);
    tap_sum += xtaps[ox].count;
  }
  const bool flat =
      p.c % kLanes != 0 && p.c < 4 * kLanes && p.x_stride_w == p.c && p.y_stride_w == p.c;
  // Blocks of kBlock pixels sharing the interior column taps (see BlockVec).
  std::vector<uint8_t> block_ok(p.out_w, 0);
  const int block_nx =
      (!flat && p.upx == 1 && p.downx == 1 && p.fw >= 2 && p.fw <= 4) ? int(p.fw) : 0;
  for (int64_t ox = 0; block_nx > 0 && ox + kBlock <= p.out_w; ++ox) {
    bool ok = true;
    for (int b = 0; b < kBlock && ok; ++b) {
      const Upfirdn2dTaps& t = xtaps[ox + b];
      ok = t.count == block_nx && t.t0 == 0 && t.i0 == xtaps[ox].i0 + b;
    }
    block_ok[ox] = ok;
  }
  std::vector<PhaseRun> runs;
  std::vector<uint8_t> in_run(p.out_w, 0);
  int64_t max_run_len = 0;
  if (flat) {
    PlanRuns(p, &runs, &in_run);
    for (const PhaseRun& r : runs) max_run_len = std::max(max_run_len, r.len);
  }
  const RowPlan plan{&p,          g.data(),         xtaps.data(),   block_ok.data(), block_nx,
                     runs.data(), int64_t(runs.size()), in_run.data(), max_run_len};
  const int64_t taps_y = (p.fh + p.upy - 1) / p.upy;
  const int64_t cost_per_row =
      std::max<int64_t>(1, (tap_sum * taps_y + p.out_w) * p.c * (flat ? 2 * p.downx : 2));
  parallel_for(p.n * p.out_h, cost_per_row, [&](int64_t begin, int64_t end) {
    if (flat && p.upx == 1 && p.downx == 1) {
      for (int64_t row = begin; row < end; ++row) {
        RunRowFlat<Cvt, true>(plan, x, y, row, nullptr);
      }
    } else if (flat) {
      std::vector<float> buf(plan.max_run_len * p.c);
      for (int64_t row = begin; row < end; ++row) {
        RunRowFlat<Cvt, false>(plan, x, y, row, buf.data());
      }
    } else {
      for (int64_t row = begin; row < end; ++row) RunRow<Cvt>(plan, x, y, row);
    }
  });
}

}  // namespace upfirdn2d_cpu
}  // namespace sg2tf

#pragma GCC diagnostic pop
#undef SG2TF_UPF_INLINE

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_UPFIRDN2D_CPU_H_
