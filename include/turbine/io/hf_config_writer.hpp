#pragma once
// ModelConfig -> a Hugging Face config.json that transformers and parse_hf_config read back to the
// same config (for the directories `turbine quantize` writes). InternLM2 is written as Llama: its
// q/k/v are split at load time, and a Llama with those weights is the same model.
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"
#include "../model/config.hpp"

namespace turbine::io {

/// config.json for `c`, with AutoAWQ's quantization_config when c.awq_group_size is set.
inline nlohmann::json hf_config_json(const ModelConfig& c) {
  nlohmann::json j;
  switch (c.arch) {
    case Architecture::Llama: case Architecture::InternLM2:
      j["architectures"] = {"LlamaForCausalLM"};
      j["model_type"] = "llama";
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = false;
      break;
    case Architecture::Mistral:
      j["architectures"] = {"MistralForCausalLM"};
      j["model_type"] = "mistral";
      j["sliding_window"] = c.sliding_window > 0 ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
      break;
    case Architecture::Qwen2:
      j["architectures"] = {"Qwen2ForCausalLM"};
      j["model_type"] = "qwen2";
      j["use_sliding_window"] = c.sliding_window > 0;
      if (c.sliding_window > 0) {
        j["sliding_window"] = c.sliding_window;
        j["max_window_layers"] = 0;
      }
      break;
  }
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  const RopeScaling& r = c.rope_scaling;
  switch (r.kind) {
    case RopeScaling::Kind::None: break;
    case RopeScaling::Kind::Linear: j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", r.factor}}; break;
    case RopeScaling::Kind::Dynamic: j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", r.factor}}; break;
    case RopeScaling::Kind::Llama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", r.factor},
                           {"low_freq_factor", r.low_freq_factor},
                           {"high_freq_factor", r.high_freq_factor},
                           {"original_max_position_embeddings", r.original_max_position_embeddings}};
      break;
    case RopeScaling::Kind::Factors:
      fail("config.json: the rotary frequencies are rescaled by a GGUF file's rope_freqs.weight that is not "
           "Llama 3's formula, which a Hugging Face config cannot express (quantize the original Hugging Face model)");
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["torch_dtype"] = "float16";
  if (c.awq_group_size > 0)
    j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4},           {"group_size", c.awq_group_size},
                                {"zero_point", true},    {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
  return j;
}

}  // namespace turbine::io
