// Probe: what one kernel boundary of the decode chain costs, three ways (a measurement, not a test).
// A chain of kChain kernels, each of `blocks` blocks, where every block reads the whole vector the
// previous kernel wrote (as a GEMV reads x) and writes its own slice of the next one, replayed as one
// CUDA graph:
//   plain  no programmatic dependent launch: each kernel starts after the previous one has finished
//   pdl    griddepcontrol.launch_dependents at the start, griddepcontrol.wait before reading
//   flag   launch_dependents at the start; instead of the wait, every block of the previous kernel
//          counts itself done (fence + atomicAdd) after its stores, and this kernel's blocks spin
//          until the count is whole (acquire), so that nothing waits for the previous grid to retire
// It checks the chain's result (each value is min(previous vector) + 1, so one stale read anywhere
// shows) and prints us per kernel. Build: nvcc -O3 -std=c++20 -arch=sm_90a tools/probe_chain_sync.cu
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cuda_runtime.h>

#include "probe_check.cuh"

constexpr int kChain = 256;  // kernels per graph (a Llama-3-8B step has about 8 per layer x 32)
constexpr int kWidth = 4096; // ints per vector (16 KB, about an fp16 hidden state of 8192)

enum Mode { kPlain = 0, kPdl = 1, kFlag = 2 };

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

template <int kMode>
__global__ void __launch_bounds__(256) chain_kernel(const int* in, int* out, const unsigned* prev_done, unsigned expect,
                                                    unsigned* my_done, unsigned* reset, int spin_work) {
  if (kMode != kPlain) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  if (kMode == kPdl) asm volatile("griddepcontrol.wait;" ::: "memory");
  if (kMode == kFlag && prev_done) {
    if (threadIdx.x == 0) {
      while (ld_acquire(prev_done) < expect) {
      }
    }
    __syncthreads();
    if (threadIdx.x == 0 && reset) *reset = 0;  // two kernels back: all its readers are past their spin
  }
  // the whole vector, as a GEMV reads x: min over it
  // 16-byte loads, all of a thread's issued before the first is used (one L2 round trip)
  static_assert(kWidth % (4 * 256) == 0, "whole int4 per thread");
  int4 v[kWidth / (4 * 256)];
#pragma unroll
  for (int j = 0; j < kWidth / (4 * 256); ++j) v[j] = __ldcg(reinterpret_cast<const int4*>(in) + j * 256 + threadIdx.x);
  int m = 0x7fffffff;
#pragma unroll
  for (int j = 0; j < kWidth / (4 * 256); ++j) m = min(m, min(min(v[j].x, v[j].y), min(v[j].z, v[j].w)));
  for (int o = 16; o > 0; o >>= 1) m = min(m, __shfl_xor_sync(0xffffffffu, m, o));
  __shared__ int wm[8];
  if ((threadIdx.x & 31) == 0) wm[threadIdx.x >> 5] = m;
  __syncthreads();
  m = wm[0];
  for (int w = 1; w < 8; ++w) m = min(m, wm[w]);
  // some work of the block's own (a GEMV's arithmetic), then its slice of the output
  float f = float(threadIdx.x);
  for (int i = 0; i < spin_work; ++i) f = f * 0.999f + 1.0f;
  const int per = (kWidth + gridDim.x - 1) / gridDim.x;
  for (int i = blockIdx.x * per + threadIdx.x; i < min(kWidth, (blockIdx.x + 1) * per); i += blockDim.x)
    out[i] = m + 1 + (f < -1.0f ? 1 : 0);
  if (kMode == kFlag) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(my_done, 1u);
    }
  }
}

int main() {
  int* buf[2];
  unsigned* done;
  CHECK(cudaMalloc(&buf[0], kWidth * sizeof(int)));
  CHECK(cudaMalloc(&buf[1], kWidth * sizeof(int)));
  CHECK(cudaMalloc(&done, kChain * sizeof(unsigned)));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs; chain of %d kernels, 256 threads a block, %d ints read by every block\n", prop.name,
              prop.multiProcessorCount, kChain, kWidth);
  std::printf("%-6s %7s %6s %12s %8s\n", "mode", "blocks", "work", "us/kernel", "check");
  const char* names[] = {"plain", "pdl", "flag"};
  for (int work : {0, 2000}) {
    for (int blocks : {prop.multiProcessorCount, 2 * prop.multiProcessorCount, 4 * prop.multiProcessorCount}) {
      for (int mode = 0; mode < 3; ++mode) {
        cudaGraph_t g;
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        CHECK(cudaMemsetAsync(buf[0], 0, kWidth * sizeof(int), s));
        CHECK(cudaMemsetAsync(done, 0, kChain * sizeof(unsigned), s));
        for (int k = 0; k < kChain; ++k) {
          cudaLaunchAttribute attr{};
          attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
          attr.val.programmaticStreamSerializationAllowed = 1;
          cudaLaunchConfig_t cfg{};
          cfg.gridDim = dim3(blocks);
          cfg.blockDim = dim3(256);
          cfg.stream = s;
          cfg.attrs = &attr;
          cfg.numAttrs = (mode != kPlain && k > 0) ? 1 : 0;
          const unsigned* prev = k > 0 ? done + k - 1 : nullptr;
          unsigned* reset = k >= 2 ? done + k - 2 : nullptr;
          const int* in = buf[k % 2];
          int* out = buf[(k + 1) % 2];
          if (mode == kPlain) CHECK(cudaLaunchKernelEx(&cfg, chain_kernel<kPlain>, in, out, prev, unsigned(blocks), done + k, reset, work));
          if (mode == kPdl) CHECK(cudaLaunchKernelEx(&cfg, chain_kernel<kPdl>, in, out, prev, unsigned(blocks), done + k, reset, work));
          if (mode == kFlag) CHECK(cudaLaunchKernelEx(&cfg, chain_kernel<kFlag>, in, out, prev, unsigned(blocks), done + k, reset, work));
        }
        CHECK(cudaStreamEndCapture(s, &g));
        cudaGraphExec_t ge;
        CHECK(cudaGraphInstantiate(&ge, g, 0));
        for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(ge, s));
        CHECK(cudaStreamSynchronize(s));
        cudaEvent_t a, b;
        CHECK(cudaEventCreate(&a));
        CHECK(cudaEventCreate(&b));
        const int reps = 20;
        CHECK(cudaEventRecord(a, s));
        for (int i = 0; i < reps; ++i) CHECK(cudaGraphLaunch(ge, s));
        CHECK(cudaEventRecord(b, s));
        CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        std::vector<int> h(kWidth);
        CHECK(cudaMemcpy(h.data(), buf[kChain % 2], kWidth * sizeof(int), cudaMemcpyDeviceToHost));
        int bad = 0;
        for (int v : h) bad += v != kChain;
        std::printf("%-6s %7d %6d %12.3f %8s\n", names[mode], blocks, work, 1000.0 * ms / reps / kChain,
                    bad ? "STALE" : "ok");
        CHECK(cudaGraphExecDestroy(ge));
        CHECK(cudaGraphDestroy(g));
      }
    }
  }
  return 0;
}
