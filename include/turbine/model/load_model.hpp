#pragma once
// load_model(path): opens a GGUF file or a Hugging Face directory and returns everything needed to
// run it: config, weights (views into the mapped files), tokenizer and chat template.
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../io/gguf.hpp"
#include "../io/hf_config.hpp"
#include "../io/hf_tokenizer_config.hpp"
#include "../io/safetensors.hpp"
#include "../layers/rotary.hpp"
#include "../tokenizer/tokenizer.hpp"
#include "assemble_weights.hpp"
#include "awq_linears.hpp"

namespace turbine {

/// Everything load_model() read from a model: what Pipeline needs to run it.
struct LoadedModel {
  std::string path;                      ///< the file or directory it was loaded from
  std::string format;                    ///< "gguf" or "huggingface"
  ModelConfig config;                    ///< sizes and options
  ModelWeights weights;                  ///< views into the mapped files
  std::shared_ptr<Tokenizer> tokenizer;  ///< the model's tokenizer
  std::string chat_template_source;      ///< Jinja text from the model, may be empty
  std::vector<int32_t> eos_ids;          ///< tokens that end generation
  std::vector<RawTensor> tensors;        ///< every tensor in the files, for `turbine info`
};

namespace detail {

inline Architecture gguf_architecture(const io::GgufFile& f, const std::string& arch) {
  if (arch == "llama") return Architecture::Llama;
  if (arch == "qwen2") return Architecture::Qwen2;
  if (arch == "internlm2") return Architecture::InternLM2;
  fail(f.path(), ": general.architecture '", arch, "' is not supported (supported: llama, qwen2, internlm2)");
}

/// Llama 3.1+ GGUF files carry their rope scaling as `rope_freqs.weight`, a divisor per frequency
/// (llama.cpp's converter writes no rope.scaling metadata for it).
inline RopeScaling gguf_rope_factors(const io::GgufFile& f, const RawTensor& t, const ModelConfig& c) {
  check(c.rope_scaling.kind == RopeScaling::Kind::None, f.path(), ": tensor '", t.name,
        "' and metadata rope.scaling.type both rescale the rotary frequencies; expected one");
  check(t.shape == std::vector<int64_t>{c.head_dim / 2} && (t.type == StorageType::F32 || t.type == StorageType::F16),
        f.path(), ": tensor '", t.name, "' must be F32 or F16 of shape [", c.head_dim / 2, "] (one divisor per rotary "
        "frequency), got ", storage_info(t.type).name, " ", t.shape_string());
  std::vector<float> factors(static_cast<size_t>(c.head_dim / 2));
  io::dequantize_row(t.type, t.data, factors.data(), c.head_dim / 2);
  for (float x : factors)
    check(std::isfinite(x) && x > 0, f.path(), ": tensor '", t.name, "' holds ", x, "; every divisor must be positive");
  return rope_scaling_from_factors(c.rope_theta, c.head_dim, factors);
}

/// ModelConfig from GGUF metadata (llama.cpp keys prefixed by the architecture name).
inline ModelConfig gguf_config(const io::GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  ModelConfig c;
  c.arch = gguf_architecture(f, arch);
  const std::string p = arch + ".";
  auto positive = [&](const std::string& key) {
    const int64_t v = f.get_int(key);
    check(v > 0, f.path(), ": metadata '", key, "' must be positive (got ", v, ")");
    return v;
  };
  c.num_layers = positive(p + "block_count");
  c.hidden_size = positive(p + "embedding_length");
  c.intermediate_size = positive(p + "feed_forward_length");
  c.num_heads = positive(p + "attention.head_count");
  c.num_kv_heads = f.find_int(p + "attention.head_count_kv").value_or(c.num_heads);
  c.max_position_embeddings = f.find_int(p + "context_length").value_or(2048);
  c.rms_norm_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = static_cast<float>(f.find_float(p + "rope.freq_base").value_or(10000.0));
  c.head_dim = f.find_int(p + "attention.key_length").value_or(c.hidden_size / c.num_heads);
  if (auto rotary = f.find_int(p + "rope.dimension_count"); rotary && *rotary != c.head_dim)
    fail(f.path(), ": metadata '", p, "rope.dimension_count' is ", *rotary, " but the head dimension is ", c.head_dim,
         " (partial rotary embeddings are not supported)");
  if (auto experts = f.find_int(p + "expert_count"); experts && *experts > 0)
    fail(f.path(), ": metadata '", p, "expert_count' is ", *experts, " (mixture-of-experts models are not supported)");
  if (auto type = f.find_string(p + "rope.scaling.type")) {
    if (*type == "linear") c.rope_scaling.kind = RopeScaling::Kind::Linear;
    else if (*type == "yarn") fail(f.path(), ": rope.scaling.type 'yarn' is not supported");
    if (c.rope_scaling.kind != RopeScaling::Kind::None)
      c.rope_scaling.factor = static_cast<float>(f.find_float(p + "rope.scaling.factor").value_or(1.0));
  }
  if (const RawTensor* t = f.find_tensor("rope_freqs.weight")) c.rope_scaling = gguf_rope_factors(f, *t, c);
  c.attention_bias = c.arch == Architecture::Qwen2;
  const RawTensor* embed = f.find_tensor("token_embd.weight");
  check(embed != nullptr && embed->shape.size() == 2, f.path(), ": tensor 'token_embd.weight' is missing or not 2-D");
  c.vocab_size = f.find_int(p + "vocab_size").value_or(embed->shape[0]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.bos_token_id = f.find_int("tokenizer.ggml.bos_token_id").value_or(-1);
  c.eos_token_id = f.find_int("tokenizer.ggml.eos_token_id").value_or(-1);
  check(c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0, f.path(), ": attention.head_count ", c.num_heads,
        " is not a multiple of attention.head_count_kv ", c.num_kv_heads);
  check(c.head_dim > 0 && c.head_dim % 2 == 0, f.path(), ": head dimension ", c.head_dim, " must be even");
  return c;
}

inline TokenizerData gguf_tokenizer_data(const io::GgufFile& f) {
  TokenizerData d;
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2") d.kind = TokenizerData::ByteLevelBpe;
  else if (model == "llama") d.kind = TokenizerData::SentencePieceBpe;
  else fail(f.path(), ": tokenizer.ggml.model '", model, "' is not supported (supported: gpt2, llama)");
  d.tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (f.find("tokenizer.ggml.scores")) {
    const auto& scores = f.get_float_array("tokenizer.ggml.scores");
    d.scores.assign(scores.begin(), scores.end());
  }
  if (f.find("tokenizer.ggml.token_type")) {
    for (int64_t t : f.get_int_array("tokenizer.ggml.token_type")) d.token_types.push_back(static_cast<int32_t>(t));
  }
  if (f.find("tokenizer.ggml.merges")) d.merges = f.get_string_array("tokenizer.ggml.merges");
  d.pre = f.find_string("tokenizer.ggml.pre").value_or("default");
  d.bos = static_cast<int>(f.find_int("tokenizer.ggml.bos_token_id").value_or(-1));
  d.eos = static_cast<int>(f.find_int("tokenizer.ggml.eos_token_id").value_or(-1));
  d.unk = static_cast<int>(f.find_int("tokenizer.ggml.unknown_token_id").value_or(-1));
  d.pad = static_cast<int>(f.find_int("tokenizer.ggml.padding_token_id").value_or(-1));
  d.add_bos = f.find("tokenizer.ggml.add_bos_token") ? f.get_bool("tokenizer.ggml.add_bos_token")
                                                      : d.kind == TokenizerData::SentencePieceBpe;
  d.add_space_prefix = f.find("tokenizer.ggml.add_space_prefix") ? f.get_bool("tokenizer.ggml.add_space_prefix")
                                                                 : d.kind == TokenizerData::SentencePieceBpe;
  return d;
}

/// The weights of a Hugging Face directory; the Linear weights of an AWQ checkpoint (config.json
/// with quantization_config) come from its packed tensors.
/// `listing` (if given) also gets the repacked AWQ weights, for `turbine info`.
inline ModelWeights assemble_hf_weights(const ModelConfig& c, const std::shared_ptr<io::SafetensorsModel>& st,
                                        const std::string& dir, std::vector<RawTensor>* listing = nullptr) {
  std::shared_ptr<AwqLinears> awq;
  if (c.awq_group_size > 0) awq = std::make_shared<AwqLinears>(st, c.awq_group_size);
  ModelWeights w = assemble_weights(c, FileFormat::HuggingFace, [&](const std::string& n) -> const RawTensor* {
    if (st->find_entry(n)) return st->find(n);
    if (awq) return awq->find(n);
    if (n.ends_with(".weight") && st->find_entry(n.substr(0, n.size() - 7) + ".qweight"))
      fail(dir, ": tensor '", n.substr(0, n.size() - 7), ".qweight' is AWQ-packed but config.json has no "
           "quantization_config (add AutoAWQ's, with quant_method \"awq\" and group_size)");
    return nullptr;
  }, dir);
  w.keep_alive.push_back(st);
  if (awq) w.keep_alive.push_back(awq);
  if (awq && listing)
    for (const RawTensor& t : awq->made()) listing->push_back(t);
  return w;
}

inline LoadedModel load_gguf(const std::string& path) {
  auto file = std::make_shared<io::GgufFile>(path);
  LoadedModel m;
  m.path = path;
  m.format = "gguf";
  m.config = gguf_config(*file);
  m.tensors = file->tensors();
  m.weights = assemble_weights(m.config, FileFormat::Gguf,
                               [&](const std::string& n) { return file->find_tensor(n); }, path);
  m.weights.keep_alive.push_back(file);
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_data(gguf_tokenizer_data(*file)));
  check(m.tokenizer->vocab_size() <= m.config.vocab_size, path, ": tokenizer has ", m.tokenizer->vocab_size(),
        " tokens but the embedding only ", m.config.vocab_size, " rows");
  m.chat_template_source = file->find_string("tokenizer.chat_template").value_or("");
  if (m.config.eos_token_id >= 0) m.eos_ids.push_back(static_cast<int32_t>(m.config.eos_token_id));
  return m;
}

inline LoadedModel load_huggingface(const std::string& dir) {
  namespace fs = std::filesystem;
  LoadedModel m;
  m.path = dir;
  m.format = "huggingface";
  m.config = io::load_hf_config((fs::path(dir) / "config.json").string());
  auto st = std::make_shared<io::SafetensorsModel>(dir);
  for (const auto& n : st->names()) {  // float tensors only (packed integer tensors are AWQ's)
    const io::SafetensorsEntry* e = st->find_entry(n);
    if (e && io::safetensors_float_type(e->dtype))
      if (const RawTensor* t = st->find(n)) m.tensors.push_back(*t);
  }
  m.weights = assemble_hf_weights(m.config, st, dir, &m.tensors);
  const fs::path tj = fs::path(dir) / "tokenizer.json";
  check(fs::exists(tj), dir, ": tokenizer.json is missing (turbine needs the Hugging Face fast tokenizer file)");
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_tokenizer_json(tj.string()));
  const auto tc = io::load_hf_tokenizer_config(dir);
  m.chat_template_source = tc.chat_template.value_or("");
  if (m.config.eos_token_id >= 0) m.eos_ids.push_back(static_cast<int32_t>(m.config.eos_token_id));
  if (tc.eos_token && m.tokenizer->token_id(*tc.eos_token) >= 0) m.eos_ids.push_back(m.tokenizer->token_id(*tc.eos_token));
  if (const auto gc = io::load_hf_generation_config(dir); gc.eos_token_ids)
    for (int64_t id : *gc.eos_token_ids) m.eos_ids.push_back(static_cast<int32_t>(id));
  return m;
}

}  // namespace detail

/// Reads only the config and weights of a `.gguf` file or a Hugging Face directory: enough to
/// run Transformer::forward on token ids, with no tokenizer needed.
inline ModelWeights load_weights(const std::string& path) {
  namespace fs = std::filesystem;
  check(fs::exists(path), path, ": no such file or directory (give a .gguf file or a Hugging Face model directory)");
  if (fs::is_directory(path)) {
    const ModelConfig c = io::load_hf_config((fs::path(path) / "config.json").string());
    return detail::assemble_hf_weights(c, std::make_shared<io::SafetensorsModel>(path), path);
  }
  auto file = std::make_shared<io::GgufFile>(path);
  ModelWeights w = assemble_weights(detail::gguf_config(*file), FileFormat::Gguf,
                                    [&](const std::string& n) { return file->find_tensor(n); }, path);
  w.keep_alive.push_back(file);
  return w;
}

/// Opens a model: a `.gguf` file or a Hugging Face directory (config.json + safetensors).
inline LoadedModel load_model(const std::string& path) {
  namespace fs = std::filesystem;
  check(fs::exists(path), path, ": no such file or directory (give a .gguf file or a Hugging Face model directory)");
  if (fs::is_directory(path)) return detail::load_huggingface(path);
  return detail::load_gguf(path);
}

}  // namespace turbine
