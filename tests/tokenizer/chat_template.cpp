// Built-in chat templates against the models' published Jinja templates rendered by transformers
// (tests/data/tokenizer/chat_templates.json), template detection, stop strings and errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer_test_util.hpp"
#include <turbine/tokenizer/chat_template.hpp>

using namespace turbine;

namespace {
std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> out;
  for (const auto& m : j) out.push_back({m["role"], m["content"]});
  return out;
}
}  // namespace

TEST_CASE("chat templates: byte-exact with transformers' rendering of the published templates") {
  const auto g = test::load_json("tokenizer/chat_templates.json");
  int n = 0;
  for (const auto& c : g["cases"]) {
    const std::string name = c["template"];
    CAPTURE(name);
    CAPTURE(c["messages"].dump());
    CAPTURE(c["add_generation_prompt"].get<bool>());
    CHECK(render_chat(name, messages_of(c["messages"]), c["add_generation_prompt"]) == c["text"].get<std::string>());
    ++n;
  }
  CHECK(n == 40);
}

TEST_CASE("chat templates: detection by markers") {
  const auto g = test::load_json("tokenizer/chat_templates.json");
  for (const auto& item : g["templates"].items()) {
    const std::string name = item.key();
    const auto& t = item.value();
    CAPTURE(name);
    std::string note = "stale";
    CHECK(detect_chat_template(t["source"].get<std::string>(), &note) == name);
    CHECK(note.empty());
  }
  CHECK(detect_chat_template("{{ '<|im_start|>' }} [UNUSED_TOKEN_146]") == "internlm2");
  std::string note;
  CHECK(detect_chat_template("{{ messages }}", &note) == "chatml");
  CHECK(note.find("not recognized") != std::string::npos);
  CHECK(detect_chat_template("", &note) == "chatml");
  CHECK(note.find("no chat template") != std::string::npos);
}

TEST_CASE("chat templates: names, stop strings and stop tokens") {
  const auto names = chat_template_names();
  for (const char* n : {"chatml", "smollm", "llama2", "llama3", "internlm2"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  CHECK(chat_stop_strings("smollm") == std::vector<std::string>{"<|im_end|>"});
  CHECK(chat_stop_strings("llama3").front() == "<|eot_id|>");
  CHECK(chat_stop_strings("llama2") == std::vector<std::string>{"</s>"});
  if (auto d = test::smollm2_tokenizer_data()) {
    const Tokenizer tok = Tokenizer::from_data(*d);
    CHECK(chat_stop_tokens("smollm", tok) == std::vector<int32_t>{2});  // <|im_end|>, which is also EOS
    CHECK(chat_stop_tokens("llama3", tok) == std::vector<int32_t>{2});  // only EOS exists in this vocabulary
  }
}

TEST_CASE("chat templates: errors") {
  const std::vector<ChatMessage> msgs = {{"user", "hi"}};
  CHECK_THROWS_WITH_AS(render_chat("vicuna", msgs, true),
                       "unknown chat template 'vicuna' (known: chatml, smollm, llama2, llama3, internlm2)", Error);
  CHECK_THROWS_WITH_AS(chat_stop_strings("nope"), doctest::Contains("known: chatml"), Error);
  const std::vector<ChatMessage> bad = {{"system", "s"}, {"user", "a"}, {"user", "b"}};
  CHECK_THROWS_WITH_AS(render_chat("llama2", bad, true), doctest::Contains("message 2 has role 'user'"), Error);
  // An empty conversation renders (the pipeline uses it to validate a name).
  CHECK(render_chat("chatml", {}, true) == "<|im_start|>assistant\n");
  CHECK(render_chat("smollm", {}, false).empty());
}
