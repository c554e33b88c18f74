// Sg2tfUpfirdn2d kernels: Upfirdn2dCpu for TF's types (implementation in
// upfirdn2d_cpu.h), the CPU OpKernel and (under GOOGLE_CUDA) the GPU OpKernel that calls the
// launcher in upfirdn2d_kernel.cu.cc.
#define EIGEN_USE_THREADS
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include "kernels/cuda_types.h"
#include "kernels/upfirdn2d_kernel.h"

#include <functional>

#include "kernels/tf_parallel_for.h"
#include "kernels/upfirdn2d_cpu.h"

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

#if GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace sg2tf {
namespace {

// TF's element types -> the storage types of the CPU implementation (bit-identical).
template <typename T>
struct StorageOf;
template <>
struct StorageOf<float> {
  using type = upfirdn2d_cpu::F32Storage;
};
template <>
struct StorageOf<Eigen::half> {
  using type = upfirdn2d_cpu::F16Storage;
};
template <>
struct StorageOf<Eigen::bfloat16> {
  using type = upfirdn2d_cpu::BF16Storage;
};

}  // namespace

template <typename T>
void Upfirdn2dCpu(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                  const Upfirdn2dParallelFor& parallel_for) {
  using Cvt = typename StorageOf<T>::type;
  static_assert(sizeof(T) == sizeof(typename Cvt::S), "storage size mismatch");
  upfirdn2d_cpu::RunCpu<Cvt>(p, reinterpret_cast<const typename Cvt::S*>(x), f,
                             reinterpret_cast<typename Cvt::S*>(y), parallel_for);
}

#define SG2TF_INSTANTIATE_CPU(T)                                                    \
  template void Upfirdn2dCpu<T>(const Upfirdn2dParams&, const T*, const float*, T*, \
                                const Upfirdn2dParallelFor&);
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
#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;
#endif

template <typename Device, typename T>
struct Upfirdn2dLaunch;

template <typename T>
struct Upfirdn2dLaunch<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const Upfirdn2dParams& p, const T* x, const float* f,
                  T* y) {
    Upfirdn2dCpu<T>(p, x, f, y, TfParallelFor(ctx));
  }
};

#if GOOGLE_CUDA

template <typename T>
struct Upfirdn2dLaunch<GPUDevice, T> {
  void operator()(OpKernelContext* ctx, const Upfirdn2dParams& p, const T* x, const float* f,
                  T* y) {
    using CT = typename CudaType<T>::type;
    static_assert(sizeof(CT) == sizeof(T), "CUDA and TF element types differ in size");
    const cudaError_t err =
        LaunchUpfirdn2d<CT>(p, reinterpret_cast<const CT*>(x), f, reinterpret_cast<CT*>(y),
                            ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, err == cudaSuccess,
                absl::InternalError(absl::StrCat("Sg2tfUpfirdn2d: CUDA kernel launch failed: ",
                                                 cudaGetErrorString(err))));
  }
};
#endif  // GOOGLE_CUDA

template <typename Device, typename T>
class Upfirdn2dOp : public OpKernel {
 public:
  explicit Upfirdn2dOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upx", &upx_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upy", &upy_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downx", &downx_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downy", &downy_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx0", &padx0_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx1", &padx1_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady0", &pady0_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady1", &pady1_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("flip_filter", &flip_filter_));
    OP_REQUIRES(ctx, upx_ >= 1 && upy_ >= 1 && downx_ >= 1 && downy_ >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfUpfirdn2d: up and down factors must be >= 1, got up=(", upx_, ", ",
                    upy_, "), down=(", downx_, ", ", downy_, ")")));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& f = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 4,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfUpfirdn2d: x must be 4-D [N, H, W, C], got shape ",
                    x.shape().DebugString())));
    OP_REQUIRES(ctx, f.dims() == 2 && f.dim_size(0) >= 1 && f.dim_size(1) >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfUpfirdn2d: f must be a non-empty 2-D filter [fh, fw], got shape ",
                    f.shape().DebugString())));
    Upfirdn2dParams p;
    p.n = x.dim_size(0);
    p.in_h = x.dim_size(1);
    p.in_w = x.dim_size(2);
    p.c = x.dim_size(3);
    p.fh = f.dim_size(0);
    p.fw = f.dim_size(1);
    p.upx = upx_;
    p.upy = upy_;
    p.downx = downx_;
    p.downy = downy_;
    p.padx0 = padx0_;
    p.padx1 = padx1_;
    p.pady0 = pady0_;
    p.pady1 = pady1_;
    p.flip_filter = flip_filter_;
    const bool non_empty = Upfirdn2dSetDenseParams(&p);
    OP_REQUIRES(ctx, non_empty,
                absl::InvalidArgumentError(absl::StrCat(
                    "Sg2tfUpfirdn2d: the output would be empty: input H x W = ", p.in_h, " x ",
                    p.in_w, ", up (", upx_, ", ", upy_, "), down (", downx_, ", ", downy_,
                    "), padding x (", padx0_, ", ", padx1_, ") y (", pady0_, ", ", pady1_,
                    "), filter ", p.fh, " x ", p.fw,
                    ": the padded, upsampled input is smaller than the filter. Use more "
                    "padding or a smaller filter.")));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({p.n, p.out_h, p.out_w, p.c}), &y));
    if (y->NumElements() == 0) return;
    Upfirdn2dLaunch<Device, T>()(ctx, p, x.flat<T>().data(), f.flat<float>().data(),
                                 y->flat<T>().data());
  }

 private:
  int64_t upx_, upy_, downx_, downy_, padx0_, padx1_, pady0_, pady1_;
  bool flip_filter_;
};

#define SG2TF_REGISTER_CPU(T)                                                          \
  REGISTER_KERNEL_BUILDER(                                                             \
      Name("Sg2tfUpfirdn2d").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      Upfirdn2dOp<CPUDevice, T>);
SG2TF_REGISTER_CPU(float);
SG2TF_REGISTER_CPU(Eigen::half);
SG2TF_REGISTER_CPU(Eigen::bfloat16);
#undef SG2TF_REGISTER_CPU

#if GOOGLE_CUDA
#define SG2TF_REGISTER_GPU(T)                                                          \
  REGISTER_KERNEL_BUILDER(                                                             \
      Name("Sg2tfUpfirdn2d").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
      Upfirdn2dOp<GPUDevice, T>);
SG2TF_REGISTER_GPU(float);
SG2TF_REGISTER_GPU(Eigen::half);
SG2TF_REGISTER_GPU(Eigen::bfloat16);
#undef SG2TF_REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace
}  // namespace sg2tf
