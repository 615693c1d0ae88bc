#pragma once
// ModelConfig: the run-time sizes and options of a decoder-only transformer, the same struct
// whichever file format (Hugging Face config.json, GGUF metadata) it was read from.
#include <cstdint>
#include <string>
#include <vector>

namespace turbine {

/// The model families turbine runs; they differ in weight names and a few options.
enum class Architecture { Llama, Mistral, Qwen2, InternLM2 };

/// The lower-case name of `a` ("llama", "qwen2", ...).
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
  /// The scaling method: none, linear (position interpolation), dynamic NTK, Llama 3's, or a
  /// divisor per frequency (a GGUF file's `rope_freqs.weight` that is not Llama 3's formula).
  enum class Kind { None, Linear, Dynamic, Llama3, Factors } kind = Kind::None;  ///< the method in use
  float factor = 1.0f;  ///< the context extension factor
  float low_freq_factor = 1.0f;   ///< llama3 only: wavelengths above original / this are scaled fully
  float high_freq_factor = 4.0f;  ///< llama3 only: wavelengths below original / this are kept
  int64_t original_max_position_embeddings = 8192;  ///< llama3 only: the context trained on
  std::vector<float> freq_factors;  ///< Factors only: inv_freq[i] is divided by freq_factors[i]
};

/// The sizes and options of a decoder-only transformer, read from config.json or GGUF metadata.
struct ModelConfig {
  Architecture arch = Architecture::Llama;  ///< the model family
  int64_t vocab_size = 0;                   ///< rows of the embedding and the LM head
  int64_t hidden_size = 0;                  ///< width of the residual stream
  int64_t intermediate_size = 0;            ///< width of the MLP
  int64_t num_layers = 0;                   ///< decoder layers
  int64_t num_heads = 0;                    ///< query heads
  int64_t num_kv_heads = 0;                 ///< key/value heads (a divisor of num_heads)
  int64_t head_dim = 0;                     ///< hidden_size / num_heads unless the file says otherwise
  int64_t max_position_embeddings = 2048;   ///< the context length
  float rms_norm_eps = 1e-5f;               ///< epsilon of the norms
  float rope_theta = 10000.0f;              ///< base of the rotary frequencies
  RopeScaling rope_scaling;                 ///< long-context rescaling of the rotary frequencies
  bool tie_word_embeddings = false;         ///< the LM head is the embedding matrix
  bool attention_bias = false;              ///< q/k/v projections carry a bias (Qwen2)
  int64_t sliding_window = 0;               ///< 0: full attention (Mistral may set it)
  int64_t bos_token_id = -1;                ///< beginning of sequence; -1: none
  int64_t eos_token_id = -1;                ///< end of sequence; -1: none
  /// Group size of a 4-bit AWQ checkpoint (config.json quantization_config); 0: not quantized.
  int64_t awq_group_size = 0;

  int64_t q_size() const { return num_heads * head_dim; }      ///< width of the queries
  int64_t kv_size() const { return num_kv_heads * head_dim; }  ///< width of the keys (and values)
};

}  // namespace turbine
