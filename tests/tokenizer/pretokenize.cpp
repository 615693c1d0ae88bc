// Hand-written splitters against Hugging Face tokenizers' own pre-tokenizers (Oniguruma regexes),
// for hand-picked and random strings (tests/data/tokenizer/pretokenize.json).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer_test_util.hpp"

using namespace turbine;

namespace {
std::vector<std::string> pieces(PreTokenizer kind, const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view p : pre_tokenize(kind, text)) out.emplace_back(p);
  return out;
}
}  // namespace

TEST_CASE("pretokenize: every splitter matches Hugging Face on the goldens") {
  const auto j = test::load_json("tokenizer/pretokenize.json");
  const std::pair<const char*, PreTokenizer> kinds[] = {
      {"gpt2", PreTokenizer::Gpt2},       {"llama3", PreTokenizer::Llama3},
      {"qwen2", PreTokenizer::Qwen2},     {"digits", PreTokenizer::Digits},
      {"digits+gpt2", PreTokenizer::DigitsGpt2},
  };
  int n = 0;
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    for (const auto& k : kinds) {
      const char* name = k.first;
      CAPTURE(name);
      CAPTURE(text);
      CHECK(pieces(k.second, text) == c[name].get<std::vector<std::string>>());
      ++n;
    }
  }
  CHECK(n > 1000);
}

TEST_CASE("pretokenize: pieces tile arbitrary bytes") {
  const std::string bytes = "a\xFF\xC3 b\xE4\xB8 \xED\xA0\x80'\xC5" "1\r\n\x80 ";
  for (auto kind : {PreTokenizer::None, PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2,
                    PreTokenizer::Digits, PreTokenizer::DigitsGpt2}) {
    std::string joined;
    for (std::string_view p : pre_tokenize(kind, bytes)) {
      CHECK_FALSE(p.empty());
      joined += p;
    }
    CHECK(joined == bytes);
    CHECK(pre_tokenize(kind, "").empty());
  }
}

TEST_CASE("pretokenize: GGUF names") {
  CHECK(pre_tokenizer_from_gguf("smollm") == PreTokenizer::DigitsGpt2);
  CHECK(pre_tokenizer_from_gguf("starcoder") == PreTokenizer::DigitsGpt2);
  CHECK(pre_tokenizer_from_gguf("gpt2") == PreTokenizer::Gpt2);
  CHECK(pre_tokenizer_from_gguf("default") == PreTokenizer::Gpt2);
  CHECK(pre_tokenizer_from_gguf("") == PreTokenizer::Gpt2);
  CHECK(pre_tokenizer_from_gguf("llama-bpe") == PreTokenizer::Llama3);
  CHECK(pre_tokenizer_from_gguf("llama3") == PreTokenizer::Llama3);
  CHECK(pre_tokenizer_from_gguf("qwen2") == PreTokenizer::Qwen2);
  try {
    (void)pre_tokenizer_from_gguf("deepseek-coder");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("tokenizer.ggml.pre") != std::string::npos);
    CHECK(msg.find("deepseek-coder") != std::string::npos);
    CHECK(msg.find("smollm") != std::string::npos);  // lists the known names
  }
}

TEST_CASE("pretokenize: tokenizer.json regexes are recognized exactly") {
  PreTokenizer k{};
  CHECK(pre_tokenizer_from_regex(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", k));
  CHECK(k == PreTokenizer::Gpt2);
  CHECK_FALSE(pre_tokenizer_from_regex(R"(\p{L}+)", k));
}
