// CPU matrix-vector and matrix-matrix products on weights in their stored format, at the
// SmolLM2-135M and Llama shapes. Reports the weight bytes streamed per second (decode is bound by
// them) next to a measured memory-copy ceiling.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <turbine/backend/cpu/linear.hpp>
#include <turbine/core/half.hpp>

using namespace turbine;

namespace {

/// Random bytes for a quantized matrix, with every block's fp16 scales made finite and small.
std::vector<std::byte> random_weights(StorageType t, int64_t rows, int64_t cols) {
  std::mt19937 rng(42);
  std::vector<std::byte> w(row_bytes(t, cols) * rows);
  for (auto& b : w) b = std::byte(rng() & 0xff);
  const auto info = storage_info(t);
  if (t == StorageType::F32) {
    std::uniform_real_distribution<float> d(-1, 1);
    for (size_t i = 0; i < w.size() / 4; ++i) { float f = d(rng); std::memcpy(&w[i * 4], &f, 4); }
  } else if (info.block_elems == 32) {  // Q4_0/Q4_1/Q5_*/Q8_0 start with fp16 d (and m)
    const uint16_t s = f32_to_fp16(0.01f);
    for (size_t b = 0; b < w.size(); b += info.block_bytes) {
      std::memcpy(&w[b], &s, 2);
      if (t == StorageType::Q4_1 || t == StorageType::Q5_1) std::memcpy(&w[b + 2], &s, 2);
    }
  }
  return w;
}

void BM_linear(benchmark::State& state, StorageType type, int64_t rows, int64_t cols) {
  const int64_t tokens = state.range(0);
  auto bytes = random_weights(type, rows, cols);
  WeightMatrix w{type, rows, cols, bytes.data()};
  std::vector<float> x(tokens * cols, 0.5f), y(tokens * rows);
  for (auto _ : state) {
    cpu::linear(w, x.data(), tokens, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GBps"] = benchmark::Counter(double(w.nbytes()) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * rows * cols * tokens * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_memcpy_ceiling(benchmark::State& state) {
  const size_t n = size_t(256) << 20;
  std::vector<char> a(n, 1), b(n, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::ClobberMemory();
  }
  state.counters["GBps_read_write"] = benchmark::Counter(2.0 * n * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_memcpy_ceiling)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, q4_1_smollm_up, StorageType::Q4_1, 1536, 576)->Arg(1)->Arg(8)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, q4_1_smollm_down, StorageType::Q4_1, 576, 1536)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, q8_0_smollm_lm_head, StorageType::Q8_0, 49152, 576)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, f32_smollm_up, StorageType::F32, 1536, 576)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, f16_smollm_up, StorageType::F16, 1536, 576)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear, q4_k_llama_up, StorageType::Q4_K, 11008, 4096)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
