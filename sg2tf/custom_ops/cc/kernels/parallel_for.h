// The parallel-for callback both CPU kernels take (no TF header): run work(begin, end) over
// [0, total) split across threads; cost_per_unit is a rough CPU cycle count per unit (TF's
// ParallelFor contract). The op kernels pass TF's thread pool (tf_parallel_for.h); a serial
// one is fine for tests.
#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_PARALLEL_FOR_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

namespace sg2tf {

using ParallelForFn = std::function<void(int64_t total, int64_t cost_per_unit,
                                         const std::function<void(int64_t, int64_t)>& work)>;

}  // namespace sg2tf

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_PARALLEL_FOR_H_
