// Attention kernels on the GPU against ceilings measured in the same run (cuda_bench_common.cuh):
//   copy ceiling: 1 GiB device to device, the larger of cudaMemcpy and a copy kernel, GB/s
//   counting bytes read + written; a read-only stream of 1 GiB;
//   matrix ceiling: a bf16 8192^3 GEMM through cuBLASLt (fp32 accumulate), TFLOP/s.
// Prefill reports TFLOP/s with causal FLOPs = 4 * tokens^2 * heads * head_dim / 2 and the fraction
// of the GEMM ceiling; decode reports GB/s of K/V cache bytes read and the fractions of the copy
// and read ceilings. Inputs are random (never zeros); decode rotates through enough cache copies
// that the working set exceeds L2 and is timed as a CUDA graph of 20 decode steps (as a decode
// loop runs it), so host launch overhead is excluded; prefill as a graph of one call. Times are
// CUDA-event times.
#include <benchmark/benchmark.h>

#include "cuda_bench_common.cuh"
#include "cuda_gbench_main.cuh"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <turbine/backend/cuda/attention_decode.cuh>
#include <turbine/backend/cuda/attention_prefill.cuh>
#include <turbine/backend/cuda/device_buffer.cuh>

namespace {

using namespace turbine::bench;
using turbine::cuda::AttentionShape;

MemoryCeilings g_mem;
double g_gemm_tflops = 0;

// The ceilings as benchmarks too, so they sit in the same table and JSON.
void BM_ceiling_copy_1GiB(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["GB/s"] = g_mem.copy_gbps;
}
void BM_ceiling_read_1GiB(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["GB/s"] = g_mem.read_gbps;
}
void BM_ceiling_gemm_bf16_8192(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["TFLOP/s"] = g_gemm_tflops;
}

/// Times `timer` inside the benchmark loop; returns the mean seconds per call over the iterations.
double time_iterations(benchmark::State& state, GraphTimer& timer) {
  double total = 0;
  for (auto _ : state) {
    const double s = timer.time();
    state.SetIterationTime(s);
    total += s;
  }
  return total / double(std::max<int64_t>(1, state.iterations()));
}

using PrefillFn = void (*)(const turbine::cuda::attn::PrefillArgs<__nv_bfloat16>&, cudaStream_t);

// args: tokens; the variant picks the launcher (nullptr: the public attention_prefill).
template <class T>
void prefill(benchmark::State& state, AttentionShape shape, PrefillFn variant) {
  const int64_t tokens = state.range(0), hd = shape.head_dim;
  DeviceBuffer<T> q(tokens * shape.heads * hd), k(tokens * shape.kv_heads * hd), v(k.size()), out(q.size());
  randomize(q, 3.f);
  randomize(k);
  randomize(v);
  GraphTimer timer(1, [&](int, cudaStream_t stream) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (variant) {
        variant(turbine::cuda::attn::make_prefill_args<T>(q.data(), k.data(), v.data(), out.data(), tokens, 0, shape, 0),
                stream);
        return;
      }
    }
    turbine::cuda::attention_prefill<T>(q.data(), k.data(), v.data(), out.data(), tokens, 0, shape, stream);
  });
  const double seconds = time_iterations(state, timer);
  const double flops = 4.0 * double(tokens) * tokens * shape.heads * hd / 2;
  const double tflops = flops / seconds / 1e12;
  state.counters["TFLOP/s"] = tflops;
  state.counters["frac_gemm"] = tflops / g_gemm_tflops;
}

// args: batch, length, queries per sequence. K/V bytes read per call = batch * length * 2 * the
// bytes of a cache row (kv_heads * head_dim * sizeof(T); with kv::Int8/Int4 the codes and the
// (scale, min) params of kv_quant.cuh's row: random bytes, read as the kernel reads a real cache).
// NS: pipeline stages (0: the library's default; the decode_kv/..._nsN variants compare others).
// kStep: launched as the decode step launches it (DecodeAttention planned for an 8192-position
// context, the merge folded, at least 8 tiles a split, programmatic dependent launch with the
// cache read before the wait), each launch of the graph waiting for the one before, as the decode
// chain's kernels wait for theirs (decode_step_b1/...). kWarps: warps a block (0: the launcher's
// choice, 8 at batch 1; _w4: the 4-warp kernel, with 3 or 6 stages: 2026-12-06 on an H100, 6 stages
// were no faster than 3, so the loads are not what a batch-1 block waits on).
template <class T, class K = turbine::kv::Same, int NS = 0, bool kStep = false, int kWarps = 0>
void decode(benchmark::State& state, AttentionShape shape) {
  const int batch = int(state.range(0));
  const int64_t len = state.range(1), hd = shape.head_dim;
  const int nq = int(state.range(2));
  if constexpr (kStep) {  // the stages must fit the GPU's shared memory (6 at head_dim 128 do not on sm_80)
    constexpr int kStages = turbine::cuda::attn::decode_stages<128, K>(NS);
    const int optin = turbine::cuda::device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>();
    if (hd != 128 || turbine::cuda::attn::DecodeConfig<T, 128, 1, kStages, K>::kSmemBytes > size_t(optin))
      return state.SkipWithError("this benchmark is for head_dim 128, and its stages must fit the GPU's shared memory");
  }
  const int64_t kv_row = turbine::cuda::kv_row_bytes<T, K>(shape.kv_heads, hd) / int64_t(sizeof(T));  // in T units
  const double kv_bytes = double(batch) * len * kv_row * 2 * sizeof(T);
  const int copies = int(std::max<double>(1, std::ceil(256e6 / kv_bytes)));
  std::vector<DeviceBuffer<T>> caches;
  std::vector<DeviceBuffer<const T*>> kp, vp;
  for (int c = 0; c < copies; ++c) {
    caches.emplace_back(size_t(2) * batch * len * kv_row);
    randomize(caches.back());
    std::vector<const T*> hk, hv;
    for (int b = 0; b < batch; ++b) {
      hk.push_back(caches.back().data() + int64_t(b) * len * kv_row);
      hv.push_back(caches.back().data() + (int64_t(batch) + b) * len * kv_row);
    }
    kp.emplace_back(batch);
    vp.emplace_back(batch);
    TURBINE_CUDA_CHECK(cudaMemcpy(kp.back().data(), hk.data(), kp.back().bytes(), cudaMemcpyHostToDevice));
    TURBINE_CUDA_CHECK(cudaMemcpy(vp.back().data(), hv.data(), vp.back().bytes(), cudaMemcpyHostToDevice));
  }
  DeviceBuffer<T> q(size_t(batch) * nq * shape.heads * hd), out(q.size());
  randomize(q, 3.f);
  std::vector<int> hl(batch, int(len));
  DeviceBuffer<int> lens(batch);
  TURBINE_CUDA_CHECK(cudaMemcpy(lens.data(), hl.data(), lens.bytes(), cudaMemcpyHostToDevice));
  turbine::cuda::DecodeAttention<T, K, NS> attn(shape, batch, kStep ? std::max<int64_t>(len, 8192) : len, nq);
  attn.block_warps = kWarps;
  // As a decode loop runs it: a CUDA graph of 20 steps (rotating through the cache copies), so the
  // launch overhead of the host is out of the numbers.
  GraphTimer timer(20, [&](int i, cudaStream_t stream) {
    attn(q.data(), kp[i % copies].data(), vp[i % copies].data(), 0, lens.data(), batch, out.data(), stream, kStep,
         kStep ? 8 : 1, kStep);
  });
  const double gbs = kv_bytes / time_iterations(state, timer) / 1e9;
  state.counters["GB/s"] = gbs;
  state.counters["frac_copy"] = gbs / g_mem.copy_gbps;
  state.counters["frac_read"] = gbs / g_mem.read_gbps;
  state.counters["splits"] = attn.plan().splits;
}

const AttentionShape kLlama3_8B{32, 8, 128, 0};
const AttentionShape kSmolLM2{9, 3, 64, 0};

void register_all() {
  benchmark::RegisterBenchmark("ceiling/copy_1GiB_d2d", BM_ceiling_copy_1GiB)->UseManualTime()->Iterations(1);
  benchmark::RegisterBenchmark("ceiling/read_1GiB", BM_ceiling_read_1GiB)->UseManualTime()->Iterations(1);
  benchmark::RegisterBenchmark("ceiling/gemm_bf16_8192", BM_ceiling_gemm_bf16_8192)->UseManualTime()->Iterations(1);
  for (int64_t t : {1024, 2048, 4096, 8192}) {
    benchmark::RegisterBenchmark("prefill/llama3_8b/bf16", prefill<__nv_bfloat16>, kLlama3_8B, PrefillFn(nullptr))
        ->Arg(t)->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("prefill/llama3_8b/f16", prefill<__half>, kLlama3_8B, PrefillFn(nullptr))
      ->Arg(4096)->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMillisecond);
  for (int64_t t : {1024, 2048, 4096, 8192}) {
    benchmark::RegisterBenchmark("prefill/smollm2/bf16", prefill<__nv_bfloat16>, kSmolLM2, PrefillFn(nullptr))
        ->Arg(t)->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMillisecond);
  }
  // Tile configurations (MT m16 tiles per warp, NW warps, NS stages) at every size.
  using namespace turbine::cuda::attn;
  const std::pair<const char*, PrefillFn> hd128[] = {
      {"prefill_cfg/llama3_8b/mt1_nw8_ns2", launch_prefill<__nv_bfloat16, 128, 1, 8, 2>},
      {"prefill_cfg/llama3_8b/mt1_nw8_ns3", launch_prefill<__nv_bfloat16, 128, 1, 8, 3>},
      {"prefill_cfg/llama3_8b/mt2_nw4_ns2", launch_prefill<__nv_bfloat16, 128, 2, 4, 2>},
      {"prefill_cfg/llama3_8b/mt1_nw4_ns2", launch_prefill<__nv_bfloat16, 128, 1, 4, 2>},
      {"prefill_cfg/llama3_8b/mt1_nw4_ns3", launch_prefill<__nv_bfloat16, 128, 1, 4, 3>},
  };
  const std::pair<const char*, PrefillFn> hd64[] = {
      {"prefill_cfg/smollm2/mt2_nw4_ns2", launch_prefill<__nv_bfloat16, 64, 2, 4, 2>},
      {"prefill_cfg/smollm2/mt1_nw8_ns2", launch_prefill<__nv_bfloat16, 64, 1, 8, 2>},
      {"prefill_cfg/smollm2/mt1_nw4_ns2", launch_prefill<__nv_bfloat16, 64, 1, 4, 2>},
      {"prefill_cfg/smollm2/mt1_nw4_ns3", launch_prefill<__nv_bfloat16, 64, 1, 4, 3>},
  };
  for (int64_t t : {1024, 2048, 4096, 8192}) {
    for (const auto& [name, fn] : hd128)
      benchmark::RegisterBenchmark(name, prefill<__nv_bfloat16>, kLlama3_8B, fn)
          ->Arg(t)->UseManualTime()->MinTime(0.1)->Unit(benchmark::kMillisecond);
    for (const auto& [name, fn] : hd64)
      benchmark::RegisterBenchmark(name, prefill<__nv_bfloat16>, kSmolLM2, fn)
          ->Arg(t)->UseManualTime()->MinTime(0.1)->Unit(benchmark::kMillisecond);
  }

  for (auto [b, len, nq] : {std::tuple{1, 1024, 1}, {1, 4096, 1}, {1, 32768, 1}, {16, 1024, 1}, {64, 1024, 1},
                            {16, 4096, 1}, {16, 4096, 4}}) {
    benchmark::RegisterBenchmark("decode/llama3_8b/bf16", decode<__nv_bfloat16>, kLlama3_8B)
        ->Args({b, len, nq})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
  }
  for (auto [b, len] : {std::pair{1, 32768}, {64, 1024}}) {
    benchmark::RegisterBenchmark("decode/smollm2/bf16", decode<__nv_bfloat16>, kSmolLM2)
        ->Args({b, len, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
  }
  using StepFn = void (*)(benchmark::State&, AttentionShape);
  using turbine::kv::Same;
  const std::pair<const char*, StepFn> step_variants[] = {
      {"decode_step_b1/llama3_8b/f16", decode<__half, Same, 0, true>},
      {"decode_step_b1/llama3_8b/f16_w4", decode<__half, Same, 0, true, 4>},
      {"decode_step_b1/llama3_8b/f16_w4_ns6", decode<__half, Same, 6, true, 4>}};
  for (int len : {336, 1024, 4096})
    for (const auto& [name, fn] : step_variants)
      benchmark::RegisterBenchmark(name, fn, kLlama3_8B)
          ->Args({1, len, 1})->UseManualTime()->MinTime(0.1)->Unit(benchmark::kMicrosecond);
  // Quantized caches (issue 4: at least 70% of the copy ceiling on the cache bytes), with the f16
  // cache of the same shapes as the baseline.
  for (int b : {1, 16, 64})
    for (int len : {1024, 4096, 8192}) {
      benchmark::RegisterBenchmark("decode_kv/llama3_8b/f16", decode<__half>, kLlama3_8B)
          ->Args({b, len, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("decode_kv/llama3_8b/f16_int8", decode<__half, turbine::kv::Int8>, kLlama3_8B)
          ->Args({b, len, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("decode_kv/llama3_8b/f16_int4", decode<__half, turbine::kv::Int4>, kLlama3_8B)
          ->Args({b, len, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
    }
  // The quantized kernel with other pipeline depths (default: int8 4 stages, int4 6 at head_dim 128),
  // a bf16 model's cache, several queries per sequence (speculative decoding: 16 query rows per KV
  // head) and the SmolLM2 shape (head_dim 64, GQA 3).
  using DecodeFn = void (*)(benchmark::State&, AttentionShape);
  const std::pair<const char*, DecodeFn> variants[] = {
      {"decode_kv/llama3_8b/f16_int8_ns3", decode<__half, turbine::kv::Int8, 3>},
      {"decode_kv/llama3_8b/f16_int8_ns6", decode<__half, turbine::kv::Int8, 6>},
      {"decode_kv/llama3_8b/f16_int4_ns4", decode<__half, turbine::kv::Int4, 4>},
      {"decode_kv/llama3_8b/f16_int4_ns8", decode<__half, turbine::kv::Int4, 8>},
      {"decode_kv/llama3_8b/f16_int8_w8", decode<__half, turbine::kv::Int8, 0, false, 8>},  // 8 warps forced
      {"decode_kv/llama3_8b/f16_int4_w8", decode<__half, turbine::kv::Int4, 0, false, 8>},
      {"decode_kv/llama3_8b/bf16", decode<__nv_bfloat16>},
      {"decode_kv/llama3_8b/bf16_int8", decode<__nv_bfloat16, turbine::kv::Int8>},
      {"decode_kv/llama3_8b/bf16_int4", decode<__nv_bfloat16, turbine::kv::Int4>},
  };
  for (auto [b, len] : {std::pair{1, 8192}, {16, 1024}, {16, 4096}, {64, 8192}})
    for (const auto& [name, fn] : variants)
      benchmark::RegisterBenchmark(name, fn, kLlama3_8B)
          ->Args({b, len, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
  for (const char* kind : {"f16", "f16_int8", "f16_int4"}) {
    const std::string k = kind;
    const DecodeFn fn = k == "f16" ? DecodeFn(decode<__half>)
                        : k == "f16_int8" ? DecodeFn(decode<__half, turbine::kv::Int8>)
                                          : DecodeFn(decode<__half, turbine::kv::Int4>);
    benchmark::RegisterBenchmark(("decode_kv/llama3_8b_q4/" + k).c_str(), fn, kLlama3_8B)
        ->Args({16, 4096, 4})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("decode_kv/smollm2/" + k).c_str(), fn, kSmolLM2)
        ->Args({64, 1024, 1})->UseManualTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return turbine::bench::run_gpu_benchmarks("bench_cuda_attention", argc, argv, [] {
    turbine::bench::measure_and_print_ceilings(g_mem, g_gemm_tflops);
    register_all();
    benchmark::RunSpecifiedBenchmarks();
  });
}
