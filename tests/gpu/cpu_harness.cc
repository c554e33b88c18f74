// C entry points over the raw-pointer CPU kernels Upfirdn2dCpu and BiasActCpu, so the GPU
// check's driver (run_gpu_check.py --backend=cpu) runs the same sweep through them as
// through the CUDA kernels. The argument layout is the CUDA harnesses' (upfirdn2d_harness.cu,
// bias_act_harness.cu). Where the kernels' definitions come from (build_libs.py):
//   - the op library TensorFlow loads (sg2tf_ops.so, linked): both kernels as shipped;
//   - or the sources: SG2TF_CPU_HARNESS_UPFIRDN2D_IMPL defines Upfirdn2dCpu here from
//     upfirdn2d_cpu.h (TF-free, as upfirdn2d_kernel.cc defines it), and bias_act_kernel.cc is
//     compiled against TF's headers and linked when they are installed (BiasActCpu is
//     defined next to its TF OpKernels).
// SG2TF_CPU_HARNESS_BIAS_ACT says BiasActCpu is linked. The Eigen element types need only
// their names here: they are bit-identical to the 16-bit storage and passed by pointer.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>
#include <type_traits>
#include <vector>

#include "harness_args.h"
#include "kernels/bias_act_kernel.h"
#include "kernels/upfirdn2d_kernel.h"
#ifdef SG2TF_CPU_HARNESS_UPFIRDN2D_IMPL
#include "kernels/upfirdn2d_cpu.h"
#endif

namespace Eigen {
struct half;
struct bfloat16;
}  // namespace Eigen

#ifdef SG2TF_CPU_HARNESS_UPFIRDN2D_IMPL
namespace sg2tf {
namespace {
template <typename Cvt, typename T>
void RunStorage(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                const Upfirdn2dParallelFor& parallel_for) {
  using S = typename Cvt::S;
  upfirdn2d_cpu::RunCpu<Cvt>(p, reinterpret_cast<const S*>(x), f, reinterpret_cast<S*>(y),
                             parallel_for);
}
}  // namespace
template <>
void Upfirdn2dCpu<float>(const Upfirdn2dParams& p, const float* x, const float* f, float* y,
                         const Upfirdn2dParallelFor& pf) {
  RunStorage<upfirdn2d_cpu::F32Storage>(p, x, f, y, pf);
}
template <>
void Upfirdn2dCpu<Eigen::half>(const Upfirdn2dParams& p, const Eigen::half* x, const float* f,
                               Eigen::half* y, const Upfirdn2dParallelFor& pf) {
  RunStorage<upfirdn2d_cpu::F16Storage>(p, x, f, y, pf);
}
template <>
void Upfirdn2dCpu<Eigen::bfloat16>(const Upfirdn2dParams& p, const Eigen::bfloat16* x,
                                   const float* f, Eigen::bfloat16* y,
                                   const Upfirdn2dParallelFor& pf) {
  RunStorage<upfirdn2d_cpu::BF16Storage>(p, x, f, y, pf);
}
}  // namespace sg2tf
#endif  // SG2TF_CPU_HARNESS_UPFIRDN2D_IMPL

namespace {

// TF's ParallelFor hands a kernel arbitrary [begin, end) pieces; so does this one (uneven
// pieces whose boundaries fall anywhere), on up to `threads` threads, so the kernels' range
// splitting is exercised, not just one whole range.
std::function<void(int64_t, int64_t, const std::function<void(int64_t, int64_t)>&)>
ParallelFor(int threads) {
  return [threads](int64_t total, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t pieces = std::min<int64_t>(total, 7);
    std::vector<int64_t> cut(pieces + 1, 0);
    for (int64_t k = 1; k <= pieces; ++k) {
      // Boundaries at k^2/pieces^2 of the total: pieces of different lengths.
      cut[k] = total * k * k / (pieces * pieces);
    }
    cut[pieces] = total;
    const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, pieces)));
    if (workers == 1) {  // inline: no thread start-up in the timings
      for (int64_t k = 0; k < pieces; ++k) {
        if (cut[k + 1] > cut[k]) fn(cut[k], cut[k + 1]);
      }
      return;
    }
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) {
      pool.emplace_back([&, w] {
        for (int64_t k = w; k < pieces; k += workers) {
          if (cut[k + 1] > cut[k]) fn(cut[k], cut[k + 1]);
        }
      });
    }
    for (auto& t : pool) t.join();
  };
}

template <typename T>
void RunUpfirdn(const sg2tf::Upfirdn2dParams& p, const void* x, const float* f, void* y,
                int threads) {
  sg2tf::Upfirdn2dCpu<T>(p, static_cast<const T*>(x), f, static_cast<T*>(y),
                         ParallelFor(threads));
}

}  // namespace

extern "C" {

// Writes [out_h, out_w]; returns 0, or 1 when the output would be empty.
int sg2tf_cpu_upfirdn2d_out_size(const int64_t* args, int64_t* out_hw) {
  const sg2tf::Upfirdn2dParams p = sg2tf_harness::Upfirdn2dParamsFrom(args);
  out_hw[0] = p.out_h;
  out_hw[1] = p.out_w;
  return (p.out_h >= 1 && p.out_w >= 1) ? 0 : 1;
}

// dtype: 0 float32, 1 float16, 2 bfloat16. Returns 0, or 1 for an empty output or an
// unknown dtype (the TF op rejects those before it calls Upfirdn2dCpu).
int sg2tf_cpu_upfirdn2d(int dtype, const int64_t* args, const int64_t* strides, const void* x,
                        const float* f, void* y, int threads) {
  const sg2tf::Upfirdn2dParams p = sg2tf_harness::Upfirdn2dParamsFrom(args, strides);
  if (p.out_h < 1 || p.out_w < 1) return 1;
  if (p.n == 0 || p.c == 0) return 0;
  switch (dtype) {
    case 0: RunUpfirdn<float>(p, x, f, y, threads); return 0;
    case 1: RunUpfirdn<Eigen::half>(p, x, f, y, threads); return 0;
    case 2: RunUpfirdn<Eigen::bfloat16>(p, x, f, y, threads); return 0;
    default: return 1;
  }
}

int sg2tf_cpu_has_bias_act() {
#ifdef SG2TF_CPU_HARNESS_BIAS_ACT
  return 1;
#else
  return 0;
#endif
}

#ifdef SG2TF_CPU_HARNESS_BIAS_ACT
int sg2tf_cpu_bias_act_num_acts() { return sg2tf::kNumActs; }

int sg2tf_cpu_bias_act_ref_kind(int act) {
  return static_cast<int>(sg2tf::ActRefOf(static_cast<sg2tf::Act>(act)));
}

// args: size, channels, inner, act, grad, has_bias, has_xref, has_yref, has_dy;
// fargs: alpha, gain, clamp (as bias_act_harness.cu). Returns 0, or 1 when BiasActCpu
// rejects the parameters (or the dtype is unknown).
int sg2tf_cpu_bias_act(int dtype, const int64_t* a, const float* fa, const void* x,
                       const void* b, const void* xref, const void* yref, const void* dy,
                       void* y, int threads) {
  const sg2tf::BiasActParams p = sg2tf_harness::BiasActParamsFrom(a, fa);
  const auto pf = ParallelFor(threads);
  auto run = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return sg2tf::BiasActCpu<T>(p, static_cast<const T*>(x), static_cast<const T*>(b),
                                static_cast<const T*>(xref), static_cast<const T*>(yref),
                                static_cast<const T*>(dy), static_cast<T*>(y), nullptr, pf);
  };
  bool ok = false;
  switch (dtype) {
    case 0: ok = run(static_cast<float*>(nullptr)); break;
    case 1: ok = run(static_cast<Eigen::half*>(nullptr)); break;
    case 2: ok = run(static_cast<Eigen::bfloat16*>(nullptr)); break;
    default: ok = false;
  }
  return ok ? 0 : 1;
}
#endif  // SG2TF_CPU_HARNESS_BIAS_ACT

}  // extern "C"
