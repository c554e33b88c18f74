// The CPU kernels' ParallelForFn (parallel_for.h) over TF's intra-op thread pool: both op
// kernels hand their raw-pointer CPU implementation the same callback.
#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

#include "kernels/parallel_for.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/platform/threadpool.h"

namespace sg2tf {

inline ParallelForFn TfParallelFor(::tensorflow::OpKernelContext* ctx) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [workers](int64_t total, int64_t cost_per_unit,
                   const std::function<void(int64_t, int64_t)>& work) {
    workers->ParallelFor(total, cost_per_unit, work);
  };
}

}  // namespace sg2tf

#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_
