// TensorParallel: N simulated ranks (heads, MLP columns and vocabulary sharded, the collectives
// summing the ranks' partial outputs) give the unsharded model's logits up to float summation
// order, on every architecture, with KV heads split or replicated, 4-bit weights sharded in their
// format or (off block boundaries) as f32, and a quantized KV cache; the default model greedy-decodes
// the same tokens.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include <turbine/engine/sampler.hpp>
#include <turbine/io/hf_config.hpp>
#include <turbine/io/safetensors.hpp>
#include <turbine/model/assemble_weights.hpp>
#include <turbine/model/load_model.hpp>
#include <turbine/model/tensor_parallel.hpp>

#include "compare_logits.hpp"
#include "test_support.hpp"

using namespace turbine;

namespace {

ModelWeights load_tiny_weights(const std::string& name) {
  const std::string dir = test::data_path("tiny_models/" + name);
  const ModelConfig c = io::load_hf_config(dir + "/config.json");
  auto st = std::make_shared<io::SafetensorsModel>(dir);
  ModelWeights w = assemble_weights(c, FileFormat::HuggingFace, [&](const std::string& n) { return st->find(n); }, dir);
  w.keep_alive.push_back(st);
  return w;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(vocab) - 1)(rng);
  return ids;
}

// Every position's logits (a prompt crossing a 64-token chunk boundary, then single tokens) of the
// model split `tp` ways against the unsharded one.
template <class S>
double tp_error(const std::string& name, int tp) {
  Transformer<S> whole(load_tiny_weights(name));
  TensorParallel<S> split(load_tiny_weights(name), tp);
  REQUIRE(split.ranks() == tp);
  const auto ids = random_ids(90, whole.config().vocab_size, static_cast<unsigned>(tp * 7 + name.size()));
  const auto want = test::all_logits(whole, ids, 70);
  const auto got = test::all_logits(split, ids, 70);
  REQUIRE(got.size() == want.size());
  return test::logits_rel_error(got, want);
}

}  // namespace

TEST_CASE("ShardPlan: heads, KV heads, MLP columns and vocabulary per rank; bad --tp is refused") {
  ModelConfig c;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.hidden_size = 128;
  c.intermediate_size = 100;
  c.vocab_size = 1001;
  c.num_layers = 1;
  SUBCASE("KV heads split when they divide by the ranks") {
    const ShardPlan p = ShardPlan::make(c, 1, 2);
    CHECK(p.heads.begin == 4);
    CHECK(p.heads.end == 8);
    CHECK(p.kv_heads.begin == 1);
    CHECK(p.kv_heads.end == 2);
    CHECK(p.intermediate.begin == 50);
    CHECK(p.vocab.begin == 500);
    CHECK(p.vocab.end == 1001);
    CHECK(p.shard_config(c).q_size() == 64);
    CHECK(p.shard_config(c).hidden_size == 128);
  }
  SUBCASE("KV heads replicated when the ranks outnumber them: each rank holds the head its queries use") {
    for (int r = 0; r < 8; ++r) {
      const ShardPlan p = ShardPlan::make(c, r, 8);
      CHECK(p.heads.size() == 1);
      CHECK(p.kv_heads.size() == 1);
      CHECK(p.kv_heads.begin == p.heads.begin / 4);  // query head h uses KV head h / (8 / 2)
    }
  }
  SUBCASE("the ranks cover every index exactly once") {
    int64_t inter = 0, vocab = 0;
    for (int r = 0; r < 3; ++r) {
      c.num_heads = 6;
      c.num_kv_heads = 3;
      const ShardPlan p = ShardPlan::make(c, r, 3);
      CHECK(p.intermediate.begin == inter);
      CHECK(p.vocab.begin == vocab);
      inter = p.intermediate.end;
      vocab = p.vocab.end;
    }
    CHECK(inter == 100);
    CHECK(vocab == 1001);
  }
  SUBCASE("errors name --tp") {
    CHECK_THROWS_WITH_AS(ShardPlan::make(c, 0, 3), doctest::Contains("--tp 3"), Error);
    c.num_heads = 12;
    c.num_kv_heads = 4;
    CHECK_THROWS_WITH_AS(ShardPlan::make(c, 0, 6), doctest::Contains("key/value heads"), Error);
    CHECK_THROWS_WITH_AS(ShardPlan::make(c, 0, 0), doctest::Contains("--tp must be at least 1"), Error);
  }
}

TEST_CASE("shard_weights: row shards are views, column shards are copies of the right columns") {
  ModelWeights w = load_tiny_weights("llama_untied");
  const ShardPlan p = ShardPlan::make(w.config, 1, 2);
  const ModelWeights s = shard_weights(w, p);
  const int64_t hd = w.config.head_dim;
  CHECK(s.layers[0].wq.data == w.layers[0].wq.row(2 * hd));
  CHECK(s.layers[0].wk.data == w.layers[0].wk.row(hd));
  CHECK(s.layers[0].w_gate.data == w.layers[0].w_gate.row(48));
  CHECK(s.embed.data == w.embed.row(64));
  // wo's columns [2 hd, 4 hd) of every row, dequantized, equal the shard's rows
  const WeightMatrix& wo = w.layers[0].wo;
  std::vector<float> full(static_cast<size_t>(wo.cols)), part(static_cast<size_t>(2 * hd));
  for (int64_t r = 0; r < wo.rows; ++r) {
    io::dequantize_row(wo.type, wo.row(r), full.data(), wo.cols);
    io::dequantize_row(s.layers[0].wo.type, s.layers[0].wo.row(r), part.data(), 2 * hd);
    REQUIRE(std::memcmp(full.data() + 2 * hd, part.data(), part.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("TensorParallel: N simulated ranks give the unsharded logits on every architecture") {
  for (const std::string name : {"llama_tied", "llama_untied", "qwen2", "mistral", "internlm2"}) {
    for (int tp : {1, 2, 4}) {
      CAPTURE(name);
      CAPTURE(tp);
      const double err = tp_error<Spec<f32>>(name, tp);
      MESSAGE(name, " --tp ", tp, ": relative error ", err);
      CHECK(err < 1e-5);
    }
  }
}

TEST_CASE("TensorParallel: 4-bit weights and a quantized KV cache shard too") {
  // RTN group 32: with 4 ranks wo's 16 columns per rank fall inside a group (sharded as f32), with
  // 2 ranks they are whole groups (sharded in the 4-bit format).
  for (int tp : {2, 4}) {
    CAPTURE(tp);
    const double w4 = tp_error<Spec<f32, quant::Rtn<4, 32>>>("llama_untied", tp);
    const double kv8 = tp_error<Spec<f32, quant::None, kv::Int8>>("qwen2", tp);
    const double kv4 = tp_error<Spec<f32, quant::None, kv::Int4>>("llama_tied", tp);
    MESSAGE("--tp ", tp, ": RTN w4 ", w4, ", KV int8 ", kv8, ", KV int4 ", kv4);
    CHECK(w4 < 1e-5);
    // A quantized KV cache rounds values, so a summation-order difference upstream can move a value
    // across a rounding step: still far below the error the quantization itself adds.
    CHECK(kv8 < 1e-3);
    CHECK(kv4 < 1e-2);
  }
}

TEST_CASE("TensorParallel: the default model split 3 ways greedy-decodes what the whole model does") {
  const std::string path = test::default_model_path();
  if (path.empty()) {
    test::skip("the default model is not downloaded (tools/fetch_model.sh)");
    return;
  }
  LoadedModel files = load_model(path);
  Llama<> whole(files.weights);
  TensorParallel<Spec<f32>> split(files.weights, 3);
  const std::vector<int32_t> prompt = files.tokenizer->encode("The capital of France is", true);
  auto a = whole.new_cache(128);
  auto b = split.new_cache(128);
  std::vector<float> la, lb;
  whole.forward(a, prompt, la);
  split.forward(b, prompt, lb);
  double worst = test::logits_rel_error(lb, la);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 24; ++i) {
    ta.push_back(Sampler::argmax(la));
    tb.push_back(Sampler::argmax(lb));
    if (ta.back() != tb.back()) break;
    whole.forward(a, std::span<const int32_t>(&ta.back(), 1), la);
    split.forward(b, std::span<const int32_t>(&tb.back(), 1), lb);
    worst = std::max(worst, test::logits_rel_error(lb, la));
  }
  MESSAGE("SmolLM2 --tp 3: worst relative error of the logits ", worst, ", greedy: ", files.tokenizer->decode(tb));
  CHECK(ta == tb);
  CHECK(worst < 1e-5);
}
