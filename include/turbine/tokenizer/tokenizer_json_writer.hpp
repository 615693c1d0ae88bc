#pragma once
// A byte-level BPE tokenizer (TokenizerData, e.g. from a GGUF file's tokenizer.ggml.* metadata)
// as a Hugging Face tokenizer.json and tokenizer_config.json, so that a model directory written
// from a GGUF source (`turbine quantize`) carries its tokenizer. load_tokenizer_json reads the
// result back to the same token ids (tests/tokenizer/tokenizer_json_writer.cpp checks it on the
// default model). The pre-tokenizer is written as the one the GGUF `pre` name stands for.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "pretokenize.hpp"
#include "tokenizer_data.hpp"
#include "vocab.hpp"

namespace turbine {

namespace detail {

inline nlohmann::json byte_level_step(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

inline nlohmann::json split_step(std::string_view regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", std::string(regex)}}}, {"behavior", "Isolated"}, {"invert", false}};
}

}  // namespace detail

/// tokenizer.json for `d` (byte-level BPE only).
inline nlohmann::json tokenizer_json_from_data(const TokenizerData& d) {
  check(d.kind == TokenizerData::ByteLevelBpe, d.source,
        ": writing tokenizer.json is implemented for byte-level BPE tokenizers only (start from the model's Hugging "
        "Face directory to keep its tokenizer files)");
  const PreTokenizer pre = d.pre_tokenizer ? *d.pre_tokenizer : pre_tokenizer_from_gguf(d.pre);
  nlohmann::json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  nlohmann::json added = nlohmann::json::array();
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    const int32_t type = id < d.token_types.size() ? d.token_types[id] : kTokenNormal;
    if (type == kTokenUnused) continue;
    check(!vocab.contains(d.tokens[id]), d.source, ": token '", d.tokens[id], "' appears twice (ids ",
          vocab.contains(d.tokens[id]) ? vocab[d.tokens[id]].get<int64_t>() : -1, " and ", id,
          "); tokenizer.json cannot hold that");
    vocab[d.tokens[id]] = static_cast<int64_t>(id);
    if (type == kTokenControl || type == kTokenUnknown || type == kTokenUserDefined)
      added.push_back({{"id", id},
                       {"content", d.tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", type == kTokenUserDefined},
                       {"special", type != kTokenUserDefined}});
  }
  j["added_tokens"] = added;
  j["normalizer"] = d.nfc ? nlohmann::json{{"type", "NFC"}} : nlohmann::json(nullptr);
  switch (pre) {
    case PreTokenizer::Gpt2: j["pre_tokenizer"] = detail::byte_level_step(true); break;
    case PreTokenizer::DigitsGpt2:
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers",
                             {{{"type", "Digits"}, {"individual_digits", true}}, detail::byte_level_step(true)}}};
      break;
    case PreTokenizer::Llama3: case PreTokenizer::Qwen2:
      j["pre_tokenizer"] = {
          {"type", "Sequence"},
          {"pretokenizers",
           {detail::split_step(pre == PreTokenizer::Llama3 ? detail::kLlama3Regex : detail::kQwen2Regex),
            detail::byte_level_step(false)}}};
      break;
    default:
      fail(d.source, ": pre-tokenizer '", pre_tokenizer_name(pre), "' cannot be written to tokenizer.json yet");
  }
  if (d.add_bos && d.bos >= 0) {
    const std::string bos = d.tokens.at(static_cast<size_t>(d.bos));
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"pair", nlohmann::json::array()},
                           {"special_tokens", {{bos, {{"id", bos}, {"ids", {d.bos}}, {"tokens", {bos}}}}}}};
  } else {
    j["post_processor"] = nullptr;
  }
  j["decoder"] = detail::byte_level_step(true);
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", d.ignore_merges || (!d.pre_tokenizer && pre == PreTokenizer::Llama3)},
                {"vocab", vocab},
                {"merges", d.merges}};
  return j;
}

/// tokenizer_config.json for `d` with its chat template (may be empty).
inline nlohmann::json tokenizer_config_json(const TokenizerData& d, const std::string& chat_template) {
  nlohmann::json j;
  auto token = [&](const char* key, int id) {
    if (id >= 0 && static_cast<size_t>(id) < d.tokens.size()) j[key] = d.tokens[static_cast<size_t>(id)];
  };
  token("bos_token", d.bos);
  token("eos_token", d.eos);
  token("pad_token", d.pad);
  token("unk_token", d.unk);
  j["add_bos_token"] = d.add_bos;
  j["add_eos_token"] = false;
  j["clean_up_tokenization_spaces"] = false;
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!chat_template.empty()) j["chat_template"] = chat_template;
  return j;
}

}  // namespace turbine
