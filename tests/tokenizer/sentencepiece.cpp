// SentencePiece-style BPE against a tiny model trained by tools/make_tokenizer_goldens.py:
//  - scores path (what a GGUF "llama" tokenizer holds) vs the sentencepiece library itself;
//  - tokenizer.json path (merges, Prepend+Replace legacy and Metaspace "first") vs HF tokenizers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer_test_util.hpp"

using namespace turbine;
using turbine::test::ids_of;

namespace {

// As a GGUF reader fills it for tokenizer.ggml.model = "llama".
TokenizerData spm_gguf_like() {
  const auto m = test::load_json("tokenizer/spm_tiny.model.json");
  TokenizerData d;
  d.kind = TokenizerData::SentencePieceBpe;
  d.source = "spm_tiny.model.json";
  d.tokens = m["tokens"].get<std::vector<std::string>>();
  d.scores = m["scores"].get<std::vector<float>>();
  d.token_types = m["token_types"].get<std::vector<int32_t>>();
  d.bos = m["bos"];
  d.eos = m["eos"];
  d.unk = m["unk"];
  d.add_space_prefix = true;
  return d;
}

const nlohmann::json& goldens() {
  static const nlohmann::json j = test::load_json("tokenizer/spm_tiny_goldens.json");
  return j;
}

bool has_special_text(const std::string& s) {
  return s.find("<s>") != std::string::npos || s.find("</s>") != std::string::npos || s.find("<unk>") != std::string::npos;
}

}  // namespace

TEST_CASE("sentencepiece: scores (GGUF llama) path equals the sentencepiece library") {
  const Tokenizer tok = Tokenizer::from_data(spm_gguf_like());
  CHECK(tok.kind() == TokenizerData::SentencePieceBpe);
  int n = 0, byte_fallbacks = 0;
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    // sentencepiece knows no special tokens: it spells "<s>" out, like parse_special = false.
    const auto ids = tok.encode(text, /*parse_special=*/false);
    CHECK(ids == ids_of(c["sentencepiece_ids"]));
    for (int32_t id : ids) byte_fallbacks += tok.data().token_types[id] == kTokenByte;
    if (!has_special_text(text) && text.find("\xE2\x96\x81") == std::string::npos) {  // '▁' decodes as ' ' 
      CHECK(tok.decode(ids) == text);
      ++n;
    }
  }
  CHECK(n > 15);
  CHECK(byte_fallbacks > 0);  // the snowman, the emoji and the lone mark are not in the vocabulary
}

TEST_CASE("sentencepiece: tokenizer.json (legacy Prepend + Replace) equals HF tokenizers") {
  const Tokenizer tok = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/spm_tiny_legacy.tokenizer.json"));
  CHECK(tok.kind() == TokenizerData::SentencePieceBpe);
  CHECK(tok.add_bos());
  CHECK(tok.bos_id() == 1);
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    const auto ids = tok.encode(text);
    CHECK(ids == ids_of(c["legacy_ids"]));
    CHECK(tok.decode(ids) == c["legacy_decoded"].get<std::string>());
  }
}

TEST_CASE("sentencepiece: tokenizer.json (Metaspace prepend_scheme first) equals HF tokenizers") {
  const Tokenizer tok = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/spm_tiny_metaspace.tokenizer.json"));
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    const auto ids = tok.encode(text);
    CHECK(ids == ids_of(c["metaspace_ids"]));
    CHECK(tok.decode(ids) == c["metaspace_decoded"].get<std::string>());
  }
}

TEST_CASE("sentencepiece: decoding drops only the space the encoder added") {
  const Tokenizer tok = Tokenizer::from_data(spm_gguf_like());
  const auto ids = tok.encode("Hello world");
  CHECK(tok.token_text(ids[0]).rfind("\xE2\x96\x81", 0) == 0);  // starts with '▁'
  CHECK(tok.decode(ids) == "Hello world");
  // Streaming: the first piece has no leading space, later pieces keep theirs.
  IncrementalDecoder dec(tok);
  std::string all;
  for (int32_t id : ids) all += dec.push(id);
  all += dec.flush();
  CHECK(all == "Hello world");
  // With BOS skipped as special, the space after it is still dropped.
  std::vector<int32_t> with_bos = {tok.bos_id()};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  CHECK(tok.decode(with_bos, /*skip_special=*/true) == "Hello world");
  CHECK(tok.decode(with_bos) == "<s> Hello world");
}

TEST_CASE("sentencepiece: byte fallback decodes incrementally to whole characters") {
  const Tokenizer tok = Tokenizer::from_data(spm_gguf_like());
  const std::string text = "snow \xE2\x98\x83 and \xF0\x9F\x99\x82!";
  const auto ids = tok.encode(text);
  IncrementalDecoder dec(tok);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    CHECK(unicode::is_valid_utf8(piece));
    all += piece;
  }
  all += dec.flush();
  CHECK(all == text);
}

TEST_CASE("sentencepiece: a long input is fast (heap-driven merging)") {
  const Tokenizer tok = Tokenizer::from_data(spm_gguf_like());
  std::string text;
  while (text.size() < 10000) text += "The quick brown fox jumps over the lazy dog. ";
  const auto ids = tok.encode(text);
  CHECK(tok.decode(ids) == text);
  const auto json_tok = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/spm_tiny_legacy.tokenizer.json"));
  auto json_ids = json_tok.encode(text);
  REQUIRE(json_ids.at(0) == json_tok.bos_id());
  json_ids.erase(json_ids.begin());
  CHECK(json_ids == ids);  // merge ranks and scores agree on a long input too
}

TEST_CASE("sentencepiece: inconsistent data is rejected") {
  TokenizerData d = spm_gguf_like();
  d.scores.pop_back();
  CHECK_THROWS_WITH_AS(Tokenizer::from_data(d), doctest::Contains("scores"), Error);
  d = spm_gguf_like();
  d.scores.clear();
  CHECK_THROWS_WITH_AS(Tokenizer::from_data(d), doctest::Contains("needs scores or merges"), Error);
  d = spm_gguf_like();
  d.bos = 100000;
  CHECK_THROWS_WITH_AS(Tokenizer::from_data(d), doctest::Contains("bos token id 100000"), Error);
  d = spm_gguf_like();
  d.token_types[5] = 9;
  CHECK_THROWS_WITH_AS(Tokenizer::from_data(d), doctest::Contains("unknown type 9"), Error);
}
