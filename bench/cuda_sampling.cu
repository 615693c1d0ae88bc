// GPU sampling at vocabularies 49152 (SmolLM2) and 128256 (Llama 3), batch 1/16/64, bf16 logits:
// argmax_rows, and GpuSampler::sample for greedy, top-k 50 + top-p 0.9, top-p 0.9 over the whole
// vocabulary, plain temperature, and top-k with a repetition penalty over 1024 seen tokens. Each
// reports the logits bytes read once per call per second and the fraction of a device-to-device copy
// ceiling (bytes read + written, the larger of cudaMemcpy and a copy kernel) measured in this run.
// For comparison, cub::DeviceSegmentedRadixSort::SortPairsDescending of the same [batch, vocab]
// (float keys, int32 ids): the full sort that a sort-based top-p would start with.
//
// Logits are N(0, 2) (a peaked, LLM-like softmax at temperature 0.7-1) or uniform in [-1, 1] (flat:
// the top-p prefix runs to thousands of tokens, the slow exact path). Timing: `reps` calls captured
// in a CUDA graph, replayed 15 times with CUDA events; the median per call. Logits rotate over enough
// copies that each call reads DRAM, not L2.
#include <benchmark/benchmark.h>

#include "cuda_bench_common.cuh"
#include "cuda_gbench_main.cuh"

#include <algorithm>
#include <cstdio>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <turbine/backend/cuda/device_buffer.cuh>
#include <turbine/backend/cuda/sampling.cuh>
#include <vector>

using namespace turbine;
using namespace turbine::cuda;
using namespace turbine::bench;
using bf = __nv_bfloat16;

namespace {

// gaussian: sigma * N(0, 1) by Box-Muller; else uniform in [-scale, scale].
template <class T>
__global__ void fill_kernel(T* p, size_t n, uint64_t seed, float scale, bool gaussian) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float u1 = (static_cast<float>(mix(2 * i + seed) >> 8) + 0.5f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>(mix(2 * i + 1 + seed) >> 8) * (1.0f / 16777216.0f);
    const float v = gaussian ? sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2) : 2.0f * u2 - 1.0f;
    p[i] = from_float<T>(v * scale);
  }
}

__global__ void iota_segments_kernel(int32_t* ids, int32_t* offsets, int batch, int vocab) {
  const size_t n = size_t(batch) * vocab;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    ids[i] = static_cast<int32_t>(i % vocab);
  if (blockIdx.x == 0)
    for (int b = threadIdx.x; b <= batch; b += blockDim.x) offsets[b] = b * vocab;
}

template <class T>
DeviceBuffer<T> random_logits(size_t n, float scale, bool gaussian) {
  DeviceBuffer<T> b(n, "benchmark buffer");
  fill_kernel<T><<<1024, 256>>>(b.data(), n, next_seed(), scale, gaussian);
  TURBINE_CUDA_CHECK(cudaGetLastError());
  return b;
}

MemoryCeilings g_mem;

struct Row {
  double us = 0, gbps = 0, fraction = 0;
};
std::vector<std::string> g_order;
std::map<std::string, Row> g_rows;

void run(benchmark::State& state, const std::string& name, GraphTimer& timer, double bytes) {
  std::vector<double> samples;
  for (auto _ : state) {
    const double t = timer.time();
    samples.push_back(t);
    state.SetIterationTime(t);
  }
  const double t = median(samples);
  Row r{t * 1e6, bytes / t * 1e-9, 0};
  r.fraction = r.gbps / g_mem.copy_gbps;
  state.counters["median_us"] = r.us;
  state.counters["GBps"] = r.gbps;
  state.counters["frac_copy_ceiling"] = r.fraction;
  if (!g_rows.count(name)) g_order.push_back(name);
  g_rows[name] = r;
}

void measure_ceilings() {
  g_mem = measure_memory_ceilings();
  print_device();
  std::printf("ceiling: copy %.0f GB/s (max of cudaMemcpy %.0f and copy kernel %.0f, 1 GiB, read + write)\n",
              g_mem.copy_gbps, g_mem.memcpy_gbps, g_mem.kcopy_gbps);
}

void print_table() {
  std::printf("\n%-58s %10s %10s %8s\n", "benchmark (bf16 logits)", "median us", "GB/s", "of copy");
  std::printf("%-58s %10s %10.0f\n", "ceiling: cudaMemcpy D2D 1 GiB (read + write)", "", g_mem.memcpy_gbps);
  std::printf("%-58s %10s %10.0f\n", "ceiling: copy kernel 1 GiB (read + write)", "", g_mem.kcopy_gbps);
  for (const auto& name : g_order) {
    const Row& r = g_rows[name];
    std::printf("%-58s %10.2f %10.0f %8.3f\n", name.c_str(), r.us, r.gbps, r.fraction);
  }
}

// ---- benchmarks -----------------------------------------------------------------------------------

enum class Mode { Argmax, Greedy, TopKTopP, TopP, Temperature, TopKPenalty, TopPFlat, CubSort };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Argmax: return "argmax_rows";
    case Mode::Greedy: return "sample greedy";
    case Mode::TopKTopP: return "sample top-k 50 top-p 0.9 T 0.7";
    case Mode::TopP: return "sample top-p 0.9 T 0.7";
    case Mode::Temperature: return "sample T 1.0";
    case Mode::TopKPenalty: return "sample top-k 50 T 0.7 penalty 1.1 (1024 seen)";
    case Mode::TopPFlat: return "sample top-p 0.9 T 1.0, flat logits";
    case Mode::CubSort: return "cub segmented sort pairs desc (f32 keys)";
  }
  return "";
}

void BM_sampling(benchmark::State& state, Mode mode, int vocab, int batch) {
  const std::string name = std::string(mode_name(mode)) + " v" + std::to_string(vocab) + " b" + std::to_string(batch);
  const size_t n = size_t(batch) * vocab;
  if (mode == Mode::CubSort) {
    auto keys = random_logits<float>(n, 2.0f, true);
    DeviceBuffer<float> keys_out(n);
    DeviceBuffer<int32_t> ids(n), ids_out(n), offsets(batch + 1);
    iota_segments_kernel<<<256, 256>>>(ids.data(), offsets.data(), batch, vocab);
    TURBINE_CUDA_CHECK(cudaGetLastError());
    size_t temp_bytes = 0;
    TURBINE_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
        nullptr, temp_bytes, keys.data(), keys_out.data(), ids.data(), ids_out.data(), static_cast<int>(n), batch,
        offsets.data(), offsets.data() + 1));
    DeviceBuffer<std::byte> temp(temp_bytes);
    GraphTimer timer(5, [&](int, cudaStream_t s) {
      TURBINE_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
          temp.data(), temp_bytes, keys.data(), keys_out.data(), ids.data(), ids_out.data(), static_cast<int>(n),
          batch, offsets.data(), offsets.data() + 1, 0, 32, s));
    });
    run(state, name, timer, double(n) * sizeof(float));
    return;
  }
  const bool flat = mode == Mode::TopPFlat;
  const int copies = copies_for(n * sizeof(bf));
  std::vector<DeviceBuffer<bf>> logits;
  for (int i = 0; i < copies; ++i) logits.push_back(random_logits<bf>(n, flat ? 1.0f : 2.0f, !flat));
  DeviceBuffer<int32_t> out(batch);
  std::vector<SamplingParams> params(batch);
  constexpr int kHist = 1024;
  std::vector<int32_t> hist(size_t(batch) * kHist);
  std::mt19937 rng(static_cast<uint32_t>(next_seed()));
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (auto& h : hist) h = tok(rng);
  for (int b = 0; b < batch; ++b) {
    SamplingParams& p = params[b];
    p.seed = 7;
    p.step = b;
    switch (mode) {
      case Mode::Greedy: break;
      case Mode::TopKTopP: p.temperature = 0.7f, p.top_k = 50, p.top_p = 0.9f; break;
      case Mode::TopP: p.temperature = 0.7f, p.top_p = 0.9f; break;
      case Mode::Temperature: p.temperature = 1.0f; break;
      case Mode::TopKPenalty: p.temperature = 0.7f, p.top_k = 50, p.repetition_penalty = 1.1f; break;
      case Mode::TopPFlat: p.temperature = 1.0f, p.top_p = 0.9f; break;
      default: break;
    }
  }
  DeviceBuffer<SamplingParams> d_params(batch);
  DeviceBuffer<int32_t> d_hist(hist.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(d_params.data(), params.data(), d_params.bytes(), cudaMemcpyHostToDevice));
  TURBINE_CUDA_CHECK(cudaMemcpy(d_hist.data(), hist.data(), d_hist.bytes(), cudaMemcpyHostToDevice));
  GpuSampler<bf> sampler(batch, vocab);
  const bool penalty = mode == Mode::TopKPenalty;
  GraphTimer timer(std::max(copies, 20), [&](int i, cudaStream_t s) {
    const bf* l = logits[i % copies].data();
    if (mode == Mode::Argmax)
      argmax_rows(l, batch, vocab, out.data(), s);
    else
      sampler.sample(l, batch, vocab, d_params.data(), penalty ? d_hist.data() : nullptr, nullptr,
                     penalty ? kHist : 0, out.data(), s);
  });
  run(state, name, timer, double(n) * sizeof(bf));
}

void register_all() {
  for (int vocab : {49152, 128256}) {
    for (int batch : {1, 16, 64}) {
      for (Mode m : {Mode::Argmax, Mode::Greedy, Mode::TopKTopP, Mode::TopP, Mode::Temperature, Mode::TopKPenalty,
                     Mode::TopPFlat, Mode::CubSort}) {
        const std::string name = std::string("sampling/") + mode_name(m) + "/v" + std::to_string(vocab) + "/b" +
                                 std::to_string(batch);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { BM_sampling(st, m, vocab, batch); })
            ->UseManualTime()
            ->Iterations(15)  // each iteration replays `reps` calls: bounded wall time for the slow paths
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  return turbine::bench::run_gpu_benchmarks("bench_cuda_sampling", argc, argv, [] {
    measure_ceilings();
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    print_table();
  });
}
