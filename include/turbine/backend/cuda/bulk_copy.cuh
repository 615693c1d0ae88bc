#pragma once
// Hopper (sm_90) bulk copies and transaction barriers, for kernels that stream contiguous global
// memory into shared memory without per-lane copy instructions: one lane asks the copy engine for a
// whole row (cp.async.bulk, any multiple of 16 bytes, 16-byte aligned at both ends), and the
// consumers wait on an mbarrier that completes when all the bytes it expects have landed
// (PTX ISA: "Data Movement and Conversion Instructions: cp.async.bulk", "Parallel Synchronization
// and Communication Instructions: mbarrier").
//
// The pattern (GemvXBulk, gemv.cuh): one thread initializes a barrier for 1 arrival, arrives with
// arrive.expect_tx and the byte count, and asks for the copies, which complete the transaction;
// after a block barrier (the initialization), everyone waits for phase 0 (parity 0). These wrappers
// compile on every architecture; they are executed only on sm_90 and later (callers check the
// device's compute capability; below, they trap).
#include <cstdint>

namespace turbine::cuda::bulk {

/// The 32-bit shared-memory address of a pointer into shared memory.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TURBINE_BULK_SM90 1
#endif

/// mbarrier.init with `count` expected arrivals per phase (one thread; fence_init() and a block
/// barrier before anyone else uses it).
__device__ __forceinline__ void barrier_init(uint64_t* bar, unsigned count) {
#ifdef TURBINE_BULK_SM90
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
#else
  (void)bar, (void)count;
  __trap();
#endif
}

/// Makes barrier initializations visible to the copy engine (the async proxy).
__device__ __forceinline__ void fence_init() {
#ifdef TURBINE_BULK_SM90
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

/// The producer's arrival on a `full` barrier, announcing `bytes` of copies for this phase.
__device__ __forceinline__ void arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#ifdef TURBINE_BULK_SM90
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#else
  (void)bar, (void)bytes;
  __trap();
#endif
}

/// A plain arrival on `bar` (a consumer releasing a ring slot to the producer).
__device__ __forceinline__ void arrive(uint64_t* bar) {
#ifdef TURBINE_BULK_SM90
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#else
  (void)bar;
  __trap();
#endif
}

/// Waits until the phase with this parity has completed (acquire: the stage's bytes are visible).
__device__ __forceinline__ void wait(uint64_t* bar, uint32_t parity) {
#ifdef TURBINE_BULK_SM90
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
#else
  (void)bar, (void)parity;
  __trap();
#endif
}

/// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from global to this block's
/// shared memory, completing that many bytes of `bar`'s transaction.
__device__ __forceinline__ void copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#ifdef TURBINE_BULK_SM90
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
#else
  (void)dst, (void)src, (void)bytes, (void)bar;
  __trap();
#endif
}

#undef TURBINE_BULK_SM90

}  // namespace turbine::cuda::bulk
