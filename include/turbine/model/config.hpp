#pragma once
// ModelConfig: the run-time sizes and options of a decoder-only transformer, the same struct
// whichever file format (Hugging Face config.json, GGUF metadata) it was read from.
#include <cstdint>
#include <string>

namespace turbine {

enum class Architecture { Llama, Mistral, Qwen2, InternLM2 };

inline const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "llama";
    case Architecture::Mistral: return "mistral";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::InternLM2: return "internlm2";
  }
  return "?";
}

/// How rotary frequencies are rescaled for long contexts (HF `rope_scaling`).
struct RopeScaling {
  enum class Kind { None, Linear, Dynamic, Llama3 } kind = Kind::None;
  float factor = 1.0f;
  // llama3 only
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_heads unless the file says otherwise
  int64_t max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  int64_t sliding_window = 0;   // 0: full attention (Mistral may set it)
  int64_t bos_token_id = -1;
  int64_t eos_token_id = -1;

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
};

}  // namespace turbine
