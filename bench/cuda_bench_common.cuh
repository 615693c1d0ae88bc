// What every GPU benchmark program shares, so that their numbers are made the same way:
//   random device data (never zeros; a fresh seed per run, printed once),
//   copies_for (enough copies of an input that a pass over them is >= 4x L2: each call reads DRAM),
//   GraphTimer (`reps` calls captured in one CUDA graph, replayed and timed with CUDA events: no
//   host launch gaps in the numbers), median,
//   the ceilings measured in the same run: device-to-device copy (the larger of cudaMemcpy and a
//   copy kernel with 16-byte accesses, bytes read + written), a read-only stream, and an 8192^3 bf16
//   cuBLASLt GEMM.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <turbine/backend/cuda/device_buffer.cuh>
#include <turbine/backend/cuda/gemm.cuh>
#include <turbine/backend/cuda/vec.cuh>
#include <vector>

namespace turbine::bench {

using cuda::DeviceBuffer;

// ---- random device data -------------------------------------------------------------------------

__device__ __forceinline__ uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

/// Uniform in [-scale, scale).
template <class T>
__global__ void fill_uniform_kernel(T* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix(i * 0x9e3779b97f4a7c15ull + seed) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    p[i] = cuda::from_float<T>(u * scale);
  }
}

/// The next seed of this run's generator, itself seeded from std::random_device (printed once, so a
/// run can be told apart from another).
inline uint64_t next_seed() {
  static std::mt19937_64 rng([] {
    std::random_device rd;
    const uint64_t s = (uint64_t(rd()) << 32) | rd();
    std::printf("benchmark seed %llu\n", static_cast<unsigned long long>(s));
    return s;
  }());
  return rng();
}

template <class T>
void randomize(DeviceBuffer<T>& b, float scale = 1.0f) {
  fill_uniform_kernel<T><<<1024, 256>>>(b.data(), b.size(), next_seed(), scale);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

template <class T>
DeviceBuffer<T> random_buffer(size_t n, float scale = 1.0f) {
  DeviceBuffer<T> b(n, "benchmark buffer");
  randomize(b, scale);
  return b;
}

/// Copies of an input of `bytes` so that one pass over all of them is >= 4x the L2 size (1 to 64).
inline int copies_for(size_t bytes) {
  static const size_t l2 = [] {
    int dev = 0, l2b = 0;
    TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&l2b, cudaDevAttrL2CacheSize, dev));
    return static_cast<size_t>(l2b);
  }();
  return static_cast<int>(std::clamp<size_t>((4 * l2 + bytes - 1) / bytes, 1, 64));
}

// ---- timing ------------------------------------------------------------------------------------

inline cudaStream_t bench_stream() {
  static cudaStream_t s = [] {
    cudaStream_t st;
    TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}

/// `reps` calls of call(i, stream) captured in one graph; time() replays it and returns seconds per call.
class GraphTimer {
 public:
  GraphTimer(int reps, const std::function<void(int, cudaStream_t)>& call) : reps_(reps) {
    cudaStream_t s = bench_stream();
    call(0, s);  // outside the capture: plans cuBLASLt shapes, loads modules, first-call set-up
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(s));
    cudaGraph_t graph;
    TURBINE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < reps; ++i) call(i, s);
    TURBINE_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph, 0));
    TURBINE_CUDA_CHECK(cudaGraphDestroy(graph));
    TURBINE_CUDA_CHECK(cudaEventCreate(&start_));
    TURBINE_CUDA_CHECK(cudaEventCreate(&stop_));
    for (int i = 0; i < 2; ++i) time();  // warm-up
  }
  GraphTimer(const GraphTimer&) = delete;
  GraphTimer& operator=(const GraphTimer&) = delete;
  ~GraphTimer() {
    cudaGraphExecDestroy(exec_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  double time() {
    cudaStream_t s = bench_stream();
    TURBINE_CUDA_CHECK(cudaEventRecord(start_, s));
    TURBINE_CUDA_CHECK(cudaGraphLaunch(exec_, s));
    TURBINE_CUDA_CHECK(cudaEventRecord(stop_, s));
    TURBINE_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    TURBINE_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms * 1e-3 / reps_;
  }

 private:
  int reps_;
  cudaGraphExec_t exec_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

inline double median_of(GraphTimer& timer, int samples) {
  std::vector<double> t;
  for (int i = 0; i < samples; ++i) t.push_back(timer.time());
  return median(t);
}

// ---- ceilings -----------------------------------------------------------------------------------

__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a, dst[i + stride] = b, dst[i + 2 * stride] = c, dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

__global__ void read_kernel(const uint4* __restrict__ src, size_t n, uint32_t* out) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  uint32_t acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = cuda::vec::load_stream(src + i), b = cuda::vec::load_stream(src + i + stride),
                c = cuda::vec::load_stream(src + i + 2 * stride), d = cuda::vec::load_stream(src + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) acc ^= src[i].x;
  if (acc == 0x12345678u) *out = acc;  // keeps the loads; practically never stores
}

/// GB/s over 1 GiB, medians of 15 timings each.
struct MemoryCeilings {
  double memcpy_gbps = 0;  // cudaMemcpyAsync device to device, bytes read + written
  double kcopy_gbps = 0;   // the copy by an SM kernel (16-byte accesses), bytes read + written
  double copy_gbps = 0;    // the copy ceiling: the larger of the two
  double read_gbps = 0;    // a read-only stream (what a GEMV or a decode attention mostly does)
};

inline MemoryCeilings measure_memory_ceilings() {
  cudaDeviceProp prop{};
  TURBINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const unsigned blocks = static_cast<unsigned>(prop.multiProcessorCount) * 4;
  const size_t n = size_t(1) << 30;
  DeviceBuffer<std::byte> a(n, "copy ceiling"), b(n, "copy ceiling");
  DeviceBuffer<uint32_t> sink(1);
  fill_uniform_kernel<float><<<1024, 256>>>(reinterpret_cast<float*>(a.data()), n / 4, next_seed(), 1.0f);
  TURBINE_CUDA_CHECK(cudaGetLastError());
  MemoryCeilings c;
  GraphTimer memcpy_timer(2, [&](int, cudaStream_t s) {
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), n, cudaMemcpyDeviceToDevice, s));
  });
  c.memcpy_gbps = 2.0 * n / median_of(memcpy_timer, 15) * 1e-9;
  GraphTimer kcopy_timer(2, [&](int, cudaStream_t s) {
    copy_kernel<<<blocks, 512, 0, s>>>(reinterpret_cast<const uint4*>(a.data()), reinterpret_cast<uint4*>(b.data()),
                                       n / 16);
    TURBINE_CUDA_CHECK(cudaGetLastError());
  });
  c.kcopy_gbps = 2.0 * n / median_of(kcopy_timer, 15) * 1e-9;
  GraphTimer read_timer(2, [&](int, cudaStream_t s) {
    read_kernel<<<blocks, 512, 0, s>>>(reinterpret_cast<const uint4*>(a.data()), n / 16, sink.data());
    TURBINE_CUDA_CHECK(cudaGetLastError());
  });
  c.read_gbps = double(n) / median_of(read_timer, 15) * 1e-9;
  c.copy_gbps = std::max(c.memcpy_gbps, c.kcopy_gbps);
  return c;
}

/// One cuBLASLt wrapper for the whole run (its plans are cached per shape).
inline cuda::Gemm& shared_gemm() {
  static cuda::Gemm* g = new cuda::Gemm;  // never destroyed: no cuBLAS calls during the runtime's teardown
  return *g;
}

/// TFLOP/s of an 8192^3 bf16 GEMM through cuBLASLt (fp32 accumulate), the median of 10.
inline double measure_gemm_ceiling_tflops() {
  using bf = __nv_bfloat16;
  constexpr int n = 8192;
  cuda::Gemm& gemm = shared_gemm();
  auto x = random_buffer<bf>(size_t(n) * n), w = random_buffer<bf>(size_t(n) * n);
  DeviceBuffer<bf> y(size_t(n) * n);
  GraphTimer timer(3, [&](int, cudaStream_t s) {
    gemm(x.data(), w.data(), static_cast<const bf*>(nullptr), y.data(), n, n, n, s);
  });
  return 2.0 * n * n * double(n) / median_of(timer, 10) * 1e-12;
}

/// The device's name, SMs and L2, one line.
inline void print_device() {
  cudaDeviceProp prop{};
  TURBINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
}

/// Measures the copy, read-only and bf16 GEMM ceilings and prints them after the device's line
/// (the programs that report fractions of all three).
inline void measure_and_print_ceilings(MemoryCeilings& mem, double& gemm_tflops) {
  mem = measure_memory_ceilings();
  gemm_tflops = measure_gemm_ceiling_tflops();
  print_device();
  std::printf(
      "ceilings: copy %.0f GB/s (max of cudaMemcpy %.0f and copy kernel %.0f, 1 GiB, read + write), read-only "
      "stream %.0f GB/s, bf16 GEMM %.0f TFLOP/s (8192^3 cuBLASLt)\n",
      mem.copy_gbps, mem.memcpy_gbps, mem.kcopy_gbps, mem.read_gbps, gemm_tflops);
}

}  // namespace turbine::bench
