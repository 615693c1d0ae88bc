// SmolLM2's byte-level BPE from the default GGUF model against Hugging Face goldens
// (tests/data/smollm2_tokenizer.json from tools/make_tokenizer_goldens.py): token ids for every
// case, decoding, round trips, streaming decoding of multi-byte text, and speed.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer_test_util.hpp"
#include <turbine/tokenizer/chat_template.hpp>

using namespace turbine;
using turbine::test::ids_of;

namespace {

// Loaded once: the vocabulary has 49152 tokens and 48900 merges.
const Tokenizer* smollm2(PreTokenizer pre = PreTokenizer::DigitsGpt2) {
  static std::optional<TokenizerData> data = test::smollm2_tokenizer_data();
  static std::unique_ptr<Tokenizer> by_name, gpt2;
  if (!data) return nullptr;
  if (pre == PreTokenizer::DigitsGpt2) {
    if (!by_name) by_name = std::make_unique<Tokenizer>(Tokenizer::from_data(*data));  // pre = "smollm"
    return by_name.get();
  }
  if (!gpt2) {
    TokenizerData d = *data;
    d.pre_tokenizer = PreTokenizer::Gpt2;  // what transformers' GGUF conversion does
    gpt2 = std::make_unique<Tokenizer>(Tokenizer::from_data(std::move(d)));
  }
  return gpt2.get();
}

const nlohmann::json& goldens() {
  static const nlohmann::json j = test::load_json("smollm2_tokenizer.json");
  return j;
}

std::string show(const std::string& s) { return s.size() > 60 ? s.substr(0, 60) + "..." : s; }

}  // namespace

TEST_CASE("smollm2: GGUF metadata as expected") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  CHECK(tok->vocab_size() == 49152);
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);
  CHECK(tok->unk_id() == 0);
  CHECK_FALSE(tok->add_bos());
  CHECK(tok->pre_tokenizer() == PreTokenizer::DigitsGpt2);
  CHECK(tok->token_id("<|im_start|>") == 1);
  CHECK(tok->token_text(2) == "<|im_end|>");
  CHECK(tok->is_special(1));
  CHECK_FALSE(tok->is_special(100));
  CHECK(goldens()["cases"].size() >= 50);
}

TEST_CASE("smollm2: ids equal SmolLM2's own pipeline (pre = smollm: Digits + ByteLevel)") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  int n = 0;
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(show(text));
    CHECK(tok->encode(text) == ids_of(c["ids_original"]));
    ++n;
  }
  MESSAGE(n, " cases");
}

TEST_CASE("smollm2: ids equal transformers' GGUF tokenizer with its GPT-2-only splitting") {
  const Tokenizer* tok = smollm2(PreTokenizer::Gpt2);
  if (!tok) return;
  int differ = 0;
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(show(text));
    CHECK(tok->encode(text) == ids_of(c["ids"]));
    differ += c["ids"] != c["ids_original"];
  }
  // The two pipelines disagree only where whitespace precedes a digit; SmolLM's vocabulary has no
  // multi-digit tokens, so splitting digits changes nothing else.
  CHECK(differ <= 3);
}

TEST_CASE("smollm2: decode equals transformers' decode, and decode(encode(x)) == x") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(show(text));
    const auto ids = ids_of(c["ids"]);
    CHECK(tok->decode(ids) == c["decoded"].get<std::string>());
    CHECK(tok->decode(ids, /*skip_special=*/true) == c["decoded_skip_special"].get<std::string>());
    CHECK(tok->decode(tok->encode(text)) == text);
  }
}

TEST_CASE("smollm2: parse_special = false keeps special tokens as text") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  const auto with = tok->encode(text, true);
  const auto without = tok->encode(text, false);
  CHECK(with.front() == 1);
  CHECK(with.back() == 2);
  for (int32_t id : without) CHECK_FALSE(tok->is_special(id));
  CHECK(tok->decode(without) == text);
}

TEST_CASE("smollm2: incremental decoding emits only whole UTF-8 characters") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  int split_chars = 0;
  for (const auto& c : goldens()["cases"]) {
    const std::string text = c["text"];
    CAPTURE(show(text));
    IncrementalDecoder dec(*tok);
    std::string all;
    for (int32_t id : ids_of(c["ids"])) {
      const std::string piece = dec.push(id);
      CHECK(unicode::is_valid_utf8(piece));
      all += piece;
      split_chars += dec.pending_bytes() > 0;
    }
    all += dec.flush();
    CHECK(all == c["decoded"].get<std::string>());
  }
  CHECK(split_chars > 10);  // the Chinese/emoji cases do split characters across tokens
}

TEST_CASE("smollm2: incremental decoding of a cut-off character ends in U+FFFD") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  const auto ids = tok->encode("\xF0\x9F\x98\x80");  // one emoji = several byte tokens
  REQUIRE(ids.size() >= 2);
  IncrementalDecoder dec(*tok);
  CHECK(dec.push(ids[0]).empty());
  CHECK(dec.flush() == "\xEF\xBF\xBD");
}

TEST_CASE("smollm2: ill-formed UTF-8 input is encoded byte for byte") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  const std::string bad = "ok \xC3 \xE4\xB8 \xED\xA0\x80 \x80\x80 end\xF0\x9F";
  const auto ids = tok->encode(bad);
  std::string raw;
  bool at_start = true;
  for (int32_t id : ids) tok->append_piece(id, false, at_start, raw);
  CHECK(raw == bad);
  CHECK(tok->decode(ids) == unicode::sanitize_utf8(bad));
  // SmolLM2 has no tokens for the bytes 0xF5..0xFF: like Hugging Face, encode drops them.
  std::vector<int32_t> a_b = tok->encode("a");
  a_b.push_back(tok->encode("b").at(0));  // "a", "\xFF\xFE" (dropped), "b" are three pieces
  CHECK(tok->encode("a\xFF\xFE" "b") == a_b);
}

TEST_CASE("smollm2: invalid ids are rejected with the id and the vocabulary size") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  const std::vector<int32_t> ids = {5, 49152};
  try {
    (void)tok->decode(ids);
    FAIL("no error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("49152") != std::string::npos);
    CHECK(msg.find("vocabulary size 49152") != std::string::npos);
  }
  CHECK_THROWS_AS((void)tok->token_text(-1), Error);
  IncrementalDecoder dec(*tok);
  CHECK_THROWS_AS(dec.push(1 << 30), Error);
}

TEST_CASE("smollm2: chat template text and ids equal transformers' apply_chat_template") {
  const Tokenizer* tok = smollm2();
  for (const auto& c : goldens()["chat"]) {
    std::vector<ChatMessage> msgs;
    for (const auto& m : c["messages"]) msgs.push_back({m["role"], m["content"]});
    const std::string text = render_chat("smollm", msgs, c["add_generation_prompt"].get<bool>());
    CHECK(text == c["text"].get<std::string>());
    if (tok) CHECK(tok->encode(text) == ids_of(c["ids"]));
  }
}

TEST_CASE("smollm2: speed") {
  const Tokenizer* tok = smollm2();
  if (!tok) return;
  using clock = std::chrono::steady_clock;
  // 10k characters without any split point: one BPE piece (worst case for merging), and prose.
  for (const std::string& text : {std::string(10000, 'a'), std::string(10000, ' '), goldens()["cases"].back()["text"].get<std::string>() + std::string(7000, 'x')}) {
    const auto t0 = clock::now();
    const auto ids = tok->encode(text);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    CHECK(s < 0.2);
    CHECK(tok->decode(ids) == text);
    MESSAGE(text.size(), " bytes -> ", ids.size(), " tokens in ", s * 1e3, " ms");
  }
  const std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant."},
                                         {"user", "Please provide three suggestions about time management."}};
  const std::string prompt = render_chat("smollm", msgs, true);
  const int reps = 200;
  const auto t0 = clock::now();
  size_t n = 0;
  for (int i = 0; i < reps; ++i) n += tok->encode(prompt).size();
  const double us = std::chrono::duration<double, std::micro>(clock::now() - t0).count() / reps;
  MESSAGE("chat prompt (", prompt.size(), " bytes, ", n / reps, " tokens): ", us, " us per encode");
  CHECK(us < 1000);
}
