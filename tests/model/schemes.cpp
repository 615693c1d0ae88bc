// Weight and KV-cache schemes on the CPU: Rtn rounds a float model at load time to exactly what
// `turbine quantize --method rtn` writes; Awq accepts AWQ directories and refuses anything else
// with what to run; kv::Int8 / kv::Int4 quantize keys and values per token and head (a real,
// bounded change to the logits, larger for int4), also in decode_batch; quantize_lm_head_int4
// rounds the LM head alone and the model computes with exactly that head.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <turbine/model/batched_decode.hpp>
#include <turbine/model/load_model.hpp>
#include <turbine/model/save_awq_model.hpp>
#include <turbine/model/transformer.hpp>
#include <turbine/model/weight_scheme.hpp>

#include "compare_logits.hpp"
#include "test_support.hpp"

using namespace turbine;
namespace fs = std::filesystem;

namespace {

std::vector<int32_t> random_ids(int n, int64_t vocab, std::mt19937& rng) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(vocab) - 1)(rng);
  return ids;
}

using Awq32 = Llama<f32, quant::Awq<4, 32>>;
using Awq64 = Llama<f32, quant::Awq<4, 64>>;
using Rtn128 = Llama<f32, quant::Rtn<4, 128>>;

}  // namespace

TEST_CASE("quant::Rtn rounds at load time exactly as turbine quantize --method rtn; quant::Awq takes only AWQ weights") {
  std::mt19937 rng(std::random_device{}());
  const ModelWeights src = load_weights(test::data_path("tiny_models/llama_untied"));
  const auto ids = random_ids(30, src.config.vocab_size, rng);
  Llama<f32, quant::Rtn<4, 32>> rtn(src);
  CHECK(rtn.weights().layers[0].wq.type == StorageType::I4G32);
  CHECK(rtn.weights().layers[1].w_down.type == StorageType::I4G32);
  CHECK(rtn.weights().embed.type == src.embed.type);  // the embedding stays as stored
  // The same rounding through the quantize tool and a directory.
  QuantizeOptions opt;
  opt.method = QuantMethod::Rtn;
  opt.group = 32;
  const fs::path dir = fs::temp_directory_path() / ("turbine_schemes_" + std::to_string(rng()));
  save_awq_model(quantize_model(src, {}, opt), dir.string(), {});
  const ModelWeights awq_dir = load_weights(dir.string());
  Llama<f32, quant::Awq<4, 32>> awq(awq_dir);
  Llama<f32> plain(awq_dir);
  const auto a = test::all_logits(rtn, ids, ids.size()), b = test::all_logits(awq, ids, ids.size()), c = test::all_logits(plain, ids, ids.size());
  CHECK(test::logits_rel_error(a, b) < 1e-5);  // only the fp16 copies of norms and embedding differ
  CHECK(test::logits_rel_error(b, c) == 0.0);  // Awq runs the directory's weights as stored, as None does
  CHECK_THROWS_WITH_AS(Awq32{src}, doctest::Contains("are not AWQ 4-bit: make an AWQ directory"),
                       Error);
  CHECK_THROWS_WITH_AS(Awq64{awq_dir},
                       doctest::Contains("do not match the model type's group size 64"), Error);
  CHECK_THROWS_WITH_AS(Rtn128{src}, doctest::Contains("not a multiple of the group size 128"),
                       Error);
  fs::remove_all(dir);
}

TEST_CASE("quantize_lm_head_int4 rounds the LM head alone, as rtn_quantize_int4 would; a tied embedding stays as stored") {
  std::mt19937 rng(std::random_device{}());
  for (const char* name : {"llama_tied", "llama_untied"}) {
    CAPTURE(name);
    const ModelWeights src = load_weights(test::data_path(std::string("tiny_models/") + name));
    const int64_t hidden = src.config.hidden_size, vocab = src.config.vocab_size;
    const int64_t group = lm_head_group(hidden);
    REQUIRE(group > 0);
    const ModelWeights q = quantize_lm_head_int4(src, group);
    CHECK(q.lm_head.type == int4_groups_type(group));
    CHECK(q.lm_head.rows == vocab);
    CHECK(q.embed.data == src.embed.data);  // the embedding is the stored one, tied or not
    CHECK(q.embed.type == src.embed.type);
    CHECK(q.lm_head.data != q.embed.data);
    CHECK(q.layers[0].wq.data == src.layers[0].wq.data);  // nothing else is touched
    CHECK(quantize_lm_head_int4(q, group).lm_head.data == q.lm_head.data);  // already 4-bit: kept
    // The reference: the head rounded on its own by rtn_quantize_int4 (fp16 scales), as floats.
    std::vector<float> head(static_cast<size_t>(vocab * hidden));
    io::dequantize_matrix(src.lm_head, head.data());
    const std::vector<float> deq =
        quant::rtn_quantize_int4(head.data(), vocab, hidden, group, quant::round_scale_fp16).dequantize();
    ModelWeights ref = src;
    ref.lm_head = WeightMatrix{StorageType::F32, vocab, hidden, reinterpret_cast<const std::byte*>(deq.data())};
    const auto ids = random_ids(20, vocab, rng);
    Llama<f32> with_q(q), with_ref(ref), base(src);
    const auto a = test::all_logits(with_q, ids, 7), b = test::all_logits(with_ref, ids, 7);
    const auto c = test::all_logits(base, ids, 7);
    CHECK(test::logits_rel_error(a, b) < 1e-5);
    CHECK(test::logits_rel_error(a, c) > 1e-4);  // the head did change: 4 bits are not the stored weights
    CHECK_THROWS_WITH_AS(quantize_lm_head_int4(src, 48), doctest::Contains("lm_head: 4-bit groups of 48"), Error);
    CHECK_THROWS_WITH_AS(quantize_lm_head_int4(q, group == 32 ? 64 : 32), doctest::Contains("do not match group size"),
                         Error);
  }
  CHECK(lm_head_group(4096) == 128);
  CHECK(lm_head_group(576) == 64);
  CHECK(lm_head_group(96) == 32);
  CHECK(lm_head_group(100) == 0);
}

TEST_CASE("kv_round_trip_head: within half a step of the input, extremes kept, constant vectors untouched") {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int levels : {255, 15}) {
    std::vector<float> x(64);
    for (auto& v : x) v = nd(rng);
    const auto orig = x;
    quant::kv_round_trip_head(x.data(), 64, levels);
    const float lo = *std::min_element(orig.begin(), orig.end()), hi = *std::max_element(orig.begin(), orig.end());
    const float step = (hi - lo) / static_cast<float>(levels);
    int changed = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      CHECK(std::abs(x[i] - orig[i]) <= 0.5f * step * 1.0001f);
      changed += x[i] != orig[i];
    }
    CHECK(changed > 0);
    CHECK(*std::min_element(x.begin(), x.end()) == lo);
  }
  std::vector<float> flat(16, 3.5f);
  quant::kv_round_trip_head(flat.data(), 16, 255);
  CHECK(flat == std::vector<float>(16, 3.5f));
}

TEST_CASE("kv_round_trip: kv::Int4 quantizes each group of 32 channels alone, kv::Int8 the whole head") {
  static_assert(kv::Int8::group == 0 && kv::Int4::group == 32);
  CHECK(quant::kv_group_size<kv::Int8>(128) == 128);
  CHECK(quant::kv_group_size<kv::Int4>(128) == 32);
  CHECK(quant::kv_group_size<kv::Int4>(16) == 16);  // a group past the head is the whole head
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const int64_t tokens = 3, heads = 2, hd = 64;
  std::vector<float> x(tokens * heads * hd);
  for (auto& v : x) v = nd(rng);
  x[5] = 40.0f;  // an outlier spoils only its own group's step
  auto by_group = x, whole = x, got4 = x, got8 = x;
  for (int64_t i = 0; i < tokens * heads * hd; i += 32) quant::kv_round_trip_head(by_group.data() + i, 32, 15);
  for (int64_t i = 0; i < tokens * heads * hd; i += hd) quant::kv_round_trip_head(whole.data() + i, hd, 255);
  quant::kv_round_trip<kv::Int4>(got4.data(), tokens, heads, hd);
  quant::kv_round_trip<kv::Int8>(got8.data(), tokens, heads, hd);
  CHECK(got4 == by_group);
  CHECK(got8 == whole);
  std::vector<float> odd(48, 1.0f);
  CHECK_THROWS_WITH_AS(quant::kv_round_trip<kv::Int4>(odd.data(), 1, 1, 48), doctest::Contains("does not divide head_dim"), Error);
}

TEST_CASE("kv::Int8 and kv::Int4 change the logits a little (int4 more), in forward and in decode_batch") {
  std::mt19937 rng(std::random_device{}());
  for (const char* name : {"llama_tied", "qwen2", "mistral"}) {
    CAPTURE(name);
    const ModelWeights w = load_weights(test::data_path(std::string("tiny_models/") + name));
    const auto ids = random_ids(40, w.config.vocab_size, rng);
    Llama<f32> base(w);
    Llama<f32, quant::None, kv::Int8> int8(w);
    Llama<f32, quant::None, kv::Int4> int4(w);
    const auto ref = test::all_logits(base, ids, ids.size());
    const double e8 = test::logits_rel_error(test::all_logits(int8, ids, ids.size()), ref), e4 = test::logits_rel_error(test::all_logits(int4, ids, ids.size()), ref);
    MESSAGE(std::string(name), ": logits relative error, KV int8 ", e8, ", KV int4 ", e4);
    CHECK(e8 > 0.0);
    CHECK(e8 < 0.05);  // measured 0.013-0.019 on these peaked-attention models
    CHECK(e4 > e8);
    CHECK(e4 < 0.6);   // measured 0.21-0.27
    // decode_batch quantizes the rows it writes as forward() does: the same logits bit for bit.
    auto alone = int8.new_cache(64), together = int8.new_cache(64);
    std::vector<float> l1, l2;
    int8.forward(alone, ids, l1);
    int8.forward(together, ids, l2);
    const int32_t next = 7 % static_cast<int32_t>(w.config.vocab_size);
    int8.forward(alone, std::span<const int32_t>(&next, 1), l1);
    HostKvCache* caches[] = {&together};
    BatchedDecodeScratch scratch;
    decode_batch(int8, std::span<HostKvCache* const>(caches), std::span<const int32_t>(&next, 1), l2, scratch);
    CHECK(l1 == l2);
  }
}
