// tokenizer.json loading: a tiny byte-level BPE with the Llama-3 configuration against HF
// tokenizers, tokenizer_config.json next to it, and one-line errors for everything unsupported.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer_test_util.hpp"

using namespace turbine;
using nlohmann::json;
using turbine::test::ids_of;

namespace {

json tiny_llama3() {
  std::ifstream f(test::data_path("tokenizer/bpe_tiny_llama3.tokenizer.json"));
  return json::parse(f);
}

std::string error_of(const json& j) {
  try {
    (void)Tokenizer::from_tokenizer_json_text(j.dump(), "t.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("tokenizer.json: Llama-3 style byte-level BPE equals HF tokenizers") {
  const Tokenizer tok = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/bpe_tiny_llama3.tokenizer.json"));
  CHECK(tok.kind() == TokenizerData::ByteLevelBpe);
  CHECK(tok.pre_tokenizer() == PreTokenizer::Llama3);
  CHECK(tok.add_bos());
  CHECK(tok.token_text(tok.bos_id()) == "<|begin_of_text|>");
  const auto g = test::load_json("tokenizer/bpe_tiny_llama3_goldens.json");
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    const auto ids = tok.encode(text);
    CHECK(ids == ids_of(c["ids"]));
    CHECK(tok.decode(ids) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("tokenizer.json: Qwen2 style (NFC normalizer, Qwen2 regex) equals HF tokenizers") {
  const Tokenizer tok = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/bpe_tiny_qwen2.tokenizer.json"));
  CHECK(tok.pre_tokenizer() == PreTokenizer::Qwen2);
  CHECK(tok.data().nfc);
  CHECK_FALSE(tok.add_bos());
  const auto g = test::load_json("tokenizer/bpe_tiny_qwen2_goldens.json");
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    const auto ids = tok.encode(text);
    CHECK(ids == ids_of(c["ids"]));
    CHECK(tok.decode(ids) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("tokenizer.json: in-memory text and merges as pairs") {
  json j = tiny_llama3();
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    if (m.is_array()) { pairs.push_back(m); continue; }
    const std::string s = m;
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  const Tokenizer a = Tokenizer::from_tokenizer_json_text(j.dump());
  const Tokenizer b = Tokenizer::from_tokenizer_json(test::data_path("tokenizer/bpe_tiny_llama3.tokenizer.json"));
  CHECK(a.encode("The quick brown fox's 123 dogs") == b.encode("The quick brown fox's 123 dogs"));
}

TEST_CASE("tokenizer.json: tokenizer_config.json next to it sets bos/eos/add_bos") {
  const auto dir = std::filesystem::temp_directory_path() / "turbine_tok_cfg_test";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(test::data_path("tokenizer/bpe_tiny_llama3.tokenizer.json"), dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>", "add_bos_token": false})";
  }
  const Tokenizer tok = Tokenizer::from_tokenizer_json((dir / "tokenizer.json").string());
  CHECK(tok.token_text(tok.eos_id()) == "<|eot_id|>");
  CHECK_FALSE(tok.add_bos());
  CHECK(tok.encode("hi").front() != tok.bos_id());
  {
    std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<|nope|>"})";
  }
  CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json((dir / "tokenizer.json").string()),
                       doctest::Contains("tokenizer_config.json: eos_token: token '<|nope|>' is not in the vocabulary"), Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("tokenizer.json: errors name the file and the field") {
  CHECK(error_of("not json").find("t.json") != std::string::npos);
  CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json_text("{", "t.json"), "t.json: not valid JSON", Error);
  CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json("/nonexistent/tokenizer.json"), doctest::Contains("/nonexistent/tokenizer.json: cannot open"), Error);

  json j = tiny_llama3();
  j["model"]["type"] = "Unigram";
  CHECK(error_of(j) == "t.json: model.type: model 'Unigram' is not supported (only BPE)");

  j = tiny_llama3();
  j.erase("model");
  CHECK(error_of(j) == "t.json: model: missing");

  j = tiny_llama3();
  j["model"]["vocab"]["hello"] = "x";
  CHECK(error_of(j) == "t.json: model.vocab[\"hello\"]: expected an integer");

  j = tiny_llama3();
  j["model"]["vocab"]["hello"] = 1 << 30;
  CHECK(error_of(j).find("model.vocab[\"hello\"]: id 1073741824 is out of range") != std::string::npos);

  j = tiny_llama3();
  j["model"]["merges"][3] = "abc";
  CHECK(error_of(j) == "t.json: merges[3] 'abc' is not two tokens separated by one space");

  j = tiny_llama3();
  j["model"]["merges"][3] = "zzzz qqqq";
  CHECK(error_of(j).find("merges[3] 'zzzz qqqq': 'zzzz' is not in the vocabulary") != std::string::npos);

  j = tiny_llama3();
  j["model"]["merges"][2] = 5;
  CHECK(error_of(j) == "t.json: model.merges[2]: expected \"a b\" or [\"a\", \"b\"]");

  j = tiny_llama3();
  j["normalizer"] = {{"type", "NFKC"}};
  CHECK(error_of(j) == "t.json: normalizer.type: normalizer 'NFKC' is not supported");

  j = tiny_llama3();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+";
  CHECK(error_of(j) == "t.json: pre_tokenizer.pretokenizers[0].pattern.Regex: regex is not one of the GPT-2, Llama-3 or Qwen2 patterns");

  j = tiny_llama3();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  CHECK(error_of(j) == "t.json: pre_tokenizer.type: pre-tokenizer 'Whitespace' is not supported");

  j = tiny_llama3();
  j["pre_tokenizer"] = nullptr;
  CHECK(error_of(j).find("cannot tell the kind") != std::string::npos);

  j = tiny_llama3();
  j["decoder"] = {{"type", "WordPiece"}};
  CHECK(error_of(j) == "t.json: decoder.type: decoder 'WordPiece' is not supported");

  j = tiny_llama3();
  j["added_tokens"][0]["single_word"] = true;
  CHECK(error_of(j) == "t.json: added_tokens[0].single_word: single_word = true is not supported");

  j = tiny_llama3();
  j["added_tokens"][0]["special"] = "yes";
  CHECK(error_of(j) == "t.json: added_tokens[0].special: expected true or false");

  j = tiny_llama3();
  j["model"]["unk_token"] = "<nope>";
  CHECK(error_of(j) == "t.json: model.unk_token: token '<nope>' is not in the vocabulary");

  j = tiny_llama3();
  j["model"]["dropout"] = 0.1;
  CHECK(error_of(j) == "t.json: model.dropout: BPE dropout is not supported");

  j = tiny_llama3();
  j["post_processor"] = {{"type", "BertProcessing"}};
  CHECK(error_of(j) == "t.json: post_processor.type: post-processor 'BertProcessing' is not supported");
}

TEST_CASE("tokenizer.json: added tokens with lstrip/rstrip swallow neighbouring spaces") {
  json j = tiny_llama3();
  for (auto& a : j["added_tokens"])
    if (a["content"] == "<|eot_id|>") a["lstrip"] = a["rstrip"] = true;
  const Tokenizer tok = Tokenizer::from_tokenizer_json_text(j.dump());
  const int32_t eot = tok.token_id("<|eot_id|>");
  CHECK(tok.encode("hi  <|eot_id|>  there", false) != tok.encode("hi<|eot_id|>there", false));
  CHECK(tok.encode("hi  <|eot_id|>  there") == tok.encode("hi<|eot_id|>there"));
  const auto ids = tok.encode("a <|eot_id|> b");
  CHECK(std::count(ids.begin(), ids.end(), eot) == 1);
}
