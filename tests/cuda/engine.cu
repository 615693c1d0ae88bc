// The GPU engine against the CPU engine (itself checked against transformers): logits at every
// position of prompts on the default model and on tiny random models of every architecture, and
// greedy continuations. fp16 and bf16.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <turbine/turbine.cuh>

#include "compare_logits.hpp"
#include "test_support.hpp"

using namespace turbine;
using test::all_logits;

namespace {

template <class P>
void compare_on(const ModelWeights& w, const std::vector<int32_t>& ids, double tol, const char* what) {
  Llama<> cpu_model(w);
  using Gpu = Llama<P, quant::None, kv::Same, Cuda>;
  Gpu gpu_model(w);
  // The decode chain as the engine picks it for this model, and with the norms taken from the tile
  // sums the O and down GEMVs leave (DecodeFusion::norm_stats, the large-model chain).
  using F = typename Gpu::DecodeFusion;
  F stats = F::for_model(w.config);
  stats.norm = stats.rope = stats.norm_stats = true;
  F rope_only = F::for_model(w.config);  // the rotary/KV-store epilogue on x normalized by the norm kernels
  rope_only.norm = false;
  rope_only.rope = true;
  F kernels = F::for_model(w.config);  // the large-model chain: norm and rotary kernels
  kernels.norm = kernels.rope = false;
  const std::pair<const char*, F> chains[] = {{"default folds", F::for_model(w.config)},
                                              {"norms from tile sums", stats},
                                              {"rope epilogue, norm kernels", rope_only},
                                              {"norm and rotary kernels", kernels}};
  for (size_t prefill : {ids.size(), size_t(1), ids.size() / 2}) {
    const auto ref = all_logits(cpu_model, ids, prefill);
    for (const auto& [chain, fusion] : chains) {
      if (prefill == ids.size() && chain != chains[0].first) continue;  // no decode step: the same as above
      gpu_model.set_decode_fusion(fusion);
      const auto got = all_logits(gpu_model, ids, prefill);
      REQUIRE(got.size() == ref.size());
      const double err = test::logits_rel_error(got, ref);
      MESSAGE(std::string(what), " ", std::string(P::name), " prefill ", prefill, "/", ids.size(), ", ",
              std::string(chain), ": relative error ", err);
      CHECK(err < tol);
    }
  }
}

}  // namespace

/// Random-init models made by transformers on the GPU machine (tools/make_tiny_models.py with
/// head_dim 64 and a 256-token prompt, see tools/gpu_session.sh): GPU logits at every position
/// against transformers' fp32 logits, and against the CPU engine.
TEST_CASE("GPU logits match transformers and the CPU engine on random models of every architecture") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const char* root = std::getenv("TURBINE_GPU_TEST_MODELS");
  if (!root) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  for (const char* name : {"llama_tied", "llama_untied", "qwen2", "mistral", "internlm2"}) {
    const std::string dir = std::string(root) + "/" + name;
    std::ifstream f(dir + "/golden.json");
    REQUIRE(f.good());
    const auto golden = nlohmann::json::parse(f);
    const auto ids = golden["ids"].get<std::vector<int32_t>>();
    std::vector<float> ref;
    for (const auto& row : golden["logits"])
      for (float x : row) ref.push_back(x);
    const ModelWeights w = load_weights(dir);
    Llama<f16, quant::None, kv::Same, Cuda> gpu16(w);
    Llama<bf16, quant::None, kv::Same, Cuda> gpu_bf(w);
    const auto got16 = all_logits(gpu16, ids, ids.size());
    const auto got_bf = all_logits(gpu_bf, ids, ids.size());
    const double e16 = test::logits_rel_error(got16, ref), ebf = test::logits_rel_error(got_bf, ref);
    MESSAGE(std::string(name), " vs transformers over ", ids.size(), " positions: f16 ", e16, ", bf16 ", ebf);
    // Whole-model logits through 2 layers: f16 keeps ~3e-3, bf16 (8-bit mantissa) ~2-3e-2.
    CHECK(e16 < 1e-2);
    CHECK(ebf < 5e-2);
    compare_on<f16>(w, ids, 1e-2, name);
    // Greedy continuation after the prompt, as transformers' generate() gave it.
    auto cache = gpu16.new_cache(ids.size() + 16);
    std::vector<float> logits;
    gpu16.forward(cache, ids, logits);
    std::vector<int32_t> greedy;
    for (size_t i = 0; i < golden["greedy"].size(); ++i) {
      greedy.push_back(Sampler::argmax(logits));
      gpu16.forward(cache, std::span<const int32_t>(&greedy.back(), 1), logits);
    }
    CHECK(greedy == golden["greedy"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("time_decode_graph_without disables exactly the kernel nodes whose names it is given") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const char* root = std::getenv("TURBINE_GPU_TEST_MODELS");
  if (!root) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  const ModelWeights w = load_weights(std::string(root) + "/llama_untied");
  Llama<f16, quant::None, kv::Same, Cuda> model(w);
  auto cache = model.new_cache(64);
  std::vector<float> logits;
  model.forward(cache, std::vector<int32_t>{1, 2, 3, 4, 5}, logits);
  model.forward(cache, std::vector<int32_t>{6}, logits);  // captures the decode step's graph
  decltype(cache)* one[1] = {&cache};
  const std::span<decltype(cache)* const> caches(one, 1);
  // The default chain launches one decode attention kernel a layer (the split merge folded in).
  const int64_t layers = w.config.num_layers;
  int off = -1;
  const float all = model.time_decode_graph(caches, 3);
  CHECK(model.time_decode_graph_without(caches, 3, "no_kernel_has_this_name", &off) > 0.f);
  CHECK(off == 0);
  CHECK(model.time_decode_graph_without(caches, 3, "decode_split_kernel", &off) > 0.f);
  CHECK(off == layers);
  CHECK(model.time_decode_graph_without(caches, 3, "no_kernel_has_this_name|decode_split_kernel", &off) > 0.f);
  CHECK(off == layers);
  CHECK(all > 0.f);
}

TEST_CASE("GPU logits and greedy text match the CPU engine on the default model") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string path = test::default_model_path();
  if (path.empty()) return test::skip("default model not fetched");
  LoadedModel m = load_model(path);
  const auto ids = m.tokenizer->encode(
      "The lighthouse keeper had lived alone on the island for nearly twenty years. Every evening he climbed the "
      "steps of the spiral staircase, trimmed the wick and watched the ships slide past on their way to the harbour.");
  compare_on<f16>(m.weights, ids, 1e-2, "smollm2");
  compare_on<bf16>(m.weights, ids, 5e-2, "smollm2");

  Pipeline<Llama<>> cpu(path);
  Pipeline<Llama<f16, quant::None, kv::Same, Cuda>> gpu(path);
  GenerationConfig cfg;
  cfg.max_new_tokens = 24;
  const auto a = cpu.generate({"What is the capital of France?"}, cfg)[0];
  const auto b = gpu.generate({"What is the capital of France?"}, cfg)[0];
  MESSAGE("cpu: ", a.text, " | gpu: ", b.text);
  CHECK(b.text.find("Paris") != std::string::npos);
}

TEST_CASE("a batched decode step gives each sequence the logits it gets alone") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string path = test::default_model_path();
  if (path.empty()) return test::skip("default model not fetched");
  LoadedModel m = load_model(path);
  Llama<f16, quant::None, kv::Same, Cuda> model(m.weights);
  const std::vector<std::string> prompts{"The capital of France is", "def fib(n):\n    return",
                                         "Once upon a time, in a land far away, there lived a", "1, 2, 3,"};
  const size_t n = prompts.size();
  std::vector<typename decltype(model)::Cache> alone, together;
  std::vector<int32_t> next(n);
  std::vector<float> logits;
  for (size_t i = 0; i < n; ++i) {
    alone.push_back(model.new_cache(256));
    together.push_back(model.new_cache(256));
    const auto ids = m.tokenizer->encode(prompts[i]);
    model.forward(alone[i], ids, logits);
    model.forward(together[i], ids, logits);
    next[i] = Sampler::argmax(logits);
  }
  const int64_t vocab = model.config().vocab_size;
  std::vector<float> batch(n * vocab);
  for (int step = 0; step < 12; ++step) {  // sequences of different lengths, several graph replays
    std::vector<decltype(model)::Cache*> ptrs;
    for (auto& c : together) ptrs.push_back(&c);
    model.decode_batch(ptrs, next, batch.data());
    for (size_t i = 0; i < n; ++i) {
      model.forward(alone[i], std::span<const int32_t>(&next[i], 1), logits);
      const std::vector<float> row(batch.begin() + i * vocab, batch.begin() + (i + 1) * vocab);
      CHECK(test::logits_rel_error(row, logits) < 2e-3);
      CHECK(together[i].length() == alone[i].length());
      next[i] = Sampler::argmax(logits);
    }
  }
}

/// decode_batch_sample against decode_batch + the CPU Sampler on identical sequences: greedy rows
/// (with and without a repetition penalty) pick exactly the CPU's id, sampled rows an id among the
/// top 40. `prompt(i)` gives sequence i's prompt ids.
template <class Prompt>
void check_device_sampling(const ModelWeights& w, Prompt&& prompt) {
  Llama<f16, quant::None, kv::Same, Cuda> model(w);
  using Cache = decltype(model)::Cache;
  const int64_t vocab = model.config().vocab_size;
  // 4 rows run the fused chain (fp32 logits), 12 the unfused one (f16 logits)
  for (size_t n : {size_t(4), size_t(12)}) {
    std::vector<Cache> host_side, device_side;  // identical sequences: host-returned vs device-sampled
    std::vector<std::vector<int32_t>> history(n);
    std::vector<int32_t> next(n);
    std::vector<float> logits;
    for (size_t i = 0; i < n; ++i) {
      host_side.push_back(model.new_cache(128));
      device_side.push_back(model.new_cache(128));
      history[i] = prompt(i);
      model.forward(host_side[i], history[i], logits);
      model.forward(device_side[i], history[i], logits);
      next[i] = Sampler::argmax(logits);
      history[i].push_back(next[i]);
    }
    std::vector<turbine::cuda::SamplingParams> params(n);
    std::vector<float> batch(n * vocab);
    for (int step = 0; step < 6; ++step) {
      std::vector<Cache*> hp, dp;
      std::vector<std::span<const int32_t>> hs;
      for (size_t i = 0; i < n; ++i) {
        hp.push_back(&host_side[i]);
        dp.push_back(&device_side[i]);
        hs.emplace_back(history[i]);
        turbine::cuda::SamplingParams& p = params[i];
        p = {};
        if (i % 3 == 1) p.repetition_penalty = 1.3f;  // greedy with a penalty over the history
        if (i % 3 == 2) p.temperature = 0.8f, p.top_k = 40, p.top_p = 0.9f, p.seed = 7 + i, p.step = step;
      }
      model.decode_batch(hp, next, batch.data());
      std::vector<int32_t> picked(n, -7);
      model.decode_batch_sample(dp, next, params, hs, picked.data());
      for (size_t i = 0; i < n; ++i) {
        std::vector<float> row(batch.begin() + i * vocab, batch.begin() + (i + 1) * vocab);
        REQUIRE(picked[i] >= 0);
        REQUIRE(picked[i] < vocab);
        if (i % 3 != 2) {  // greedy (with or without a penalty): exactly the CPU sampler's id
          GenerationConfig cfg;
          cfg.repetition_penalty = params[i].repetition_penalty;
          CHECK(Sampler(cfg).sample(row, history[i]) == picked[i]);
        } else {  // sampled: among the 40 likeliest
          const float x = row[picked[i]];
          const auto above = std::count_if(row.begin(), row.end(), [&](float y) { return y > x; });
          CHECK(above < 40);
        }
        next[i] = picked[i];
        history[i].push_back(picked[i]);
      }
    }
  }
}

TEST_CASE("decode_batch_sample picks on the GPU what the CPU sampler allows from the same logits") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  bool ran = false;
  if (const char* root = std::getenv("TURBINE_GPU_TEST_MODELS")) {  // a random model: prompts cut from its golden ids
    const std::string dir = std::string(root) + "/llama_tied";
    std::ifstream f(dir + "/golden.json");
    REQUIRE(f.good());
    const auto ids = nlohmann::json::parse(f)["ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() >= 64);
    check_device_sampling(load_weights(dir), [&](size_t i) {
      return std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(i), ids.begin() + static_cast<std::ptrdiff_t>(20 + 3 * i));
    });
    ran = true;
  }
  if (const std::string path = test::default_model_path(); !path.empty()) {
    LoadedModel m = load_model(path);
    check_device_sampling(m.weights, [&](size_t i) {
      return m.tokenizer->encode("Prompt number " + std::to_string(i) + " says: the the the quick brown fox");
    });
    ran = true;
  }
  if (!ran) return test::skip("neither the default model nor TURBINE_GPU_TEST_MODELS is available");
}
