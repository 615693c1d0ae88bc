// quantize_model + save_awq_model + load_model on the random tiny models of every architecture:
// the directory written loads back with exactly the 4-bit weights that were chosen, its logits
// stay near the float model's, AWQ's per-layer search never loses to round-to-nearest, and the
// scales folded into the norms leave the float model unchanged (checked through the searches'
// inputs: an AWQ model with 16-bit "rounding" would equal the source, so we compare the AWQ and
// RTN models' errors instead).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <turbine/model/load_model.hpp>
#include <turbine/model/save_awq_model.hpp>
#include <turbine/model/transformer.hpp>

#include "compare_logits.hpp"
#include "test_support.hpp"

using namespace turbine;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("turbine_quant_" + std::to_string(std::random_device{}()));
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<float> logits_of(const ModelWeights& w, const std::vector<int32_t>& ids) {
  Transformer<Spec<f32>> m(w);
  return test::all_logits(m, ids, ids.size());
}

std::vector<std::vector<int32_t>> random_sequences(int n, int len, int vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  std::vector<std::vector<int32_t>> s(static_cast<size_t>(n));
  for (auto& seq : s)
    for (int i = 0; i < len; ++i) seq.push_back(tok(rng));
  return s;
}

}  // namespace

TEST_CASE("quantize_model: the AWQ directory loads back with the chosen 4-bit weights, for every architecture") {
  std::mt19937 rng(std::random_device{}());
  for (const char* name : {"llama_tied", "llama_untied", "qwen2", "mistral", "internlm2"}) {
    CAPTURE(name);
    const ModelWeights src = load_weights(test::data_path(std::string("tiny_models/") + name));
    const int vocab = static_cast<int>(src.config.vocab_size);
    const auto calib = random_sequences(6, 48, vocab, rng);
    const auto probe = random_sequences(1, 40, vocab, rng)[0];
    const auto ref = logits_of(src, probe);
    double err[2] = {0, 0};
    for (QuantMethod method : {QuantMethod::Rtn, QuantMethod::Awq}) {
      const bool awq = method == QuantMethod::Awq;
      QuantizeOptions opt;
      opt.method = method;
      opt.group = 32;
      opt.feedback = opt.sequential = true;  // the options off by default, on here
      int64_t layers_done = 0;
      opt.on_layer = [&](int64_t done, int64_t) { layers_done = done; };
      const QuantizedModel q = quantize_model(src, calib, opt);
      CHECK(layers_done == src.config.num_layers);
      CHECK(q.report.size() == (awq ? static_cast<size_t>(src.config.num_layers) : 0u));
      for (const auto& r : q.report) {
        CHECK(r.loss_awq <= r.loss_rtn);
        // the group refinement (on by default) never raises the within-group output error
        CHECK(r.groups > 0);
        CHECK(r.round_error <= r.round_error_rtn * (1 + 1e-9));  // (feedback re-sums it in another order)
        // error feedback never raises a row's output error either
        CHECK(r.rows > 0);
        CHECK(r.feedback_rows_kept <= r.rows);
        CHECK(r.feedback_error <= r.round_error);
      }
      TempDir dir;
      save_awq_model(q, dir.path.string(), {});
      const ModelWeights back = load_weights(dir.path.string());
      CHECK(back.config.awq_group_size == 32);
      // Every Linear is exactly the dequantized 4-bit weights that were chosen.
      for (int64_t l = 0; l < src.config.num_layers; ++l) {
        const auto& bl = back.layers[static_cast<size_t>(l)];
        const auto& ql = q.layers[static_cast<size_t>(l)];
        const std::pair<const WeightMatrix*, const quant::Int4Groups*> pairs[] = {
            {&bl.wq, &ql.wq}, {&bl.wk, &ql.wk}, {&bl.wv, &ql.wv}, {&bl.wo, &ql.wo},
            {&bl.w_gate, &ql.gate}, {&bl.w_up, &ql.up}, {&bl.w_down, &ql.down}};
        for (const auto& [m, g] : pairs) {
          REQUIRE(m->type == StorageType::I4G32);
          REQUIRE(m->rows == g->out);
          REQUIRE(m->cols == g->in);
          const std::vector<float> want = g->dequantize();
          std::vector<float> row(static_cast<size_t>(m->cols));
          int64_t mismatches = 0;
          for (int64_t r = 0; r < m->rows; ++r) {
            io::dequantize_row(m->type, m->row(r), row.data(), m->cols);
            for (int64_t i = 0; i < m->cols; ++i) mismatches += row[static_cast<size_t>(i)] != want[static_cast<size_t>(r * m->cols + i)];
          }
          CHECK(mismatches == 0);
        }
      }
      err[awq] = test::logits_rel_error(logits_of(back, probe), ref);
      MESSAGE(std::string(name), (awq ? " awq" : " rtn"), " g32: logits relative error vs the float model ", err[awq]);
      // 4 bits on these random 2-layer models (peaked attention, hidden 64) cost 0.3-0.45; a wrong
      // layout (transposed, misordered nibbles) gives about 1.4.
      CHECK(err[awq] < 0.6);
    }
    CHECK(err[1] < 1.5 * err[0]);  // AWQ's scales do not make the model worse than RTN
  }
}

TEST_CASE("quantize_model: sequential calibration changes the layers after the first, and only those") {
  std::mt19937 rng(test::fresh_seed("quantize_model sequential"));
  const ModelWeights src = load_weights(test::data_path("tiny_models/llama_untied"));
  REQUIRE(src.config.num_layers >= 2);
  const auto calib = random_sequences(6, 48, static_cast<int>(src.config.vocab_size), rng);
  QuantizeOptions opt;
  opt.group = 32;
  opt.feedback = opt.sequential = true;
  const QuantizedModel seq = quantize_model(src, calib, opt);
  opt.sequential = false;
  const QuantizedModel flt = quantize_model(src, calib, opt);
  // the first layer reads the embeddings either way
  CHECK(seq.layers[0].down.q == flt.layers[0].down.q);
  CHECK(seq.layers[0].down.scales == flt.layers[0].down.scales);
  // the second reads the first's output, quantized or not
  CHECK(seq.layers[1].down.q != flt.layers[1].down.q);
  // with feedback off, its report says so
  opt.feedback = false;
  const QuantizedModel plain = quantize_model(src, calib, opt);
  for (const auto& r : plain.report) {
    CHECK(r.rows == 0);
    CHECK(r.feedback_error == r.round_error);
  }
}

TEST_CASE("quantize_model: sizes that do not fit the group size or AutoAWQ's packing are refused") {
  const ModelWeights src = load_weights(test::data_path("tiny_models/llama_tied"));
  QuantizeOptions opt;
  opt.method = QuantMethod::Rtn;
  opt.group = 128;  // hidden 64
  CHECK_THROWS_WITH_AS(quantize_model(src, {}, opt), doctest::Contains("not a multiple of the group size 128"), Error);
  opt.group = 48;
  CHECK_THROWS_WITH_AS(quantize_model(src, {}, opt), doctest::Contains("group size 48 is not supported"), Error);
  opt.group = 32;
  opt.method = QuantMethod::Awq;
  CHECK_THROWS_WITH_AS(quantize_model(src, {}, opt), doctest::Contains("needs calibration text"), Error);
}

TEST_CASE("AWQ checkpoints: packed tensors without a quantization_config, and broken shapes, are clear errors") {
  const ModelWeights src = load_weights(test::data_path("tiny_models/llama_tied"));
  QuantizeOptions opt;
  opt.method = QuantMethod::Rtn;
  opt.group = 32;
  const QuantizedModel q = quantize_model(src, {}, opt);
  TempDir dir;
  save_awq_model(q, dir.path.string(), {});
  // The same tensors with a config that lacks quantization_config.
  ModelConfig plain = q.config;
  plain.awq_group_size = 0;
  {
    std::ofstream f(dir.path / "config.json");
    f << io::hf_config_json(plain).dump();
  }
  CHECK_THROWS_WITH_AS(load_weights(dir.path.string()), doctest::Contains("no quantization_config"), Error);
  // A group size that does not match the tensors.
  ModelConfig wrong = q.config;
  wrong.awq_group_size = 64;
  {
    std::ofstream f(dir.path / "config.json");
    f << io::hf_config_json(wrong).dump();
  }
  CHECK_THROWS_WITH_AS(load_weights(dir.path.string()), doctest::Contains("do not fit group size 64"), Error);
}

TEST_CASE("calibration_windows: evenly spread windows, bounded by the text") {
  std::vector<int32_t> ids(1000);
  for (int i = 0; i < 1000; ++i) ids[static_cast<size_t>(i)] = i;
  const auto w = calibration_windows(ids, 4, 100);
  REQUIRE(w.size() == 4);
  CHECK(w[0].front() == 0);
  CHECK(w[3].back() == 999);
  for (const auto& s : w) CHECK(s.size() == 100u);
  CHECK(calibration_windows(ids, 50, 100).size() == 10u);  // no more windows than the text holds
  CHECK(calibration_windows(ids, 3, 5000).size() == 1u);   // a short text: one window, all of it
  CHECK(calibration_windows(ids, 3, 5000)[0].size() == 1000u);
  CHECK_THROWS_WITH_AS(calibration_windows(std::vector<int32_t>(3), 1, 10), doctest::Contains("only 3 tokens"), Error);
}
