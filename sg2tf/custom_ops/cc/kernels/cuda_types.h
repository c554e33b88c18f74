// Element-type glue shared by both ops' CUDA code.
//   - Device code (nvcc): ToFloat / FromFloat<T> between float and float, __half, __nv_bfloat16;
//     all kernel arithmetic is in float32.
//   - TF GPU kernels (g++ with GOOGLE_CUDA): CudaType<T> maps TF's element types to the
//     bit-identical CUDA types handed to the launchers.
// No TF header is included, so the .cu.cc files still compile with plain nvcc.

#ifndef SG2TF_CUSTOM_OPS_CC_KERNELS_CUDA_TYPES_H_
#define SG2TF_CUSTOM_OPS_CC_KERNELS_CUDA_TYPES_H_

#if defined(__CUDACC__) || GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace sg2tf {

#ifdef __CUDACC__
__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
#endif  // __CUDACC__

// TF element type -> CUDA element type (same size and bits); identity for float.
template <typename T>
struct CudaType {
  using type = T;
};

}  // namespace sg2tf

#if GOOGLE_CUDA && !defined(__CUDACC__)
#include "Eigen/Core"

namespace sg2tf {
template <>
struct CudaType<Eigen::half> {
  using type = __half;
};
template <>
struct CudaType<Eigen::bfloat16> {
  using type = __nv_bfloat16;
};
}  // namespace sg2tf
#endif

#endif  // defined(__CUDACC__) || GOOGLE_CUDA
#endif  // SG2TF_CUSTOM_OPS_CC_KERNELS_CUDA_TYPES_H_
