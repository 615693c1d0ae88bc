#pragma once
// 16-byte vector access shared by the memory-bound kernels: eight elements per access, converted to
// and from fp32 registers. A row of fp16/bf16 moves as one uint4, a row of float as two float4.
#include <atomic>
#include <concepts>
#include <cstdint>
#include <utility>

#include "check.cuh"
#include "types.cuh"

namespace turbine::cuda {

/// The 16-bit element types the kernels are instantiated for.
template <class T>
concept HalfElement = std::same_as<T, __half> || std::same_as<T, __nv_bfloat16>;

/// Element types a kernel may read or write as activations (the fp32 residual stream included).
template <class T>
concept VecElement = HalfElement<T> || std::same_as<T, float>;

/// Ceil(a / b) for positive sizes on the host.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

namespace vec {

/// 16-byte load that bypasses L1: weights are read once per call, keep L1 for the activations.
__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

/// 16-byte read-only load through L1 (activations reused by neighbouring blocks). volatile, so it
/// is never hoisted above a pdl_wait().
__device__ __forceinline__ uint4 load_nc(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}

/// Unpacks eight 16-bit elements held in a uint4 into fp32.
template <HalfElement T>
__device__ __forceinline__ void unpack8(const uint4& u, float (&v)[8]) {
  const T* h = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_float(h[i]);
}

/// Packs eight fp32 values into eight 16-bit elements (round to nearest even).
template <HalfElement T>
__device__ __forceinline__ uint4 pack8(const float (&v)[8]) {
  uint4 u;
  T* h = reinterpret_cast<T*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) h[i] = from_float<T>(v[i]);
  return u;
}

/// v[0..8) = p[0..8) in fp32; p is 16-byte aligned.
template <VecElement T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (std::same_as<T, float>) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    unpack8<T>(*reinterpret_cast<const uint4*>(p), v);
  }
}

/// p[0..8) = v[0..8) rounded to T.
template <VecElement T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
  if constexpr (std::same_as<T, float>) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    *reinterpret_cast<uint4*>(p) = pack8<T>(v);
  }
}

}  // namespace vec

/// Programmatic dependent launch (sm_90+; no-ops before). A kernel calls pdl_launch_dependents() to
/// let the next kernel of the stream, if launched with the programmatic-serialization attribute,
/// start once every block of this one is running; that kernel calls pdl_wait() before it touches
/// anything this one writes (the wait returns when this grid has finished and its writes are visible).
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// An attribute of the current device (SM count, shared-memory limits), cached per device: the
/// launchers ask on every call.
template <cudaDeviceAttr kAttr>
int device_attribute() {
  static std::atomic<int> of[64];
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  int v = of[dev & 63].load(std::memory_order_relaxed);
  if (v == 0) {
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&v, kAttr, dev));
    of[dev & 63].store(v, std::memory_order_relaxed);
  }
  return v;
}

/// The current device's SM count.
inline int device_sm_count() { return device_attribute<cudaDevAttrMultiProcessorCount>(); }

/// Whether the current device supports programmatic dependent launch (compute capability >= 9.0).
inline bool pdl_available() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major >= 9;
}

/// Launches `kernel` on `stream`, with programmatic dependent launch when `pdl` is set (the kernel
/// must then call pdl_wait() before it touches what the previous kernel of the stream writes).
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                   Args&&... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = pdl ? 1 : 0;
  TURBINE_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

/// Raises a kernel's dynamic shared-memory limit to `bytes` once per device (`raised` is a bit per
/// device, one static per kernel instantiation).
template <class Kernel>
void raise_dynamic_smem(std::atomic<uint64_t>& raised, Kernel kernel, size_t bytes) {
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = uint64_t(1) << (dev & 63);
  if (raised.load(std::memory_order_acquire) & bit) return;
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  raised.fetch_or(bit, std::memory_order_release);
}

/// Whether a device pointer is aligned for 16-byte vector access of its rows.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace turbine::cuda
