#pragma once
// `turbine bench generation`: the static grid of LMDeploy's profile_generation. For each
// concurrency c and prompt/output lengths p/o: c sequences with random prompts of p tokens are
// prefilled one after another (first-token latency of a sequence = time from the start until its
// first token, so later sequences include the queue), then o-1 decode steps run over all c at once
// (greedy, EOS ignored). Every row is set against the bandwidth floor (weights + KV read per step
// over a device-to-device copy ceiling measured in the same run) and, for the first sequence's
// prefill, the compute floor (FLOPs over a GEMM ceiling measured in the same run).
// A template over the model type: run_cuda.cu instantiates it for the GPU types; on the CPU it
// runs concurrency 1 only.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <turbine/model/random_weights.hpp>

#include "cli_common.hpp"
#include "stats.hpp"

namespace turbine::cli {
namespace bench_gen {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Io {
  int64_t prompt = 0, output = 0;
};

/// "128/2048" -> {128, 2048}; each of `specs` is one pair.
inline std::vector<Io> parse_io(const std::vector<std::string>& specs) {
  std::vector<Io> out;
  for (const std::string& s : specs) {
    const size_t slash = s.find('/');
    Io io;
    bool ok = slash != std::string::npos && slash > 0 && slash + 1 < s.size() &&
              s.find_first_not_of("0123456789/") == std::string::npos && s.find('/', slash + 1) == std::string::npos;
    if (ok) {
      io.prompt = std::stoll(s.substr(0, slash));
      io.output = std::stoll(s.substr(slash + 1));
      ok = io.prompt >= 1 && io.output >= 1;
    }
    check(ok, "--io: '", s, "' is not PROMPT/OUTPUT with both at least 1 (e.g. 128/2048)");
    out.push_back(io);
  }
  check(!out.empty(), "--io: no prompt/output pair given");
  return out;
}

/// Ceilings of the machine, measured in this run.
struct Ceilings {
  std::string device;
  double copy_GBps = 0;    // device-to-device (host memcpy on the CPU), bytes read + written
  double gemm_TFLOPs = 0;  // 8192^3 GEMM through turbine's cuBLASLt path in the model precision; 0 on the CPU
  double mem_total_GiB = 0;
};

/// One timed pass over one configuration.
struct Sample {
  std::vector<double> first_token_s;  // [c] from the start until each sequence's first token
  std::vector<double> step_s;         // [o - 1] each decode step, host sampling included
  double total_s = 0, prefill_s = 0, decode_s = 0, sample_s = 0;
};

inline Ceilings host_ceilings() {
  Ceilings c;
  c.device = "CPU";
  const size_t bytes = size_t{1} << 30;
  std::vector<std::byte> a(bytes, std::byte{0x5a}), b(bytes, std::byte{0});
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto t = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    best = std::min(best, seconds_since(t));
  }
  c.copy_GBps = 2.0 * static_cast<double>(bytes) / best / 1e9;
  return c;
}

#ifdef __CUDACC__
inline double gpu_used_GiB() {
  size_t free_b = 0, total_b = 0;
  TURBINE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<double>(total_b - free_b) / double(1 << 30);
}

/// A 1 GiB device-to-device copy and an 8192^3 GEMM in T, each timed with events after a warm-up.
template <class T>
Ceilings gpu_ceilings() {
  Ceilings c;
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  TURBINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  c.device = prop.name;
  size_t free_b = 0, total_b = 0;
  TURBINE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  c.mem_total_GiB = static_cast<double>(total_b) / double(1 << 30);
  cudaStream_t s = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  TURBINE_CUDA_CHECK(cudaEventCreate(&e0));
  TURBINE_CUDA_CHECK(cudaEventCreate(&e1));
  auto timed_ms = [&](int reps, auto&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    TURBINE_CUDA_CHECK(cudaEventRecord(e0, s));
    for (int i = 0; i < reps; ++i) fn();
    TURBINE_CUDA_CHECK(cudaEventRecord(e1, s));
    TURBINE_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    TURBINE_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    TURBINE_CUDA_CHECK(cudaGetLastError());
    return static_cast<double>(ms) / reps;
  };
  {
    const size_t bytes = size_t{1} << 30;
    cuda::DeviceBuffer<std::byte> src(bytes, "copy ceiling"), dst(bytes, "copy ceiling");
    TURBINE_CUDA_CHECK(cudaMemsetAsync(src.data(), 0x5a, bytes, s));
    const double ms = timed_ms(10, [&] {
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, s));
    });
    c.copy_GBps = 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
  }
  {
    constexpr int n = 8192;
    const size_t count = size_t{n} * n;
    cuda::DeviceBuffer<T> x(count, "GEMM ceiling"), w(count, "GEMM ceiling"), y(count, "GEMM ceiling");
    std::vector<uint16_t> host(count);  // random, never zeros
    const StorageType st = std::is_same_v<T, __half> ? StorageType::F16 : StorageType::BF16;
    for (T* dst : {x.data(), w.data()}) {
      fill_random_half(host.data(), count, st, 1.0f, reinterpret_cast<uintptr_t>(dst));
      TURBINE_CUDA_CHECK(cudaMemcpy(dst, host.data(), count * 2, cudaMemcpyHostToDevice));
    }
    cuda::Gemm gemm;
    const T* no_bias = nullptr;
    const double ms = timed_ms(10, [&] { gemm(x.data(), w.data(), no_bias, y.data(), n, n, n, s); });
    c.gemm_TFLOPs = 2.0 * double(n) * n * n / (ms * 1e-3) / 1e12;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  return c;
}
#endif

template <class Model>
constexpr bool kOnGpu = Model::spec::backend::is_gpu;

/// Bytes a decode step reads for the weights: every layer matrix, the norms and the LM head (the
/// embedding table only when it is the LM head; otherwise one row per token, not counted).
template <class Model>
double streamed_weight_bytes(const Model& model) {
  const ModelConfig& c = model.config();
  const bool tied = model.weights().lm_head.data == model.weights().embed.data;
  if constexpr (kOnGpu<Model>) {
    return static_cast<double>(model.device_weight_bytes()) - (tied ? 0.0 : double(c.vocab_size) * c.hidden_size * 2);
  } else {
    const ModelWeights& w = model.weights();
    return static_cast<double>(w.matrix_bytes()) - (tied ? 0.0 : static_cast<double>(w.embed.nbytes()));
  }
}

/// FLOPs of a p-token prefill: the layer matrices, causal attention (QK^T and PV) and the LM head
/// of the last token.
inline double prefill_flops(const ModelConfig& c, int64_t p) {
  const double layer_params = double(c.hidden_size) * (c.q_size() + 2 * c.kv_size()) + double(c.q_size()) * c.hidden_size +
                              3.0 * double(c.hidden_size) * c.intermediate_size;
  const double pairs = double(p) * double(p + 1) / 2.0;
  return 2.0 * p * layer_params * c.num_layers + 4.0 * pairs * c.q_size() * c.num_layers +
         2.0 * double(c.vocab_size) * c.hidden_size;
}

/// Random prompt ids, away from the special tokens at the start of most vocabularies.
inline std::vector<std::vector<int32_t>> random_prompts(int64_t count, int64_t length, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> pick(std::min<int32_t>(100, static_cast<int32_t>(vocab) - 1),
                                              static_cast<int32_t>(std::min<int64_t>(vocab, 30000)) - 1);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(count), std::vector<int32_t>(static_cast<size_t>(length)));
  for (auto& p : out)
    for (auto& t : p) t = pick(rng);
  return out;
}

/// Runs configurations on one model; the caches of a configuration live for its runs only.
template <class Model>
class Runner {
 public:
  using Cache = typename Model::Cache;
  explicit Runner(Model& model) : model_(model), c_(model.config()) {}

  /// `runs` timed passes of (conc, io) after an untimed one that sizes the scratch, builds the
  /// attention plan and captures the decode graph of this batch size with these caches bound.
  struct Result {
    std::vector<Sample> samples;
    double peak_used_GiB = 0;
    double device_step_ms = 0;  // the decode graph replayed back to back: GPU time of a step (0: unknown)
    bool logits_finite = true;  // the last step's logits of sequence 0
  };

  Result run(int64_t conc, Io io, int runs) {
    std::vector<Cache> caches;
    caches.reserve(static_cast<size_t>(conc));
    for (int64_t i = 0; i < conc; ++i) caches.push_back(model_.new_cache(io.prompt + io.output));
    std::vector<Cache*> ptrs;
    for (Cache& k : caches) ptrs.push_back(&k);
    warm(ptrs, io);
    Result out;
    for (int r = 0; r < runs; ++r) {
      for (Cache& k : caches) k.clear();
      out.samples.push_back(timed(ptrs, random_prompts(conc, io.prompt, c_.vocab_size, 1000 + r), io.output));
    }
    out.peak_used_GiB = used_GiB();
    const std::vector<float>& last = kOnGpu<Model> && io.output > 1 ? batch_logits_ : logits_;
    out.logits_finite = std::all_of(last.begin(), last.begin() + c_.vocab_size, [](float x) { return std::isfinite(x); });
    // Where the model can replay its decode graph alone (no host work between steps), that gives
    // the GPU's share of a step: the rest of the measured step is host and transfer time.
    if constexpr (requires(Model& m, std::span<Cache* const> s) { m.time_decode_graph(s, 1); }) {
      if (io.output > 1) {
        try {
          out.device_step_ms = model_.time_decode_graph(std::span<Cache* const>(ptrs), 20);
        } catch (const Error&) {  // no graph (TURBINE_NO_CUDA_GRAPH): leave it unknown
        }
      }
    }
    return out;
  }

  static double used_GiB() {
#ifdef __CUDACC__
    if constexpr (kOnGpu<Model>) return gpu_used_GiB();
#endif
    return 0.0;
  }

 private:
  void warm(const std::vector<Cache*>& ptrs, Io io) {
    const int64_t t = std::min<int64_t>(io.prompt, 1024);
    const auto prompt = random_prompts(1, t, c_.vocab_size, 99)[0];
    model_.forward(*ptrs[0], prompt, logits_);
    for (Cache* k : ptrs) k->clear();
    if (io.output > 1) {
      next_.assign(ptrs.size(), prompt[0]);
      decode_step(ptrs);
    }
    for (Cache* k : ptrs) k->clear();
  }

  void decode_step(const std::vector<Cache*>& ptrs) {
    if constexpr (kOnGpu<Model>) {
      batch_logits_.resize(ptrs.size() * static_cast<size_t>(c_.vocab_size));
      model_.decode_batch(std::span<Cache* const>(ptrs), std::span<const int32_t>(next_), batch_logits_.data());
    } else {
      model_.forward(*ptrs[0], std::span<const int32_t>(next_.data(), 1), logits_);
    }
  }

  /// The timed decode step: on the GPU the greedy ids are picked on the device (only they cross
  /// to the host); on the CPU the logits come back and sample() picks.
  void decode_and_pick(const std::vector<Cache*>& ptrs) {
#ifdef __CUDACC__
    if constexpr (kOnGpu<Model>) {
      greedy_.resize(ptrs.size());  // default SamplingParams: greedy
      model_.decode_batch_sample(std::span<Cache* const>(ptrs), std::span<const int32_t>(next_),
                                 std::span<const cuda::SamplingParams>(greedy_), {}, next_.data());
      return;
    }
#endif
    decode_step(ptrs);
  }

  /// Greedy next tokens from the last step's logits, one sequence per task of the thread pool.
  void sample(size_t conc) {
    const size_t vocab = static_cast<size_t>(c_.vocab_size);
    const float* base = kOnGpu<Model> ? batch_logits_.data() : logits_.data();
    auto rows = [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) next_[i] = Sampler::argmax(std::span<const float>(base + i * vocab, vocab));
    };
    if (conc > 1) default_pool().parallel_for(static_cast<int64_t>(conc), rows);
    else rows(0, 1);
  }

  Sample timed(const std::vector<Cache*>& ptrs, const std::vector<std::vector<int32_t>>& prompts, int64_t output) {
    Sample s;
    next_.assign(ptrs.size(), 0);
    const auto t0 = Clock::now();
    for (size_t i = 0; i < ptrs.size(); ++i) {
      model_.forward(*ptrs[i], prompts[i], logits_);
      next_[i] = Sampler::argmax(logits_);
      s.first_token_s.push_back(seconds_since(t0));
    }
    s.prefill_s = seconds_since(t0);
    const auto t1 = Clock::now();
    for (int64_t step = 1; step < output; ++step) {
      const auto a = Clock::now();
      decode_and_pick(ptrs);
      if constexpr (!kOnGpu<Model>) {
        const auto b = Clock::now();
        sample(ptrs.size());
        s.sample_s += seconds_since(b);
      }
      s.step_s.push_back(seconds_since(a));
    }
    s.decode_s = seconds_since(t1);
    s.total_s = seconds_since(t0);
    return s;
  }

  Model& model_;
  const ModelConfig& c_;
  std::vector<float> logits_, batch_logits_;
  std::vector<int32_t> next_;
#ifdef __CUDACC__
  std::vector<cuda::SamplingParams> greedy_;
#endif
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace bench_gen

template <class Model>
void run_bench_generation(CommonOptions& o, const Command& cmd) {
  using namespace bench_gen;
  constexpr bool gpu = kOnGpu<Model>;
  using Spec = typename Model::spec;
  // --weights / --kv pick the model type (run_cuda_bench_quant.cu); a type that does not match them
  // (the CPU's, or a build without those types) refuses instead of measuring something else.
  check(cmd.gen_weights == "same" || Spec::weight_scheme::quantized, "bench generation --weights ", cmd.gen_weights,
        " runs on the GPU only (--device cuda)");
  check(cmd.kv == std::string(Spec::kv_scheme::name) || (cmd.kv == "same" && !Spec::kv_scheme::quantized),
        "bench generation --kv ", cmd.kv, " runs on the GPU only (--device cuda)");
  const std::vector<Io> grid = parse_io(cmd.gen_io);
  check(!cmd.gen_random || o.model.empty(), "give either MODEL or --random-weights, not both");
  check(cmd.gen_random || cmd.gen_shape.empty(), "--shape needs --random-weights");
  check(!cmd.gen_random || !cmd.gen_shape.empty(), "--random-weights needs --shape NAME (smollm2-135m, internlm2-1.8b, llama2-7b, llama3-8b)");
  if (cmd.gen_random) {  // an unknown name or a grid longer than the context fails before any work
    const ModelConfig shape = model_shape(cmd.gen_shape);
    for (const Io& io : grid)
      check(io.prompt + io.output <= shape.max_position_embeddings, "--io ", io.prompt, "/", io.output, ": ",
            io.prompt + io.output, " tokens exceed the context of ", cmd.gen_shape, " (", shape.max_position_embeddings, ")");
  }
  std::vector<int> concurrency;
  for (int conc : cmd.gen_concurrency) {
    check(conc >= 1, "--concurrency: ", conc, " is not a positive number");
    if (gpu || conc == 1) concurrency.push_back(conc);
    else std::fprintf(stderr, "bench generation: skipping concurrency %d (on the CPU only concurrency 1 runs; use --device cuda)\n", conc);
  }
  check(!concurrency.empty(), "--concurrency: nothing to run (on the CPU only concurrency 1 runs; use --device cuda)");

  // Ceilings first, while the whole device is free.
  Ceilings ceil;
#ifdef __CUDACC__
  if constexpr (gpu) ceil = gpu_ceilings<typename Model::T>();
#endif
  if (!gpu) ceil = host_ceilings();
  std::fprintf(stderr, "bench generation: %s, copy %.0f GB/s, GEMM %.0f TFLOP/s\n", ceil.device.c_str(), ceil.copy_GBps,
               ceil.gemm_TFLOPs);

  const double used_before = Runner<Model>::used_GiB();
  const auto t_load = Clock::now();
  std::string label;
  ModelWeights weights;
  if (cmd.gen_random) {
    weights = random_weights(model_shape(cmd.gen_shape), o.dtype == "bf16" ? StorageType::BF16 : StorageType::F16, 1);
    label = cmd.gen_shape + " (random weights)";
  } else {
    label = resolve_model(o.model);
    weights = load_model(label).weights;
  }
  const double gen_s = seconds_since(t_load);
  auto owned_model = make_model<Model>(weights_for(weights, pipeline_options(o)), o.tp);
  Model& model = *owned_model;
  const double load_s = seconds_since(t_load);
  const ModelConfig& c = model.config();
  for (const Io& io : grid)
    check(io.prompt + io.output <= c.max_position_embeddings, "--io ", io.prompt, "/", io.output, ": ",
          io.prompt + io.output, " tokens exceed the model's context of ", c.max_position_embeddings);
  const double wbytes = bench_gen::streamed_weight_bytes(model);
  double kv_pos = 2.0 * double(c.num_layers) * double(c.kv_size()) * 4.0;  // bytes per position (fp32 on the CPU)
  if constexpr (gpu) kv_pos = static_cast<double>(model.kv_bytes_per_position());  // f16, or int8/int4 codes + scales
  const std::string dtype = gpu ? o.dtype : "f32";
  std::string scheme = "weights " + std::string(Spec::weight_scheme::quantized ? "4-bit " : "") +
                       std::string(Spec::weight_scheme::name) + ", KV " + std::string(Spec::kv_scheme::name);
  std::fprintf(stderr, "bench generation: %s, %s, weights %.2f GB streamed per step, loaded in %.1f s (%.1f s making them)\n",
               label.c_str(), dtype.c_str(), wbytes / 1e9, load_s, gen_s);

  Runner<Model> runner(model);
  {  // warm-up: module load, cuBLAS plans, host pool
    const auto t = Clock::now();
    runner.run(1, {std::min<int64_t>(grid[0].prompt, 64), std::min<int64_t>(grid[0].output, 8)}, 1);
    std::fprintf(stderr, "bench generation: warm-up %.1f s\n", seconds_since(t));
  }

  nlohmann::json rows = nlohmann::json::array();
  struct Row {
    int64_t conc = 0;
    Io io;
    Stats ft, tok;
    double out_tps = 0, dec_tps = 0, floor_tps = 0, frac = 0, prefill_ms = 0, prefill_floor_ms = 0, mem = 0, sample_ms = 0;
    double device_step_ms = 0, floor_step_ms = 0;
    std::string error;
  };
  std::vector<Row> table;
  const size_t total = concurrency.size() * grid.size();
  size_t done = 0;
  for (int conc : concurrency) {
    for (const Io& io : grid) {
      ++done;
      Row r;
      r.conc = conc;
      r.io = io;
      const auto t = Clock::now();
      typename Runner<Model>::Result res;
      try {
        res = runner.run(conc, io, std::max(cmd.gen_runs, 1));
      } catch (const Error& e) {  // e.g. out of GPU memory for the KV caches: report, go on
        r.error = e.what();
        std::fprintf(stderr, "bench generation [%zu/%zu] c=%d %lld/%lld: skipped: %s\n", done, total, conc,
                     (long long)io.prompt, (long long)io.output, e.what());
        table.push_back(r);
        rows.push_back({{"concurrency", conc}, {"prompt_tokens", io.prompt}, {"output_tokens", io.output}, {"error", r.error}});
        continue;
      }
      const std::vector<Sample>& samples = res.samples;
      const double mem = res.peak_used_GiB;
      std::vector<double> ft, steps, out_tps, dec_tps, first0, sample_ms;
      for (const Sample& s : samples) {
        for (double x : s.first_token_s) ft.push_back(x * 1e3);
        for (double x : s.step_s) steps.push_back(x * 1e3);
        first0.push_back(s.first_token_s[0] * 1e3);
        out_tps.push_back(double(conc) * double(io.output) / s.total_s);
        if (io.output > 1) {
          dec_tps.push_back(double(conc) * double(io.output - 1) / s.decode_s);
          sample_ms.push_back(s.sample_s * 1e3 / double(io.output - 1));
        }
      }
      r.ft = stats(ft);
      r.tok = stats(steps);
      r.out_tps = median(out_tps);
      r.dec_tps = median(dec_tps);
      r.sample_ms = median(sample_ms);
      r.mem = mem;
      // Bandwidth floor of the decode steps: weights once plus each sequence's mean KV length.
      const double kv_mean = kv_pos * (double(io.prompt) + double(io.output) / 2.0);
      const double step_bytes = wbytes + double(conc) * kv_mean;
      r.floor_tps = double(conc) * ceil.copy_GBps * 1e9 / step_bytes;
      r.frac = io.output > 1 ? r.dec_tps / r.floor_tps : 0.0;
      r.floor_step_ms = step_bytes / (ceil.copy_GBps * 1e9) * 1e3;
      r.device_step_ms = res.device_step_ms;
      if (!res.logits_finite)
        std::fprintf(stderr, "bench generation: warning: c=%d %lld/%lld: the logits are not finite (NaN/inf)\n", conc,
                     (long long)io.prompt, (long long)io.output);
      // The first sequence's prefill against max(compute floor, weight-read floor).
      r.prefill_ms = median(first0);
      const double flops = prefill_flops(c, io.prompt);
      r.prefill_floor_ms = std::max(ceil.gemm_TFLOPs > 0 ? flops / (ceil.gemm_TFLOPs * 1e12) : 0.0,
                                    (wbytes + kv_pos * double(io.prompt)) / (ceil.copy_GBps * 1e9)) * 1e3;
      table.push_back(r);
      nlohmann::json j = {{"concurrency", conc},
                          {"prompt_tokens", io.prompt},
                          {"output_tokens", io.output},
                          {"runs", samples.size()},
                          {"first_token_latency_ms", to_json(r.ft)},
                          {"token_latency_ms", to_json(r.tok)},
                          {"output_tokens_per_s", r.out_tps},
                          {"decode_tokens_per_s", r.dec_tps},
                          {"bandwidth_floor_tokens_per_s", r.floor_tps},
                          {"fraction_of_bandwidth_floor", r.frac},
                          {"kv_bytes_read_per_step_mean", double(conc) * kv_mean},
                          {"first_sequence_prefill_ms", r.prefill_ms},
                          {"prefill_floor_ms", r.prefill_floor_ms},
                          {"prefill_flops", flops},
                          {"host_sampling_ms_per_step", r.sample_ms},
                          {"bandwidth_floor_step_ms", r.floor_step_ms},
                          {"device_step_ms", r.device_step_ms},
                          {"device_fraction_of_bandwidth_floor", r.device_step_ms > 0 ? r.floor_step_ms / r.device_step_ms : 0.0},
                          {"logits_finite", res.logits_finite},
                          {"peak_device_memory_used_GiB", mem},
                          {"seconds", seconds_since(t)}};
      rows.push_back(j);
      std::fprintf(stderr,
                   "bench generation [%zu/%zu] c=%d %lld/%lld: first token %.1f ms (mean), decode %.1f tok/s (%.0f%% of the "
                   "bandwidth floor), output %.1f tok/s, %.1f s\n",
                   done, total, conc, (long long)io.prompt, (long long)io.output, r.ft.mean, r.dec_tps, 100 * r.frac,
                   r.out_tps, seconds_since(t));
    }
  }

  std::printf("turbine bench generation: %s, %s, %s, %s\n", label.c_str(), dtype.c_str(), scheme.c_str(), ceil.device.c_str());
  std::printf("ceilings (this run): copy %.0f GB/s (1 GiB %s, read+write)%s", ceil.copy_GBps, gpu ? "device-to-device" : "memcpy",
              ceil.gemm_TFLOPs > 0 ? "" : "\n");
  if (ceil.gemm_TFLOPs > 0) std::printf(", %s GEMM 8192^3 %.0f TFLOP/s\n", dtype.c_str(), ceil.gemm_TFLOPs);
  std::printf("weights read per step %.3f GB, KV %.0f KiB per position; runs per row %d; first-token = queue + prefill;\n"
              "GPU ms = the decode graph replayed alone (0: not available); frac = dec tok/s over the bandwidth floor\n",
              wbytes / 1e9, kv_pos / 1024, std::max(cmd.gen_runs, 1));
  std::printf("%5s %11s | %-27s | %-20s | %7s | %9s %9s | %9s %5s | %-15s | %6s\n", "conc", "in/out", "first token ms mean/p50/p90/p99",
              "token ms p50/p90/p99", "GPU ms", "out tok/s", "dec tok/s", "floor t/s", "frac", "prefill ms/floor", "mem GiB");
  for (const Row& r : table) {
    char io[32];
    std::snprintf(io, sizeof io, "%lld/%lld", (long long)r.io.prompt, (long long)r.io.output);
    if (!r.error.empty()) {
      std::printf("%5lld %11s | skipped: %s\n", (long long)r.conc, io, r.error.c_str());
      continue;
    }
    std::printf("%5lld %11s | %6.1f %6.1f %6.1f %6.1f | %6.2f %6.2f %6.2f | %7.3f | %9.1f %9.1f | %9.1f %4.0f%% | %7.1f/%-7.1f | %6.1f\n",
                (long long)r.conc, io, r.ft.mean, r.ft.p50, r.ft.p90, r.ft.p99, r.tok.p50, r.tok.p90, r.tok.p99, r.device_step_ms, r.out_tps,
                r.dec_tps, r.floor_tps, 100 * r.frac, r.prefill_ms, r.prefill_floor_ms, r.mem);
  }
  if (!cmd.gen_json.empty()) {
    nlohmann::json j = {{"model", label},
                        {"shape", cmd.gen_shape},
                        {"random_weights", cmd.gen_random},
                        {"dtype", dtype},
                        {"weights", std::string(Spec::weight_scheme::name)},
                        {"kv", std::string(Spec::kv_scheme::name)},
                        {"device", ceil.device},
                        {"ceilings", {{"copy_GBps", ceil.copy_GBps}, {"gemm_TFLOPs", ceil.gemm_TFLOPs}, {"memory_GiB", ceil.mem_total_GiB}}},
                        {"weight_bytes_read_per_step", wbytes},
                        {"kv_bytes_per_position", kv_pos},
                        {"config", {{"hidden", c.hidden_size}, {"intermediate", c.intermediate_size}, {"layers", c.num_layers},
                                    {"heads", c.num_heads}, {"kv_heads", c.num_kv_heads}, {"head_dim", c.head_dim},
                                    {"vocab", c.vocab_size}}},
                        {"load_seconds", load_s},
                        {"device_memory_used_before_load_GiB", used_before},
                        {"results", rows}};
    std::ofstream f(cmd.gen_json);
    check(f.good(), cmd.gen_json, ": cannot write the JSON file");
    f << j.dump(2) << "\n";
    check(f.good(), cmd.gen_json, ": writing the JSON file failed");
  }
}

}  // namespace turbine::cli
