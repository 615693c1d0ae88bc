// libFuzzer target for io/hf_config.hpp and io/hf_tokenizer_config.hpp: any bytes either parse
// into a ModelConfig that satisfies its invariants, or raise turbine::Error (JSON syntax errors
// included). The same JSON also goes through the tokenizer_config.json and
// generation_config.json parsers. See docs/FUZZING.md.
#include <cstdlib>

#include <turbine/io/hf_config.hpp>
#include <turbine/io/hf_tokenizer_config.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = turbine::io::parse_json_text(text, "fuzz.json");
  } catch (const turbine::Error&) {
    return 0;
  }
  try {
    const turbine::ModelConfig c = turbine::io::parse_hf_config(j, "config.json");
    // What later code relies on without checking again.
    const bool ok = c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_layers > 0 &&
                    c.num_heads > 0 && c.num_kv_heads > 0 && c.head_dim > 0 && c.head_dim % 2 == 0 &&
                    c.num_heads % c.num_kv_heads == 0 && c.max_position_embeddings > 0 &&
                    c.rms_norm_eps > 0 && c.rope_theta > 0 && c.rope_scaling.factor >= 1 &&
                    c.sliding_window >= 0 && c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor;
    if (!ok) std::abort();
  } catch (const turbine::Error&) {
  }
  try {
    turbine::io::parse_hf_tokenizer_config(j, "tokenizer_config.json");
  } catch (const turbine::Error&) {
  }
  try {
    turbine::io::parse_hf_generation_config(j, "generation_config.json");
  } catch (const turbine::Error&) {
  }
  return 0;
}
