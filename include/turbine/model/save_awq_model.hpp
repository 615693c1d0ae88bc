#pragma once
// save_awq_model(): a QuantizedModel as a Hugging Face directory in AutoAWQ's layout, which
// turbine (load_model) and AutoAWQ-aware tools read: config.json with quantization_config
// (quant_method awq, bits 4, group_size, zero_point, version gemm), model.safetensors with
// qweight / qzeros / scales per Linear and fp16 embedding, LM head, norms and biases, and the
// tokenizer files the caller passes.
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/half.hpp"
#include "../io/ggml_quants.hpp"
#include "../io/hf_config_writer.hpp"
#include "../io/safetensors_writer.hpp"
#include "quantize_model.hpp"
#include "weight_map.hpp"

namespace turbine {

namespace detail {

inline std::vector<uint16_t> fp16_values(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_fp16(v[i]);
  return h;
}

inline std::vector<uint16_t> fp16_matrix(const WeightMatrix& m) {
  std::vector<uint16_t> h(static_cast<size_t>(m.rows * m.cols));
  std::vector<float> row(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    io::dequantize_row(m.type, m.row(r), row.data(), m.cols);
    for (int64_t i = 0; i < m.cols; ++i) h[static_cast<size_t>(r * m.cols + i)] = f32_to_fp16(row[static_cast<size_t>(i)]);
  }
  return h;
}

inline void add_awq_linear(io::SafetensorsWriter& st, const std::string& weight_name, const quant::Int4Groups& g) {
  const std::string base = weight_name.substr(0, weight_name.size() - 7);  // drop ".weight"
  const quant::AwqTensors t = quant::int4_groups_to_awq(g);
  st.add_values(base + ".qweight", "I32", {g.in, g.out / 8}, t.qweight);
  st.add_values(base + ".qzeros", "I32", {g.in / g.group, g.out / 8}, t.qzeros);
  st.add_values(base + ".scales", "F16", {g.in / g.group, g.out}, t.scales);
}

}  // namespace detail

/// Writes `q` to `dir` (created if needed); `files` are extra (name, content) pairs such as
/// tokenizer.json and tokenizer_config.json. Returns the paths written.
inline std::vector<std::string> save_awq_model(const QuantizedModel& q, const std::string& dir,
                                               const std::vector<std::pair<std::string, std::string>>& files) {
  namespace fs = std::filesystem;
  const ModelConfig& c = q.config;
  check(c.awq_group_size > 0, "save_awq_model: the model is not quantized");
  // InternLM2's q/k/v are split already: the directory is a Llama (hf_config_writer.hpp).
  const Architecture arch = c.arch == Architecture::InternLM2 ? Architecture::Llama : c.arch;
  auto name = [&](WeightSlot s, int64_t l = 0) { return weight_name(arch, FileFormat::HuggingFace, s, l); };
  io::SafetensorsWriter st;
  st.set_metadata("format", "pt");
  st.add_values(name(WeightSlot::Embed), "F16", {c.vocab_size, c.hidden_size}, detail::fp16_matrix(q.source.embed));
  st.add_values(name(WeightSlot::FinalNorm), "F16", {c.hidden_size}, detail::fp16_values(q.final_norm));
  if (!c.tie_word_embeddings)
    st.add_values(name(WeightSlot::LmHead), "F16", {c.vocab_size, c.hidden_size}, detail::fp16_matrix(q.source.lm_head));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const QuantizedModel::Layer& L = q.layers[static_cast<size_t>(l)];
    st.add_values(name(WeightSlot::AttnNorm, l), "F16", {c.hidden_size}, detail::fp16_values(L.attn_norm));
    st.add_values(name(WeightSlot::MlpNorm, l), "F16", {c.hidden_size}, detail::fp16_values(L.mlp_norm));
    detail::add_awq_linear(st, name(WeightSlot::Wq, l), L.wq);
    detail::add_awq_linear(st, name(WeightSlot::Wk, l), L.wk);
    detail::add_awq_linear(st, name(WeightSlot::Wv, l), L.wv);
    detail::add_awq_linear(st, name(WeightSlot::Wo, l), L.wo);
    detail::add_awq_linear(st, name(WeightSlot::Gate, l), L.gate);
    detail::add_awq_linear(st, name(WeightSlot::Up, l), L.up);
    detail::add_awq_linear(st, name(WeightSlot::Down, l), L.down);
    if (!L.bq.empty()) {
      st.add_values(name(WeightSlot::Bq, l), "F16", {c.q_size()}, detail::fp16_values(L.bq));
      st.add_values(name(WeightSlot::Bk, l), "F16", {c.kv_size()}, detail::fp16_values(L.bk));
      st.add_values(name(WeightSlot::Bv, l), "F16", {c.kv_size()}, detail::fp16_values(L.bv));
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(fs::is_directory(dir), dir, ": cannot create the output directory (", ec.message(), ")");
  std::vector<std::string> written = st.write_model(dir, size_t(4) << 30);
  auto put = [&](const std::string& file, const std::string& text) {
    const std::string path = (fs::path(dir) / file).string();
    std::ofstream f(path, std::ios::binary);
    f << text;
    check(f.good(), path, ": cannot write");
    written.push_back(path);
  };
  put("config.json", io::hf_config_json(c).dump(2) + "\n");
  for (const auto& [file, text] : files) put(file, text);
  return written;
}

}  // namespace turbine
