#pragma once
// Maps turbine precision tags to CUDA element types and gives fp32 conversions for kernels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../../core/dtype.hpp"

namespace turbine::cuda {

/// Maps a precision tag P to its CUDA element type (specialized for f16, bf16 and f32).
template <class P>
struct ElementOf;
/// f16 is stored as __half.
template <>
struct ElementOf<f16> {
  using type = __half;  ///< the CUDA element type
};
/// bf16 is stored as __nv_bfloat16.
template <>
struct ElementOf<bf16> {
  using type = __nv_bfloat16;  ///< the CUDA element type
};
/// f32 is stored as float.
template <>
struct ElementOf<f32> {
  using type = float;  ///< the CUDA element type
};
/// The CUDA element type of precision tag P (__half, __nv_bfloat16, float).
template <class P>
using element_t = typename ElementOf<P>::type;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

}  // namespace turbine::cuda
