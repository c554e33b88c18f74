// Sg2tfBiasAct kernels: BiasActCpu for TF's types (implementation in bias_act_cpu.h), the
// CPU OpKernels and (under GOOGLE_CUDA) the GPU OpKernel that calls the launcher in
// bias_act_kernel.cu.cc.
#define EIGEN_USE_THREADS
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include "kernels/bias_act_kernel.h"
#include "kernels/cuda_types.h"

#include <algorithm>

#include "kernels/bias_act_cpu.h"
#include "kernels/tf_parallel_for.h"

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace sg2tf {

template <typename T>
bool BiasActCpu(const BiasActParams& p, const T* x, const T* b, const T* xref, const T* yref,
                const T* dy, T* y, T* db, const ParallelForFn& parallel_for) {
  return bias_act_cpu::RunCpu<T>(p, x, b, xref, yref, dy, y, db, parallel_for);
}

#define SG2TF_INSTANTIATE_CPU(T)                                                           \
  template bool BiasActCpu<T>(const BiasActParams&, const T*, const T*, const T*, const T*, \
                              const T*, T*, T*, const ParallelForFn&);
SG2TF_INSTANTIATE_CPU(float)
SG2TF_INSTANTIATE_CPU(Eigen::half)
SG2TF_INSTANTIATE_CPU(Eigen::bfloat16)
#undef SG2TF_INSTANTIATE_CPU

// ---------------------------------------------------------------------------------------
// TF OpKernels.
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using CPUDevice = Eigen::ThreadPoolDevice;

const char* const kActNames[kNumActs] = {"linear", "relu", "lrelu", "tanh", "sigmoid",
                                         "elu", "selu", "softplus", "swish"};

template <typename Device, typename T>
struct BiasActLaunch;

template <typename T>
struct BiasActLaunch<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const BiasActParams& p, const T* x, const T* b,
                  const T* xref, const T* yref, const T* dy, T* y, T* db) {
    const bool ok = BiasActCpu<T>(p, x, b, xref, yref, dy, y, db, TfParallelFor(ctx));
    // Compute() validated everything BiasActCpu checks, so this is an internal error.
    OP_REQUIRES(ctx, ok, absl::InternalError("Sg2tfBiasAct: inconsistent CPU parameters"));
  }
};

// kReduce: the Sg2tfBiasActReduce variant, which also outputs db (the channel sums of y).
template <typename Device, typename T, bool kReduce>
class BiasActOp : public OpKernel {
 public:
  explicit BiasActOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    int act = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("act", &act));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("grad", &grad_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("alpha", &alpha_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &gain_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clamp", &clamp_));
    OP_REQUIRES(ctx, act >= 0 && act < kNumActs,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: act=", act, " is not an activation index; expected 0..",
                    kNumActs - 1)));
    OP_REQUIRES(ctx, grad_ >= 0 && grad_ < kNumGradModes,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: grad=", grad_, " is not a mode; expected 0, 1 or 2")));
    OP_REQUIRES(ctx, axis_ >= 0,
                absl::InvalidArgumentError(
                    absl::StrCat("Sg2tfBiasAct: axis=", axis_, " must be >= 0")));
    act_ = static_cast<Act>(act);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& b = ctx->input(1);
    const int rank = x.dims();
    OP_REQUIRES(ctx, axis_ < std::max(rank, 1),
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: axis=", axis_, " is out of range for x of shape ",
                    x.shape().DebugString(), " (rank ", rank, ")")));
    BiasActParams p;
    p.size = x.NumElements();
    p.channels = rank > 0 ? x.dim_size(axis_) : 1;
    for (int d = axis_ + 1; d < rank; ++d) p.inner *= x.dim_size(d);
    p.act = act_;
    p.grad = grad_;
    p.alpha = alpha_;
    p.gain = gain_;
    p.clamp = clamp_;

    OP_REQUIRES(ctx, b.dims() == 1 && (b.dim_size(0) == 0 || b.dim_size(0) == p.channels),
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: b has shape ", b.shape().DebugString(), " (",
                    b.NumElements(), " elements) but x.shape[", axis_, "] = ", p.channels,
                    " (x shape ", x.shape().DebugString(), "); b must have ", p.channels,
                    " elements, or shape [0] for no bias")));
    p.has_bias = b.NumElements() > 0;
    const char* const names[3] = {"xref", "yref", "dy"};
    bool present[3];
    for (int k = 0; k < 3; ++k) {
      const Tensor& t = ctx->input(2 + k);
      const bool empty = t.dims() == 1 && t.dim_size(0) == 0;
      OP_REQUIRES(ctx, empty || t.shape() == x.shape(),
                  absl::InvalidArgumentError(absl::StrCat(
                      "Sg2tfBiasAct: ", names[k], " has shape ", t.shape().DebugString(),
                      "; it must have x's shape ", x.shape().DebugString(),
                      " or be empty (shape [0])")));
      present[k] = !empty || x.shape() == t.shape();
    }
    p.has_xref = present[0];
    p.has_yref = present[1];
    p.has_dy = present[2];
    const char* act_name = kActNames[static_cast<int>(act_)];
    OP_REQUIRES(ctx, !BiasActNeedsXref(p) || p.has_xref,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: act=", act_name, " with grad=", grad_,
                    " reads xref (the input x), but xref is empty; pass x's shape ",
                    x.shape().DebugString())));
    OP_REQUIRES(ctx, !BiasActNeedsYref(p) || p.has_yref,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: act=", act_name, " with grad=", grad_,
                    " reads yref (the forward output), but yref is empty; pass x's shape ",
                    x.shape().DebugString())));
    OP_REQUIRES(ctx, grad_ != 2 || p.has_dy,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfBiasAct: grad=2 reads dy, but dy is empty; pass x's shape ",
                    x.shape().DebugString())));

    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, x.shape(), &y));
    Tensor* db = nullptr;
    if (kReduce) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({p.channels}), &db));
    }
    if (p.size == 0 && !kReduce) return;
    BiasActLaunch<Device, T>()(ctx, p, x.flat<T>().data(), b.flat<T>().data(),
                               Data(ctx->input(2), p.has_xref), Data(ctx->input(3), p.has_yref),
                               Data(ctx->input(4), p.has_dy), y->flat<T>().data(),
                               kReduce ? db->flat<T>().data() : nullptr);
  }

 private:
  static const T* Data(const Tensor& t, bool present) {
    return present ? t.flat<T>().data() : nullptr;
  }

  Act act_ = Act::kLinear;
  int grad_ = 0;
  int axis_ = 0;
  float alpha_ = 0.f;
  float gain_ = 1.f;
  float clamp_ = -1.f;
};

#define SG2TF_REGISTER_CPU(T)                                                              \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("Sg2tfBiasAct").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),       \
      BiasActOp<CPUDevice, T, false>);                                                     \
  REGISTER_KERNEL_BUILDER(                                                                 \
      Name("Sg2tfBiasActReduce").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      BiasActOp<CPUDevice, T, true>);
SG2TF_REGISTER_CPU(float);
SG2TF_REGISTER_CPU(Eigen::half);
SG2TF_REGISTER_CPU(Eigen::bfloat16);
#undef SG2TF_REGISTER_CPU

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;

template <typename T>
struct BiasActLaunch<GPUDevice, T> {
  void operator()(OpKernelContext* ctx, const BiasActParams& p, const T* x, const T* b,
                  const T* xref, const T* yref, const T* dy, T* y, T* /*db*/) {
    if (p.size == 0) return;
    using C = typename CudaType<T>::type;
    static_assert(sizeof(C) == sizeof(T), "TF and CUDA element types must match in size");
    auto cast = [](const T* v) { return reinterpret_cast<const C*>(v); };
    const cudaError_t err = LaunchBiasAct<C>(p, cast(x), cast(b), cast(xref), cast(yref),
                                             cast(dy), reinterpret_cast<C*>(y),
                                             ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, err == cudaSuccess,
                absl::InternalError(absl::StrCat("Sg2tfBiasAct: CUDA kernel launch failed: ",
                                                 cudaGetErrorString(err))));
  }
};

#define SG2TF_REGISTER_GPU(T)                                                        \
  REGISTER_KERNEL_BUILDER(                                                           \
      Name("Sg2tfBiasAct").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
      BiasActOp<GPUDevice, T, false>);
SG2TF_REGISTER_GPU(float);
SG2TF_REGISTER_GPU(Eigen::half);
SG2TF_REGISTER_GPU(Eigen::bfloat16);
#undef SG2TF_REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace
}  // namespace sg2tf
