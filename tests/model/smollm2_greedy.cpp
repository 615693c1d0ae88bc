// Greedy continuations of chat prompts: token for token what transformers' generate() produced
// (tests/data/smollm2_greedy.json, made by tools/make_goldens.py).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <turbine/turbine.hpp>

#include "test_support.hpp"

using namespace turbine;

TEST_CASE("SmolLM2 greedy continuations equal transformers'") {
  const std::string model_path = test::default_model_path();
  if (model_path.empty()) return test::skip("default model not fetched (tools/fetch_model.sh)");
  std::ifstream jf(test::data_path("smollm2_greedy.json"));
  REQUIRE(jf.good());
  const auto golden = nlohmann::json::parse(jf);
  Pipeline<Llama<>> pipe(model_path);
  GenerationConfig cfg;
  cfg.max_new_tokens = 48;
  cfg.ignore_eos = true;
  REQUIRE(golden["cases"].size() >= 6);
  for (const auto& c : golden["cases"]) {
    CAPTURE(c["prompt_text"].get<std::string>());
    const auto prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    std::vector<ChatMessage> msgs;
    for (const auto& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    // Our template and tokenizer must produce the same prompt tokens as transformers.
    CHECK(pipe.encode_chat(msgs) == prompt_ids);
    const Response r = pipe.complete_tokens(prompt_ids, cfg);
    CHECK(r.tokens == c["new_ids"].get<std::vector<int32_t>>());
  }
}
