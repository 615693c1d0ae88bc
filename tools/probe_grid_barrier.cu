// Probe: what one grid barrier of a persistent kernel costs, alone and between phases of a weight
// stream (a measurement, not a test). One block an SM of 384 threads (the persistent decode
// kernel's shape) runs `phases` phases; in each, the grid streams `bytes` of a 2 GiB buffer (16-byte
// non-coherent loads, four in flight a thread, so that nothing is an L2 hit), then waits at a
// barrier of one of these forms:
//   none        no barrier: the phases run back to back (the stream alone)
//   generation  thread 0: acquire-read the generation, fence, atomicAdd the count; the last arrival
//               resets the count, fences and bumps the generation; the rest spin on the generation
//               (decode_persistent.cuh's barrier until 2026-12-07 evening)
//   flip        thread 0: one red.release.gpu.add on a single word, so that the word gains exactly
//               2^31 once every block has arrived (block 0 adds 2^31 - (grid - 1), the rest add 1);
//               the rest spin with acquire loads until its top bit differs from the one they read
//               at the kernel's start (one atomic on the critical path, no reset)
//   coop        cooperative_groups::this_grid().sync() under a cooperative launch
// Each block writes its phase number before the barrier and reads its neighbour's after it, so a
// barrier that lets a block through early shows as STALE. Prints us a phase and the barrier's share
// (the phase time less the "none" time). Build: nvcc -O3 -std=c++20 -arch=sm_90a tools/probe_grid_barrier.cu
#include <cooperative_groups.h>
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

#include "probe_check.cuh"

enum Mode { kNone = 0, kGeneration = 1, kFlip = 2, kCoop = 3 };
constexpr int kThreads = 384;

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void generation_barrier(unsigned* bar) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned gen = ld_acquire(bar + 1);
    __threadfence();
    if (atomicAdd(bar, 1u) == gridDim.x - 1) {
      atomicExch(bar, 0u);
      __threadfence();
      atomicAdd(bar + 1, 1u);
    } else {
      while (ld_acquire(bar + 1) == gen) {
      }
    }
    __threadfence();
  }
  __syncthreads();
}

__device__ __forceinline__ void flip_barrier(unsigned* word, unsigned& phase_bit) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(word), "r"(add) : "memory");
    while ((ld_acquire(word) >> 31) == phase_bit) {
    }
    phase_bit ^= 1u;
  }
  __syncthreads();
}

template <int kMode>
__global__ void __launch_bounds__(kThreads, 1)
    phases_kernel(const uint4* w, size_t w_vecs, int phases, size_t vecs_per_phase, unsigned* bar, int* slots,
                  int* stale, unsigned* sink) {
  unsigned phase_bit = 0;
  if (kMode == kFlip && threadIdx.x == 0) phase_bit = *reinterpret_cast<volatile unsigned*>(bar + 4) >> 31;
  const size_t nthreads = size_t(gridDim.x) * kThreads;
  const size_t tid = size_t(blockIdx.x) * kThreads + threadIdx.x;
  unsigned acc = 0;
  int bad = 0;
  for (int p = 0; p < phases; ++p) {
    const size_t base = (size_t(p) * vecs_per_phase) % (w_vecs - vecs_per_phase);
    for (size_t i = tid; i < vecs_per_phase; i += 4 * nthreads) {
      uint4 v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        v[j] = i + j * nthreads < vecs_per_phase ? __ldg(w + base + i + j * nthreads) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int j = 0; j < 4; ++j) acc ^= v[j].x + v[j].y + v[j].z + v[j].w;
    }
    if (kMode == kNone) continue;
    if (threadIdx.x == 0) slots[blockIdx.x] = p + 1;
    if (kMode == kGeneration) generation_barrier(bar);
    if (kMode == kFlip) flip_barrier(bar + 4, phase_bit);
    if (kMode == kCoop) cooperative_groups::this_grid().sync();
    if (threadIdx.x == 0) bad += slots[(blockIdx.x + 1) % gridDim.x] < p + 1;
  }
  if (acc == 0x12345678u) sink[0] = acc;  // keeps the loads
  if (threadIdx.x == 0 && bad) atomicAdd(stale, bad);
}

int main() {
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int blocks = prop.multiProcessorCount;
  const size_t w_bytes = size_t(2) << 30;
  uint4* w;
  unsigned *bar, *sink;
  int *slots, *stale;
  CHECK(cudaMalloc(&w, w_bytes));
  CHECK(cudaMemset(w, 1, w_bytes));
  CHECK(cudaMalloc(&bar, 64));
  CHECK(cudaMemset(bar, 0, 64));
  CHECK(cudaMalloc(&sink, 64));
  CHECK(cudaMalloc(&slots, blocks * sizeof(int)));
  CHECK(cudaMalloc(&stale, sizeof(int)));
  CHECK(cudaMemset(stale, 0, sizeof(int)));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  std::printf("%s, %d SMs, one block an SM of %d threads\n", prop.name, blocks, kThreads);
  std::printf("%-11s %10s %8s %12s %14s %10s %8s\n", "barrier", "KB/phase", "phases", "us/phase", "barrier us", "GB/s",
              "check");
  const char* names[] = {"none", "generation", "flip", "coop"};
  for (size_t kb : {size_t(0), size_t(256), size_t(2048), size_t(8192), size_t(32768)}) {
    const int phases = kb >= 8192 ? 200 : 1000;
    const size_t vpp = kb * 1024 / 16;
    float none_us = 0;
    for (int mode = 0; mode < 4; ++mode) {
      CHECK(cudaMemset(slots, 0, blocks * sizeof(int)));
      CHECK(cudaMemset(stale, 0, sizeof(int)));
      const uint4* wc = w;
      size_t w_vecs = w_bytes / 16;
      void* args[] = {&wc, &w_vecs, const_cast<int*>(&phases), const_cast<size_t*>(&vpp), &bar, &slots, &stale, &sink};
      auto launch = [&] {
        if (mode == kNone) phases_kernel<kNone><<<blocks, kThreads, 0, s>>>(w, w_vecs, phases, vpp, bar, slots, stale, sink);
        if (mode == kGeneration)
          phases_kernel<kGeneration><<<blocks, kThreads, 0, s>>>(w, w_vecs, phases, vpp, bar, slots, stale, sink);
        if (mode == kFlip) phases_kernel<kFlip><<<blocks, kThreads, 0, s>>>(w, w_vecs, phases, vpp, bar, slots, stale, sink);
        if (mode == kCoop)
          CHECK(cudaLaunchCooperativeKernel((const void*)phases_kernel<kCoop>, blocks, kThreads, args, 0, s));
        CHECK(cudaGetLastError());
      };
      launch();  // warm-up (and slots back to a clean start for the check below)
      CHECK(cudaStreamSynchronize(s));
      CHECK(cudaMemset(slots, 0, blocks * sizeof(int)));
      CHECK(cudaMemset(stale, 0, sizeof(int)));
      cudaEvent_t a, b;
      CHECK(cudaEventCreate(&a));
      CHECK(cudaEventCreate(&b));
      CHECK(cudaEventRecord(a, s));
      launch();
      CHECK(cudaEventRecord(b, s));
      CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, a, b));
      int h_stale = 0;
      CHECK(cudaMemcpy(&h_stale, stale, sizeof(int), cudaMemcpyDeviceToHost));
      const float us = 1000.0f * ms / phases;
      if (mode == kNone) none_us = us;
      std::printf("%-11s %10zu %8d %12.3f %14.3f %10.1f %8s\n", names[mode], kb, phases, us,
                  mode == kNone ? 0.0f : us - none_us, kb ? kb * 1024.0 / (us * 1e3) : 0.0,
                  h_stale ? "STALE" : "ok");
      CHECK(cudaEventDestroy(a));
      CHECK(cudaEventDestroy(b));
    }
  }
  return 0;
}
