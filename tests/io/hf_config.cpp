// Tests io/hf_config.hpp and io/hf_tokenizer_config.hpp on configs modeled on real repositories
// (Meta-Llama-3.1-8B, Mistral-7B-v0.1, Qwen2-0.5B, internlm2-chat-1_8b) and on every error.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <turbine/io/hf_config.hpp>
#include <turbine/io/hf_config_writer.hpp>
#include <turbine/io/hf_tokenizer_config.hpp>

#include "test_support.hpp"

using namespace turbine;
using turbine::test::contains;
using turbine::test::error_of;
using namespace turbine::io;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kLlama3 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

const char* kMistral = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000})";

const char* kQwen2 = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

const char* kInternLM2 = R"({
  "architectures": ["InternLM2ForCausalLM"], "attn_implementation": "eager",
  "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
               "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
  "bias": false, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 32768,
  "model_type": "internlm2", "num_attention_heads": 16, "num_hidden_layers": 24,
  "num_key_value_heads": 8, "pad_token_id": 2, "rms_norm_eps": 1e-05,
  "rope_scaling": {"type": "dynamic", "factor": 2.0}, "rope_theta": 1000000,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.33.2",
  "use_cache": true, "vocab_size": 92544})";

ModelConfig parse(const json& j) { return parse_hf_config(j, "config.json"); }

// The error parsing `base` with `patch` merged in (null values delete keys).
std::string error_with(const char* base, const json& patch) {
  json j = json::parse(base);
  j.merge_patch(patch);
  return error_of([&] { parse(j); });
}

}  // namespace

TEST_CASE("hf_config: Llama 3.1 8B with llama3 rope scaling") {
  const ModelConfig c = parse(json::parse(kLlama3));
  CHECK(c.arch == Architecture::Llama);
  CHECK(c.vocab_size == 128256);
  CHECK(c.hidden_size == 4096);
  CHECK(c.intermediate_size == 14336);
  CHECK(c.num_layers == 32);
  CHECK(c.num_heads == 32);
  CHECK(c.num_kv_heads == 8);
  CHECK(c.head_dim == 128);
  CHECK(c.kv_size() == 1024);
  CHECK(c.max_position_embeddings == 131072);
  CHECK(c.rms_norm_eps == 1e-5f);
  CHECK(c.rope_theta == 500000.0f);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::Llama3);
  CHECK(c.rope_scaling.factor == 8.0f);
  CHECK(c.rope_scaling.low_freq_factor == 1.0f);
  CHECK(c.rope_scaling.high_freq_factor == 4.0f);
  CHECK(c.rope_scaling.original_max_position_embeddings == 8192);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK(c.sliding_window == 0);
  CHECK(c.bos_token_id == 128000);
  CHECK(c.eos_token_id == 128001);  // the first of the list
}

TEST_CASE("hf_config: Mistral 7B v0.1 with a sliding window") {
  const ModelConfig c = parse(json::parse(kMistral));
  CHECK(c.arch == Architecture::Mistral);
  CHECK(c.sliding_window == 4096);
  CHECK(c.num_kv_heads == 8);
  CHECK(c.max_position_embeddings == 32768);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK_FALSE(c.attention_bias);
  // Mistral v0.2+ sets it to null: full attention.
  json j = json::parse(kMistral);
  j["sliding_window"] = nullptr;
  CHECK(parse(j).sliding_window == 0);
}

TEST_CASE("hf_config: Qwen2 0.5B with tied embeddings") {
  const ModelConfig c = parse(json::parse(kQwen2));
  CHECK(c.arch == Architecture::Qwen2);
  CHECK(c.tie_word_embeddings);
  CHECK(c.attention_bias);  // always, for Qwen2
  CHECK(c.head_dim == 64);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.rms_norm_eps == 1e-6f);
  CHECK(c.rope_theta == 1000000.0f);
  CHECK(c.sliding_window == 0);  // use_sliding_window is false
  CHECK(c.eos_token_id == 151643);
  CHECK(c.bos_token_id == 151643);

  json j = json::parse(kQwen2);
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 0;
  CHECK(parse(j).sliding_window == 131072);  // every layer >= 0 slides
  j["max_window_layers"] = 24;
  CHECK(parse(j).sliding_window == 0);  // no layer >= 24 exists
  j["max_window_layers"] = 12;
  CHECK(error_of([&] { parse(j); }) ==
        "config.json: field 'use_sliding_window' applies to some layers only, which is not supported (got true)");
  // transformers 5 writes layer_types instead.
  j["layer_types"] = json::array();
  for (int i = 0; i < 24; ++i) j["layer_types"].push_back("sliding_attention");
  CHECK(parse(j).sliding_window == 131072);
  j["layer_types"].push_back("sliding_attention");
  CHECK(error_of([&] { parse(j); }) ==
        "config.json: field 'layer_types' must be a list with one entry per layer (got an array)");
}

TEST_CASE("hf_config: internlm2-chat-1_8b with dynamic rope scaling") {
  const ModelConfig c = parse(json::parse(kInternLM2));
  CHECK(c.arch == Architecture::InternLM2);
  CHECK(c.vocab_size == 92544);
  CHECK(c.hidden_size == 2048);
  CHECK(c.num_heads == 16);
  CHECK(c.num_kv_heads == 8);
  CHECK(c.head_dim == 128);
  CHECK(c.rope_theta == 1000000.0f);  // an integer in the file
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::Dynamic);
  CHECK(c.rope_scaling.factor == 2.0f);
  CHECK_FALSE(c.attention_bias);  // "bias": false
  json j = json::parse(kInternLM2);
  j.erase("bias");
  CHECK(parse(j).attention_bias);  // InternLM2Config's default
}

TEST_CASE("hf_config: defaults and alternative spellings") {
  json j = json::parse(kLlama3);
  for (const char* k : {"num_key_value_heads", "rope_theta", "rope_scaling", "tie_word_embeddings",
                        "max_position_embeddings", "rms_norm_eps", "bos_token_id", "eos_token_id"})
    j.erase(k);
  ModelConfig c = parse(j);
  CHECK(c.num_kv_heads == 32);
  CHECK(c.rope_theta == 10000.0f);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.rms_norm_eps == 1e-6f);
  CHECK(c.bos_token_id == -1);
  CHECK(c.eos_token_id == -1);

  j["head_dim"] = 64;  // explicit head_dim need not be hidden / heads
  c = parse(j);
  CHECK(c.head_dim == 64);
  CHECK(c.q_size() == 2048);

  j = json::parse(kLlama3);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4}};
  CHECK(parse(j).rope_scaling.kind == RopeScaling::Kind::Linear);
  CHECK(parse(j).rope_scaling.factor == 4.0f);
  j["rope_scaling"] = {{"rope_type", "default"}};
  CHECK(parse(j).rope_scaling.kind == RopeScaling::Kind::None);
  j["rope_scaling"] = nullptr;
  CHECK(parse(j).rope_scaling.kind == RopeScaling::Kind::None);
  j["attention_bias"] = true;
  CHECK(parse(j).attention_bias);

  // transformers 5: rope_theta and the scaling under rope_parameters.
  j = json::parse(kLlama3);
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  c = parse(j);
  CHECK(c.rope_theta == 500000.0f);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::Llama3);
  CHECK(c.rope_scaling.factor == 8.0f);
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  CHECK(parse(j).rope_theta == 1e6f);
  CHECK(parse(j).rope_scaling.kind == RopeScaling::Kind::None);
}

TEST_CASE("hf_config: errors name the file and the field") {
  CHECK(error_with(kLlama3, {{"num_attention_heads", "x"}}) ==
        "config.json: field 'num_attention_heads' must be a positive integer (got \"x\")");
  CHECK(error_with(kLlama3, {{"num_attention_heads", 0}}) ==
        "config.json: field 'num_attention_heads' must be a positive integer (got 0)");
  CHECK(error_with(kLlama3, {{"num_attention_heads", -4}}) ==
        "config.json: field 'num_attention_heads' must be a positive integer (got -4)");
  CHECK(error_with(kLlama3, {{"num_attention_heads", 32.0}}) ==
        "config.json: field 'num_attention_heads' must be a positive integer (got 32.0)");
  CHECK(error_with(kLlama3, {{"hidden_size", 1e12}}) ==
        "config.json: field 'hidden_size' must be a positive integer (got 1000000000000.0)");
  CHECK(error_with(kLlama3, {{"hidden_size", 4294967296}}) ==
        "config.json: field 'hidden_size' is too large (more than 2147483647) (got 4294967296)");
  CHECK(error_with(kLlama3, {{"vocab_size", nullptr}}) == "config.json: missing required field 'vocab_size'");
  CHECK(error_with(kLlama3, {{"num_hidden_layers", {1}}}) ==
        "config.json: field 'num_hidden_layers' must be a positive integer (got an array)");
  CHECK(error_with(kLlama3, {{"intermediate_size", json::object({{"a", 1}})}}) ==
        "config.json: field 'intermediate_size' must be a positive integer (got an object)");
  CHECK(error_with(kLlama3, {{"num_attention_heads", 30}}) ==
        "config.json: field 'num_attention_heads' must divide hidden_size 4096 (got 30)");
  CHECK(error_with(kLlama3, {{"num_key_value_heads", 5}}) ==
        "config.json: field 'num_key_value_heads' must divide num_attention_heads 32 (got 5)");
  CHECK(error_with(kLlama3, {{"head_dim", 63}}) ==
        "config.json: field 'head_dim' gives an odd head_dim; rotary embeddings need an even one (got 63)");
  CHECK(error_with(kLlama3, {{"rms_norm_eps", "1e-5"}}) ==
        "config.json: field 'rms_norm_eps' must be a positive number (got \"1e-5\")");
  CHECK(error_with(kLlama3, {{"rms_norm_eps", 1e-60}}) ==
        "config.json: field 'rms_norm_eps' must be a positive number (got 1e-60)");
  CHECK(error_with(kLlama3, {{"rope_theta", 1e300}}) ==
        "config.json: field 'rope_theta' must be a positive number (got 1e+300)");
  CHECK(error_with(kLlama3, {{"tie_word_embeddings", "yes"}}) ==
        "config.json: field 'tie_word_embeddings' must be true or false (got \"yes\")");
  CHECK(error_with(kLlama3, {{"eos_token_id", -1}}) ==
        "config.json: field 'eos_token_id' must be a token id or a list of them (got -1)");
  CHECK(error_with(kLlama3, {{"eos_token_id", {"a"}}}) ==
        "config.json: field 'eos_token_id' must be a token id or a list of them (got an array)");
  CHECK(error_with(kLlama3, {{"hidden_act", "gelu"}}) ==
        "config.json: field 'hidden_act' is not supported (supported: silu) (got \"gelu\")");
  CHECK(error_with(kLlama3, {{"mlp_bias", true}}) ==
        "config.json: field 'mlp_bias' is not supported (MLP biases) (got true)");
  CHECK(error_with(kMistral, {{"sliding_window", 0}}) ==
        "config.json: field 'sliding_window' must be a positive integer (got 0)");
  CHECK(error_with(kQwen2, {{"use_sliding_window", true}, {"sliding_window", nullptr}}) ==
        "config.json: missing required field 'sliding_window'");
}

TEST_CASE("hf_config: architecture errors") {
  CHECK(error_with(kLlama3, {{"architectures", {"GPT2LMHeadModel"}}}) ==
        "config.json: field 'architectures' is not supported (supported: LlamaForCausalLM, "
        "MistralForCausalLM, Qwen2ForCausalLM, InternLM2ForCausalLM) (got an array)");
  CHECK(error_with(kLlama3, {{"architectures", json::array()}}) ==
        "config.json: field 'architectures' must be a list of architecture names (got an array)");
  CHECK(error_with(kLlama3, {{"architectures", "LlamaForCausalLM"}}) ==
        "config.json: field 'architectures' must be a list of architecture names (got \"LlamaForCausalLM\")");
  CHECK(error_with(kLlama3, {{"architectures", nullptr}}) == "config.json: missing required field 'architectures'");
  CHECK(error_of([] { parse(json::array()); }) == "config.json: not a JSON object");
}

TEST_CASE("hf_config: rope scaling errors") {
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"rope_type", "yarn"}}}}) ==
        "config.json: field 'rope_scaling.rope_type' is not supported (supported: default, linear, dynamic, "
        "llama3) (got \"yarn\")");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"low_freq_factor", nullptr}}}}) ==
        "config.json: missing required field 'rope_scaling.low_freq_factor'");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"high_freq_factor", 1.0}}}}) ==
        "config.json: field 'rope_scaling.high_freq_factor' must exceed low_freq_factor (got 1.0)");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"factor", 0.5}}}}) ==
        "config.json: field 'rope_scaling.factor' must be at least 1 (got 0.5)");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"original_max_position_embeddings", "8k"}}}}) ==
        "config.json: field 'rope_scaling.original_max_position_embeddings' must be a positive integer (got \"8k\")");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"rope_type", nullptr}}}}) ==
        "config.json: field 'rope_scaling' has no 'rope_type' (or 'type')");
  CHECK(error_with(kLlama3, {{"rope_scaling", {{"rope_type", 3}}}}) ==
        "config.json: field 'rope_scaling.rope_type' must be a string (got 3)");
  CHECK(error_with(kInternLM2, {{"rope_scaling", {{"factor", nullptr}}}}) ==
        "config.json: missing required field 'rope_scaling.factor'");
  CHECK(error_with(kLlama3, {{"rope_scaling", "llama3"}}) ==
        "config.json: field 'rope_scaling' must be an object");
  CHECK(error_with(kLlama3, {{"rope_parameters", {{"rope_type", "longrope"}}}}) ==
        "config.json: field 'rope_parameters.rope_type' is not supported (supported: default, linear, dynamic, "
        "llama3) (got \"longrope\")");
}

TEST_CASE("hf_config: text and files") {
  CHECK(parse_hf_config_text(kQwen2, "q.json").arch == Architecture::Qwen2);
  CHECK(contains(error_of([] { parse_hf_config_text("{\"a\": ", "q.json"); }), "q.json: invalid JSON ("));
  CHECK(contains(error_of([] { load_hf_config("/nonexistent/config.json"); }), "/nonexistent/config.json: cannot open"));

  const fs::path dir = fs::temp_directory_path() / ("turbine_hfc_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << kMistral;
  CHECK(load_hf_config(dir.string()).arch == Architecture::Mistral);
  CHECK(load_hf_config((dir / "config.json").string()).sliding_window == 4096);
  std::ofstream(dir / "config.json") << "{\"architectures\": [\"LlamaForCausalLM\"],\n \"hidden_size\": }";
  const std::string err = error_of([&] { load_hf_config(dir.string()); });
  CHECK(contains(err, (dir / "config.json").string() + ": invalid JSON ("));
  CHECK(err.find('\n') == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("hf_tokenizer_config: chat templates and special tokens") {
  // Shapes from Llama-2 (AddedToken objects), Qwen2 (null bos), and Cohere-style template lists.
  const auto llama2 = parse_hf_tokenizer_config(json::parse(R"({
    "add_bos_token": true, "add_eos_token": false,
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false, "normalized": false},
    "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    "eos_token": {"__type": "AddedToken", "content": "</s>"}, "model_max_length": 1000000000000000019884624838656})"),
                                                "tokenizer_config.json");
  CHECK(llama2.bos_token == "<s>");
  CHECK(llama2.eos_token == "</s>");
  CHECK(llama2.add_bos_token == true);
  CHECK(llama2.add_eos_token == false);
  CHECK(llama2.chat_template == "{% for m in messages %}{{ m['content'] }}{% endfor %}");

  const auto qwen = parse_hf_tokenizer_config(
      json::parse(R"({"bos_token": null, "eos_token": "<|im_end|>", "chat_template": "T"})"), "t.json");
  CHECK_FALSE(qwen.bos_token.has_value());
  CHECK(qwen.eos_token == "<|im_end|>");
  CHECK_FALSE(qwen.add_bos_token.has_value());

  const auto named = parse_hf_tokenizer_config(json::parse(R"({"chat_template": [
    {"name": "default", "template": "D"}, {"name": "tool_use", "template": "U"}]})"), "t.json");
  CHECK(named.chat_template == "D");
  CHECK(named.named_chat_templates.at("tool_use") == "U");
  const auto no_default = parse_hf_tokenizer_config(
      json::parse(R"({"chat_template": [{"name": "rag", "template": "R"}]})"), "t.json");
  CHECK_FALSE(no_default.chat_template.has_value());
  CHECK(no_default.named_chat_templates.size() == 1);

  CHECK(parse_hf_tokenizer_config(json::object(), "t.json").chat_template == std::nullopt);
  CHECK(error_of([] { parse_hf_tokenizer_config(json::parse(R"({"chat_template": 3})"), "t.json"); }) ==
        "t.json: field 'chat_template' must be a string or a list of {\"name\", \"template\"} objects (got 3)");
  CHECK(contains(error_of([] { parse_hf_tokenizer_config(json::parse(R"({"chat_template": [{"name": "x"}]})"), "t.json"); }),
                 "t.json: field 'chat_template' must be"));
  CHECK(error_of([] { parse_hf_tokenizer_config(json::parse(R"({"bos_token": {"x": 1}})"), "t.json"); }) ==
        "t.json: field 'bos_token' must be a string or an object with a string 'content' (got an object)");
  CHECK(error_of([] { parse_hf_tokenizer_config(json::parse(R"({"add_bos_token": 1})"), "t.json"); }) ==
        "t.json: field 'add_bos_token' must be true or false (got 1)");
}

TEST_CASE("hf_tokenizer_config: generation_config.json") {
  const auto llama3 = parse_hf_generation_config(json::parse(R"({
    "bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128008, 128009],
    "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.42.3"})"), "g.json");
  CHECK(llama3.bos_token_id == 128000);
  CHECK(llama3.eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});
  CHECK(llama3.temperature == 0.6f);
  CHECK(llama3.top_p == 0.9f);
  CHECK_FALSE(llama3.top_k.has_value());

  const auto single = parse_hf_generation_config(json::parse(R"({"eos_token_id": 2, "top_k": 20,
    "repetition_penalty": 1.05, "temperature": 0})"), "g.json");
  CHECK(single.eos_token_ids == std::vector<int64_t>{2});
  CHECK(single.top_k == 20);
  CHECK(single.repetition_penalty == 1.05f);
  CHECK(single.temperature == 0.0f);
  CHECK_FALSE(parse_hf_generation_config(json::object(), "g.json").eos_token_ids.has_value());

  CHECK(error_of([] { parse_hf_generation_config(json::parse(R"({"eos_token_id": [1, "2"]})"), "g.json"); }) ==
        "g.json: field 'eos_token_id' must be a token id or a list of them (got \"2\")");
  CHECK(error_of([] { parse_hf_generation_config(json::parse(R"({"temperature": -1})"), "g.json"); }) ==
        "g.json: field 'temperature' must be a non-negative number (got -1)");
}

TEST_CASE("hf_tokenizer_config: loading from a model directory") {
  const fs::path dir = fs::temp_directory_path() / ("turbine_hftok_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Nothing there: every field empty, no error.
  CHECK_FALSE(load_hf_tokenizer_config(dir.string()).chat_template.has_value());
  CHECK_FALSE(load_hf_generation_config(dir.string()).eos_token_ids.has_value());

  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "</s>"})";
  std::ofstream(dir / "chat_template.jinja") << "{{ messages }}";
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [7, 8]})";
  const auto t = load_hf_tokenizer_config(dir.string());
  CHECK(t.eos_token == "</s>");
  CHECK(t.chat_template == "{{ messages }}");  // from chat_template.jinja
  CHECK(load_hf_generation_config(dir.string()).eos_token_ids == std::vector<int64_t>{7, 8});

  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "json wins"})";
  CHECK(load_hf_tokenizer_config(dir.string()).chat_template == "json wins");
  std::ofstream(dir / "generation_config.json") << "{";
  CHECK(contains(error_of([&] { load_hf_generation_config(dir.string()); }), "generation_config.json: invalid JSON"));
  fs::remove_all(dir);
}

TEST_CASE("hf_config: AutoAWQ quantization_config is read; other methods and settings are refused") {
  const json awq = {{"quantization_config",
                     {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"zero_point", true}, {"version", "GEMM"}}}};
  json j = json::parse(kLlama3);
  j.merge_patch(awq);
  CHECK(parse(j).awq_group_size == 128);
  CHECK(parse(json::parse(kLlama3)).awq_group_size == 0);
  CHECK(contains(error_with(kLlama3, {{"quantization_config", {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}}}}),
                 "field 'quantization_config.quant_method' is not supported (supported: awq"));
  CHECK(contains(error_with(kLlama3, {{"quantization_config", {{"quant_method", "awq"}, {"bits", 8}, {"group_size", 128}}}}),
                 "field 'quantization_config.bits' is not supported (supported: 4)"));
  CHECK(contains(error_with(kLlama3, {{"quantization_config", {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 96}}}}),
                 "field 'quantization_config.group_size' is not supported"));
  CHECK(contains(error_with(kLlama3, {{"quantization_config",
                                       {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 64}, {"version", "gemv"}}}}),
                 "field 'quantization_config.version' is not supported (supported: gemm"));
  CHECK(contains(error_with(kLlama3, {{"quantization_config",
                                       {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 64}, {"zero_point", false}}}}),
                 "quantization_config.zero_point"));
  CHECK(contains(error_with(kLlama3, {{"quantization_config", {{"bits", 4}}}}),
                 "missing required field 'quantization_config.quant_method'"));
}

TEST_CASE("hf_config_writer: what it writes parses back to the same config") {
  for (const char* text : {kLlama3, kMistral, kQwen2}) {
    ModelConfig c = parse(json::parse(text));
    c.awq_group_size = 64;
    const ModelConfig back = parse(hf_config_json(c));
    CAPTURE(architecture_name(c.arch));
    CHECK(back.arch == c.arch);
    CHECK(back.vocab_size == c.vocab_size);
    CHECK(back.hidden_size == c.hidden_size);
    CHECK(back.intermediate_size == c.intermediate_size);
    CHECK(back.num_layers == c.num_layers);
    CHECK(back.num_heads == c.num_heads);
    CHECK(back.num_kv_heads == c.num_kv_heads);
    CHECK(back.head_dim == c.head_dim);
    CHECK(back.max_position_embeddings == c.max_position_embeddings);
    CHECK(back.rms_norm_eps == c.rms_norm_eps);
    CHECK(back.rope_theta == c.rope_theta);
    CHECK(back.rope_scaling.kind == c.rope_scaling.kind);
    CHECK(back.rope_scaling.factor == c.rope_scaling.factor);
    CHECK(back.rope_scaling.original_max_position_embeddings == c.rope_scaling.original_max_position_embeddings);
    CHECK(back.tie_word_embeddings == c.tie_word_embeddings);
    CHECK(back.attention_bias == c.attention_bias);
    CHECK(back.sliding_window == c.sliding_window);
    CHECK(back.bos_token_id == c.bos_token_id);
    CHECK(back.eos_token_id == c.eos_token_id);
    CHECK(back.awq_group_size == 64);
  }
  // InternLM2 is written as the Llama it is once its wqkv is split.
  const ModelConfig i = parse(json::parse(kInternLM2));
  CHECK(parse(hf_config_json(i)).arch == Architecture::Llama);
  // A GGUF file's rope_freqs divisors that are not llama3's cannot be said in config.json.
  ModelConfig odd = parse(json::parse(kLlama3));
  odd.rope_scaling = RopeScaling{};
  odd.rope_scaling.kind = RopeScaling::Kind::Factors;
  odd.rope_scaling.freq_factors.assign(static_cast<size_t>(odd.head_dim / 2), 2.0f);
  CHECK_THROWS_WITH_AS(hf_config_json(odd), doctest::Contains("rope_freqs.weight"), Error);
}
