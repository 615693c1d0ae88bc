// 4-bit weights on the GPU (quant::Rtn / quant::Awq on turbine::Cuda): every position's logits of
// the W4A16 model (prefill: gemm_w4 up to 512 tokens on sm_90a, a dequantized copy + GEMM above;
// decode: the W4 GEMV, graph-captured) against
// the CPU model with the same 4-bit weights, with the decode step unfused, with the engine's default
// folds and with every fold (the fused chain on the 4-bit stream), on the random GPU test models of
// every architecture (tools/gpu_session.sh makes them with head_dim 64: the GPU's rotary kernel takes 64 and 128, so
// the checked-in head_dim-16 models cannot run there) and the default model; batched decode
// against one sequence at a time; an AWQ directory made by quantize_model answering on the GPU; and a
// 4-bit LM head (quantize_lm_head_int4) on the W4 kernels against the CPU model with the same head.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <nlohmann/json.hpp>
#include <turbine/model/save_awq_model.hpp>
#include <turbine/turbine.cuh>

#include "compare_logits.hpp"
#include "test_support.hpp"

using namespace turbine;
using test::all_logits;

namespace {

template <int G>
void compare_w4(const ModelWeights& w, const std::vector<int32_t>& ids, const std::string& what) {
  Llama<f32, quant::Rtn<4, G>> cpu(w);
  using Gpu = Llama<f16, quant::Rtn<4, G>, kv::Same, Cuda>;
  Gpu gpu(w);
  // The decode step's chains: unfused (norm, rope and silu kernels around the W4 GEMV), the engine's
  // default folds for this model, and every fold (norm prologues, rotary/KV-store epilogue, silu
  // epilogue on the 4-bit weight stream).
  using F = typename Gpu::DecodeFusion;
  F stats;  // the norms from the tile sums of the O and down epilogues (the large-model chain)
  stats.norm_stats = true;
  F rope_only;  // the rotary/KV-store epilogue on x normalized by the norm kernels (gemv_w4_rope)
  rope_only.norm = false;
  F kernels;  // the large-model chain: norm and rotary kernels around the W4 GEMVs
  kernels.norm = kernels.rope = false;
  F chain_all;  // every fold of the kernel chain, without the persistent kernel
  chain_all.persistent = stats.persistent = rope_only.persistent = kernels.persistent = false;
  // The persistent kernel (one launch for the layer stack) with attention splits of at least 128
  // positions (one split for these sequences), and of 16 (up to 4 splits, merged in the O prologue).
  // The engine's default is 32.
  const std::pair<const char*, F> chains[] = {{"unfused", F::none()},
                                              {"default folds", F::for_model(w.config)},
                                              {"all folds", chain_all},
                                              {"norms from tile sums", stats},
                                              {"rope epilogue, norm kernels", rope_only},
                                              {"norm and rotary kernels", kernels},
                                              {"persistent kernel", F{}},
                                              {"persistent kernel, 16-position splits", F{}}};
  for (size_t prefill : {ids.size(), size_t(1), std::min(ids.size(), size_t(12))}) {
    const auto ref = all_logits(cpu, ids, prefill);
    for (const auto& [chain, fusion] : chains) {
      gpu.set_decode_fusion(fusion);
      gpu.set_persistent_split_positions(std::string(chain).find("16-position") != std::string::npos ? 16 : 128);
      const auto got = all_logits(gpu, ids, prefill);
      REQUIRE(got.size() == ref.size());
      const double err = test::logits_rel_error(got, ref);
      MESSAGE(what, " W4 g", G, " prefill ", prefill, "/", ids.size(), ", ", std::string(chain),
              ": relative error vs the CPU 4-bit model ", err);
      CHECK(err < 1e-2);
    }
  }
}

std::vector<int32_t> random_ids(size_t n, int64_t vocab, std::mt19937& rng) {
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(vocab) - 1)(rng);
  return ids;
}

}  // namespace

/// The random GPU test models (hidden 256, head_dim 64: group 128), or empty with a skip message.
std::string gpu_models_root() {
  const char* root = std::getenv("TURBINE_GPU_TEST_MODELS");
  return root ? root : "";
}

TEST_CASE("W4A16 on the GPU matches the CPU's 4-bit model on every architecture (prefill GEMM and decode GEMV)") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string root = gpu_models_root();
  if (root.empty()) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  for (const char* name : {"llama_tied", "llama_untied", "qwen2", "mistral", "internlm2"}) {
    const std::string dir = root + "/" + name;
    std::ifstream f(dir + "/golden.json");
    REQUIRE(f.good());
    const auto ids = nlohmann::json::parse(f)["ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() >= 64);
    compare_w4<128>(load_weights(dir), std::vector<int32_t>(ids.begin(), ids.begin() + 64), name);
  }
}

TEST_CASE("W4A16 prefill of 100 tokens to past gemm_w4's limit (one and several token tiles, then the dequantized path) matches the CPU") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string root = gpu_models_root();
  if (root.empty()) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  for (const char* name : {"llama_untied", "qwen2"}) {  // qwen2: the q/k/v biases
    const std::string dir = root + "/" + name;
    std::ifstream f(dir + "/golden.json");
    REQUIRE(f.good());
    auto ids = nlohmann::json::parse(f)["ids"].get<std::vector<int32_t>>();
    REQUIRE(!ids.empty());
    ModelWeights w = load_weights(dir);
    // past the 4-bit GEMM's token limit (gemm_w4_max_useful_tokens: 512 on sm_90a), where the engine
    // multiplies by a dequantized copy instead
    const size_t limit = size_t(turbine::cuda::gemm_w4_max_useful_tokens()), total = limit + 4;
    // The context is raised to hold them: neither model's rotary embedding depends on it (plain
    // rope for qwen2, llama3 scaling keyed to original_max_position_embeddings), so CPU and GPU
    // compute the same positions either way.
    w.config.max_position_embeddings = std::max<int64_t>(w.config.max_position_embeddings, int64_t(total));
    while (ids.size() < total) ids.push_back(ids[ids.size() % 97]);
    ids.resize(total);
    Llama<f32, quant::Rtn<4, 128>> cpu(w);
    Llama<f16, quant::Rtn<4, 128>, kv::Same, Cuda> gpu(w);
    for (size_t prefill : {size_t(100), limit, total}) {
      const auto ref = all_logits(cpu, ids, prefill);
      const auto got = all_logits(gpu, ids, prefill);
      REQUIRE(got.size() == ref.size());
      const double err = test::logits_rel_error(got, ref);
      MESSAGE(name, " W4 g128 prefill ", prefill, "/", total, ": relative error vs the CPU 4-bit model ", err);
      CHECK(err < 1e-2);
    }
  }
}

TEST_CASE("a 4-bit LM head on the GPU matches the CPU's (W4 GEMV in decode, gemm_w4 in prefill, every chain) and is 4-bit there") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string root = gpu_models_root();
  if (root.empty()) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  for (const char* name : {"llama_tied", "llama_untied"}) {
    const std::string dir = root + "/" + name;
    std::ifstream f(dir + "/golden.json");
    REQUIRE(f.good());
    const auto ids = nlohmann::json::parse(f)["ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() >= 64);
    const ModelWeights w = load_weights(dir);
    const ModelWeights q = quantize_lm_head_int4(w, lm_head_group(w.config.hidden_size));
    compare_w4<128>(q, std::vector<int32_t>(ids.begin(), ids.begin() + 64), std::string(name) + ", 4-bit LM head");
    // On the device the head is 4-bit: a vocab x hidden f16 matrix less, a 4-bit one more.
    Llama<f16, quant::Rtn<4, 128>, kv::Same, Cuda> plain(w), with_q(q);
    const int64_t head_f16 = w.config.vocab_size * w.config.hidden_size * 2;
    const bool tied = w.lm_head.data == w.embed.data;
    const int64_t head_w4 = w.config.vocab_size * (w.config.hidden_size / 2 + w.config.hidden_size / 128 * 4);  // codes, params
    const int64_t expect = int64_t(plain.device_weight_bytes()) - (tied ? 0 : head_f16) + head_w4;
    CAPTURE(name);
    CHECK(int64_t(with_q.device_weight_bytes()) == expect);
  }
}

TEST_CASE("W4A16 batched decode gives each sequence what it gets alone") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string root = gpu_models_root();
  if (root.empty()) return test::skip("TURBINE_GPU_TEST_MODELS is not set (tools/gpu_session.sh run makes the models)");
  std::mt19937 rng(std::random_device{}());
  const ModelWeights w = load_weights(root + "/llama_untied");
  Llama<f16, quant::Rtn<4, 128>, kv::Same, Cuda> gpu(w);
  using Cache = decltype(gpu)::Cache;
  using F = decltype(gpu)::DecodeFusion;
  const int64_t vocab = w.config.vocab_size;
  F stats;
  stats.norm_stats = true;
  F chain_all;
  chain_all.persistent = stats.persistent = false;
  // unfused, every fold on the 4-bit stream, norms from tile sums; alone, each sequence runs the
  // persistent kernel with F{} (batches run the chain)
  for (const F& fusion : {F::none(), chain_all, stats, F{}})
  for (size_t n : {size_t(2), size_t(5), size_t(8)}) {
    gpu.set_decode_fusion(fusion);
    std::vector<Cache> alone, together;
    std::vector<int32_t> next(n);
    std::vector<float> logits;
    for (size_t i = 0; i < n; ++i) {
      const auto prompt = random_ids(3 + 4 * i, vocab, rng);
      alone.push_back(gpu.new_cache(64));
      together.push_back(gpu.new_cache(64));
      gpu.forward(alone.back(), prompt, logits);
      gpu.forward(together.back(), prompt, logits);
      next[i] = static_cast<int32_t>(i % vocab);
    }
    std::vector<Cache*> caches;
    for (auto& c : together) caches.push_back(&c);
    std::vector<float> batch(n * vocab);
    gpu.decode_batch(std::span<Cache* const>(caches), next, batch.data());
    for (size_t i = 0; i < n; ++i) {
      gpu.forward(alone[i], std::span<const int32_t>(&next[i], 1), logits);
      const std::vector<float> row(batch.begin() + i * vocab, batch.begin() + (i + 1) * vocab);
      CAPTURE(n);
      CAPTURE(i);
      CAPTURE(fusion.any());
      CAPTURE(fusion.norm_stats);
      CAPTURE(fusion.persistent);
      // Alone with F{}, a sequence runs the persistent kernel and the batch the chain: the same
      // arithmetic in another order (norms from tile sums, the residual added in place), so the
      // bound is the two paths' distance from the CPU model (about 2e-3 each), not 1e-3.
      CHECK(test::logits_rel_error(row, logits) < (fusion.persistent ? 5e-3 : 1e-3));
    }
  }
}

TEST_CASE("W4A16 on the default model: close to the CPU's 4-bit model, a quarter of the weight memory, and an AWQ directory answers") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  const std::string path = test::default_model_path();
  if (path.empty()) return test::skip("default model not fetched");
  LoadedModel m = load_model(path);
  const auto ids = m.tokenizer->encode("The lighthouse keeper had lived alone on the island for nearly twenty years.");
  compare_w4<64>(m.weights, ids, "smollm2");
  {
    Llama<f16, quant::None, kv::Same, Cuda> f16_model(m.weights);
    Llama<f16, quant::Rtn<4, 64>, kv::Same, Cuda> w4_model(m.weights);
    MESSAGE("device weights: f16 ", f16_model.device_weight_bytes() >> 20, " MiB, W4 ", w4_model.device_weight_bytes() >> 20,
            " MiB (embedding and LM head stay f16)");
    CHECK(w4_model.device_weight_bytes() < f16_model.device_weight_bytes() * 2 / 3);
  }
  // AWQ: a directory from quantize_model (tiny calibration), run on the GPU as quant::Awq.
  QuantizeOptions opt;
  opt.group = 64;
  const auto calib = calibration_windows(
      m.tokenizer->encode("The quick brown fox jumps over the lazy dog. Paris is the capital and largest city of France, "
                          "on the Seine. Many people visit its museums, cafes and gardens every year, in every season."),
      2, 24);
  const auto dir = std::filesystem::temp_directory_path() / ("turbine_w4_" + std::to_string(std::random_device{}()));
  save_awq_model(quantize_model(m.weights, calib, opt), dir.string(), {});
  LoadedModel awq = load_model(path);  // tokenizer from the GGUF, weights from the directory
  awq.weights = load_weights(dir.string());
  Pipeline<Llama<f16, quant::Awq<4, 64>, kv::Same, Cuda>> pipe(std::move(awq), PipelineOptions{});
  GenerationConfig cfg;
  cfg.max_new_tokens = 24;
  const auto r = pipe.generate({"What is the capital of France?"}, cfg)[0];
  MESSAGE("AWQ on the GPU: ", r.text);
  CHECK(r.text.find("Paris") != std::string::npos);
  std::filesystem::remove_all(dir);
}
