#pragma once
// turbine bench throughput: offline serving throughput of the continuous-batching engine, as
// vLLM's benchmark_throughput and LMDeploy's profile_throughput measure it: N requests submitted
// at once, each with its own prompt and output length, outputs forced to their length
// (ignore_eos), and the whole run timed. The workload: workload.hpp. A template over the model
// type: each backend's translation unit runs it (run_cpu.cpp, run_cuda.cu).
#include <chrono>
#include <cmath>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>

#include <turbine/engine/scheduler.hpp>
#include <turbine/model/random_weights.hpp>

#include "cli_common.hpp"
#include "stats.hpp"
#include "workload.hpp"

namespace turbine::cli {

/// A tokenizer of `vocab` tokens named "t<id> " (the random-weights model has no vocabulary; the
/// engine only detokenizes what it streams).
inline Tokenizer numbered_tokenizer(int64_t vocab) {
  TokenizerData d;
  d.tokens.reserve(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) d.tokens.push_back("t" + std::to_string(i) + "\u0120");
  d.source = "numbered tokenizer";
  return Tokenizer::from_data(std::move(d));
}

template <class Model>
void run_bench_throughput(CommonOptions& o, const ThroughputOptions& t) {
  constexpr bool gpu = Model::spec::backend::is_gpu;
  // A model file, or random weights of a published shape (--random-shape: no file needed).
  std::unique_ptr<Pipeline<Model>> pipe;
  std::unique_ptr<Model> random_model;
  std::optional<Tokenizer> numbered;
  std::string path;
  int64_t ctx = 0;
  if (t.random_shape.empty()) {
    path = resolve_model(o.model);
    pipe = std::make_unique<Pipeline<Model>>(path, pipeline_options(o));
    ctx = pipe->context_size();
  } else {
    check(o.model.empty(), "give either MODEL or --random-shape, not both");
    const ModelConfig shape = model_shape(t.random_shape);
    std::fprintf(stderr, "bench throughput: random weights of the %s shape ...\n", t.random_shape.c_str());
    random_model = make_model<Model>(
        weights_for(random_weights(shape, o.dtype == "bf16" ? StorageType::BF16 : StorageType::F16, 1), pipeline_options(o)), o.tp);
    numbered = numbered_tokenizer(shape.vocab_size);
    path = t.random_shape + " (random weights)";
    ctx = std::min(o.ctx_size, shape.max_position_embeddings);
  }
  Model& model = pipe ? pipe->model() : *random_model;
  const Tokenizer& tokenizer = pipe ? pipe->tokenizer() : *numbered;
  const int64_t vocab = std::min<int64_t>(model.config().vocab_size, tokenizer.vocab_size());
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < static_cast<int32_t>(vocab); ++i) ids[static_cast<size_t>(i)] = i;
  // The workload, drawn before anything is timed.
  const std::vector<WorkloadJob> jobs = sharegpt_like_workload(t, ctx, ids);
  int64_t in_total = 0, out_total = 0;
  for (const WorkloadJob& j : jobs) {
    in_total += static_cast<int64_t>(j.prompt.size());
    out_total += j.output;
  }
  EngineOptions eo{t.max_concurrent, t.max_prefill_tokens, t.num_prompts, ctx};
  apply_cache_options(t.cache, model, eo);
  Engine<Model> engine(model, tokenizer, {}, eo);
  const Colors color;
  std::vector<std::shared_ptr<RequestStream>> streams;
  const auto t0 = std::chrono::steady_clock::now();
  for (const WorkloadJob& j : jobs) {
    GenerationConfig cfg;
    cfg.max_new_tokens = j.output;
    cfg.ignore_eos = true;
    streams.push_back(std::make_shared<RequestStream>());
    engine.submit(j.prompt, cfg, streams.back());
  }
  std::vector<double> ttft, tpot, e2e;
  int64_t generated = 0, errors = 0;
  for (size_t i = 0; i < streams.size(); ++i) {
    const RequestResult r = streams[i]->wait_result();
    const double done = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.error.empty()) ++errors;
    generated += static_cast<int64_t>(r.tokens.size());
    ttft.push_back(r.queue_seconds + r.first_token_seconds);
    if (r.tokens.size() > 1) tpot.push_back(r.decode_seconds / static_cast<double>(r.tokens.size() - 1));
    e2e.push_back(r.queue_seconds + r.first_token_seconds + r.decode_seconds);
    std::fprintf(stderr, "\r%sbench throughput: %zu/%zu requests done, %.0f s%s", color.dim(), i + 1, streams.size(), done,
                 color.reset());
  }
  std::fprintf(stderr, "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check(errors == 0, errors, " of ", t.num_prompts, " requests failed");
  const Stats first = stats(ttft), per_token = stats(tpot), request = stats(e2e);
  const EngineStats es = engine.stats();
  if (t.json) {
    const nlohmann::json j = {{"model", path},
                              {"device", gpu ? "cuda" : "cpu"},
                              {"num_prompts", t.num_prompts},
                              {"max_concurrent", t.max_concurrent},
                              {"input_tokens", in_total},
                              {"output_tokens", generated},
                              {"seconds", secs},
                              {"requests_per_s", t.num_prompts / secs},
                              {"input_tokens_per_s", in_total / secs},
                              {"output_tokens_per_s", generated / secs},
                              {"total_tokens_per_s", (in_total + generated) / secs},
                              {"first_token_s", to_json(first)},
                              {"per_token_s", to_json(per_token)},
                              {"request_s", to_json(request)},
                              {"preemptions", es.preemptions},
                              {"prefix_reused_tokens", es.reused_tokens},
                              {"kv_blocks", es.cache.blocks}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  if (gpu) std::printf("model %s (cuda), %lld requests, at most %lld at once\n", path.c_str(), (long long)t.num_prompts, (long long)t.max_concurrent);
  else std::printf("model %s (cpu, %d threads), %lld requests, at most %lld at once\n", path.c_str(), default_pool().size(),
                   (long long)t.num_prompts, (long long)t.max_concurrent);
  std::printf("workload: %lld input tokens (median %lld), %lld output tokens (median %lld), seed %llu\n",
              (long long)in_total, (long long)t.input_median, (long long)out_total, (long long)t.output_median,
              (unsigned long long)t.seed);
  std::printf("%.1f s: %.2f requests/s, input %.1f tokens/s, output %.1f tokens/s, total %.1f tokens/s\n", secs,
              t.num_prompts / secs, in_total / secs, generated / secs, (in_total + generated) / secs);
  std::printf("first-token latency  p50 %.3f s  p90 %.3f s  p99 %.3f s (from submission)\n", first.p50, first.p90,
              first.p99);
  std::printf("per-token latency    p50 %.1f ms p90 %.1f ms p99 %.1f ms (per request, after its first token)\n",
              1e3 * per_token.p50, 1e3 * per_token.p90, 1e3 * per_token.p99);
  std::printf("KV cache: %lld blocks, %llu preemptions, %llu prompt tokens reused from the prefix cache\n",
              (long long)es.cache.blocks, (unsigned long long)es.preemptions, (unsigned long long)es.reused_tokens);
}

}  // namespace turbine::cli
