// tokenizer_json_from_data: the default model's GGUF tokenizer written as tokenizer.json and read
// back gives the same ids and text on varied input (digits, code, accents, emoji, special tokens),
// and the same special tokens; SentencePiece tokenizers are refused with a clear error.
#include <doctest/doctest.h>

#include <turbine/io/gguf.hpp>
#include <turbine/model/load_model.hpp>
#include <turbine/tokenizer/tokenizer_json_writer.hpp>

#include "test_support.hpp"

using namespace turbine;

TEST_CASE("tokenizer_json_from_data: the default model's GGUF tokenizer round-trips through tokenizer.json") {
  const std::string path = test::default_model_path();
  if (path.empty()) return test::skip("default model not fetched (tools/fetch_model.sh)");
  const io::GgufFile f(path);
  const TokenizerData d = detail::gguf_tokenizer_data(f);
  const Tokenizer gguf = Tokenizer::from_data(d);
  const std::string json = tokenizer_json_from_data(d).dump();
  const Tokenizer back = Tokenizer::from_tokenizer_json_text(json);
  CHECK(back.vocab_size() == gguf.vocab_size());
  const char* texts[] = {
      "Hello, world! The capital of France is Paris.",
      "  leading spaces\tand tabs\n\nnew lines  ",
      "Numbers: 3.14159, 1,000,000 and 2026-12-03; x=42*7",
      "def f(x):\n    return {'a': [1, 2, 3]}  # code",
      "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80",
      "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
      "it's they're we'll I'd DON'T"};
  for (const char* t : texts) {
    CAPTURE(t);
    const auto a = gguf.encode(t), b = back.encode(t);
    CHECK(a == b);
    CHECK(back.decode(b) == gguf.decode(a));
  }
  const nlohmann::json cfg = tokenizer_config_json(d, "{{ messages }}");
  CHECK(cfg["eos_token"] == d.tokens[static_cast<size_t>(d.eos)]);
  CHECK(cfg["chat_template"] == "{{ messages }}");
}

TEST_CASE("tokenizer_json_from_data: SentencePiece data is refused with what to do instead") {
  TokenizerData d;
  d.kind = TokenizerData::SentencePieceBpe;
  d.tokens = {"<unk>", "a"};
  d.source = "model.gguf";
  CHECK_THROWS_WITH_AS(tokenizer_json_from_data(d), doctest::Contains("byte-level BPE tokenizers only"), Error);
}
