// The OpenAI-compatible server in process, on an ephemeral loopback port, driven by httplib::Client:
// every endpoint, streaming, usage, stop strings, API keys, client disconnects, and a list of
// malformed requests, each answered with the right status and a JSON error while the server
// keeps serving.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_fixture.hpp"
#include "default_pipeline.hpp"

using namespace turbine;
using namespace turbine::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

Pipeline<ServeModel>* pipeline() { return test::default_pipeline<ServeModel>(); }

/// The server every test case shares (no API keys).
LocalServer* server() {
  static std::unique_ptr<LocalServer> s = [] {
    return pipeline() ? std::make_unique<LocalServer>(*pipeline(), serve::ServerOptions{}, EngineOptions{4, 512, 64, 0}) : nullptr;
  }();
  return s.get();
}

/// What a chat request gets alone, greedy, straight from the engine's building blocks.
Response alone(const std::string& user, int64_t max_tokens, std::vector<std::string> stop = {}) {
  static Pipeline<ServeModel> ref(default_model_path(), PipelineOptions{"", 2048});
  GenerationConfig cfg;
  cfg.max_new_tokens = max_tokens;
  cfg.stop = std::move(stop);
  const auto ids = ref.encode_chat({{"user", user}});
  auto cache = ref.model().new_cache(ref.context_size());
  std::vector<int32_t> cached;
  return generate_sequence(ref.model(), cache, cached, ids, ref.tokenizer(), cfg, ref.eos_ids());
}

json chat_body(const std::string& user, int64_t max_tokens, json extra = json::object()) {
  json j = {{"model", "default"}, {"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", max_tokens}, {"temperature", 0}};
  j.update(extra);
  return j;
}

httplib::Result post(httplib::Client& c, const std::string& path, const std::string& body) {
  return c.Post(path.c_str(), body, "application/json");
}

/// Checks an OpenAI error response: status, JSON body with the four fields, the param.
void check_error(const httplib::Result& res, int status, const std::string& param = "", const std::string& code = "") {
  REQUIRE(res);
  CHECK(res->status == status);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  const json j = json::parse(res->body, nullptr, false);
  REQUIRE_MESSAGE(j.is_object(), res->body);
  REQUIRE(j.contains("error"));
  const json& e = j["error"];
  CHECK(e["message"].is_string());
  CHECK_FALSE(e["message"].get<std::string>().empty());
  CHECK(e["type"].is_string());
  CHECK(e.contains("param"));
  CHECK(e.contains("code"));
  if (!param.empty()) CHECK(e["param"] == param);
  if (!code.empty()) CHECK(e["code"] == code);
}

struct Streamed {
  std::string text, finish_reason;
  std::vector<json> chunks;
  bool done = false;  // ended with [DONE]
  json usage;
};

Streamed read_stream(const std::string& body, bool chat) {
  Streamed s;
  const auto data = sse_data(body);
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == "[DONE]") {
      s.done = i + 1 == data.size();
      break;
    }
    const json j = json::parse(data[i]);
    s.chunks.push_back(j);
    if (j.contains("usage") && !j["usage"].is_null()) s.usage = j["usage"];
    if (j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (chat && c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
    if (!chat) s.text += c["text"].get<std::string>();
    if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
  }
  return s;
}

}  // namespace

TEST_CASE("GET /health and /v1/models") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  auto res = c.Get("/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body)["status"] == "ok");
  res = c.Get("/v1/models");
  REQUIRE(res);
  CHECK(res->status == 200);
  const json models = json::parse(res->body);
  CHECK(models["object"] == "list");
  REQUIRE(models["data"].size() == 1);
  CHECK(models["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1");
  CHECK(models["data"][0]["object"] == "model");
  res = c.Get("/v1/models/SmolLM2-135M-Instruct.Q4_1");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body)["id"] == "SmolLM2-135M-Instruct.Q4_1");
  check_error(c.Get("/v1/models/gpt-4"), 404, "model", "model_not_found");
}

TEST_CASE("POST /v1/chat/completions answers what the model answers alone, with usage") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  const Response want = alone("What is the capital of France?", 12);
  auto res = post(c, "/v1/chat/completions", chat_body("What is the capital of France?", 12).dump());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const json j = json::parse(res->body);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "SmolLM2-135M-Instruct.Q4_1");
  CHECK(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == want.text);
  CHECK(j["choices"][0]["finish_reason"] == finish_reason_name(want.finish_reason));
  CHECK(j["usage"]["prompt_tokens"] == want.prompt_tokens);
  CHECK(j["usage"]["completion_tokens"] == want.tokens.size());
  CHECK(j["usage"]["total_tokens"] == want.prompt_tokens + static_cast<int64_t>(want.tokens.size()));
}

TEST_CASE("POST /v1/completions continues raw text; max_tokens gives finish_reason length") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  auto res = post(c, "/v1/completions", R"({"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "ignore_eos": true})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const json j = json::parse(res->body);
  CHECK(j["object"] == "text_completion");
  CHECK(j["choices"][0]["text"].get<std::string>().size() > 0);
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(j["usage"]["completion_tokens"] == 5);
  CHECK(j["usage"]["prompt_tokens"] == pipeline()->tokenizer().encode("The capital of France is").size());
}

TEST_CASE("stream: true sends SSE chunks that add up to the whole answer, then [DONE]") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  const Response want = alone("Write a haiku about the sea.", 20);
  for (bool usage : {false, true}) {
    CAPTURE(usage);
    json extra = {{"stream", true}};
    if (usage) extra["stream_options"] = {{"include_usage", true}};
    auto res = post(c, "/v1/chat/completions", chat_body("Write a haiku about the sea.", 20, extra).dump());
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("Content-Type").rfind("text/event-stream", 0) == 0);
    const Streamed s = read_stream(res->body, true);
    CHECK(s.done);
    REQUIRE(s.chunks.size() >= 3);
    CHECK(s.chunks[0]["choices"][0]["delta"]["role"] == "assistant");
    for (const auto& ch : s.chunks) {
      CHECK(ch["object"] == "chat.completion.chunk");
      CHECK(ch["id"] == s.chunks[0]["id"]);
      CHECK(ch.contains("usage") == usage);
    }
    CHECK(s.text == want.text);
    CHECK(s.finish_reason == finish_reason_name(want.finish_reason));
    if (usage) {
      CHECK(s.chunks.back()["choices"].empty());
      CHECK(s.usage["completion_tokens"] == want.tokens.size());
      CHECK(s.usage["prompt_tokens"] == want.prompt_tokens);
    } else {
      CHECK(s.usage.is_null());
    }
  }
  // Completions stream too.
  auto res = post(c, "/v1/completions", R"({"prompt": "One, two, three,", "max_tokens": 6, "temperature": 0, "stream": true, "ignore_eos": true, "stream_options": {"include_usage": true}})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  const Streamed s = read_stream(res->body, false);
  CHECK(s.done);
  CHECK(s.chunks.front()["object"] == "text_completion");
  CHECK(s.finish_reason == "length");
  CHECK(s.usage["completion_tokens"] == 6);
  CHECK_FALSE(s.text.empty());
}

TEST_CASE("stop strings of several tokens cut the answer, streamed or not, with finish_reason stop") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  const std::string q = "Explain gravity to a child.";
  const Response full = alone(q, 30);
  REQUIRE(full.text.size() > 20);
  const std::string stop = full.text.substr(8, 7);  // from the middle of the answer, spanning tokens
  REQUIRE(pipeline()->tokenizer().encode(stop, false).size() >= 2);
  const std::string want = full.text.substr(0, full.text.find(stop));
  auto res = post(c, "/v1/chat/completions", chat_body(q, 30, {{"stop", stop}}).dump());
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json j = json::parse(res->body);
  CHECK(j["choices"][0]["message"]["content"] == want);
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  res = post(c, "/v1/chat/completions", chat_body(q, 30, {{"stop", {"never-appears", stop}}, {"stream", true}}).dump());
  REQUIRE(res);
  const Streamed s = read_stream(res->body, true);
  CHECK(s.text == want);
  CHECK(s.finish_reason == "stop");
  CHECK(s.done);
}

TEST_CASE("API keys: missing or wrong -> 401 with an OpenAI error; any listed key works; /health is open") {
  Pipeline<ServeModel>* pipe = pipeline();
  if (!pipe) return skip("the default model is missing (tools/fetch_model.sh)");
  serve::ServerOptions opts;
  opts.api_keys = {"k1", "k2"};
  LocalServer keyed(*pipe, opts, EngineOptions{2, 512, 64, 0});
  const std::string body = chat_body("hi", 2).dump();
  auto none = keyed.client();
  check_error(post(none, "/v1/chat/completions", body), 401, "", "invalid_api_key");
  check_error(none.Get("/v1/models"), 401, "", "invalid_api_key");
  auto wrong = keyed.client("k3");
  check_error(post(wrong, "/v1/chat/completions", body), 401, "", "invalid_api_key");
  auto prefix = keyed.client("k");
  check_error(post(prefix, "/v1/chat/completions", body), 401);
  auto res = none.Get("/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  // On a kept-alive connection a refused request leaves nothing behind for the next one.
  auto kept = keyed.client("k3");
  kept.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) check_error(post(kept, "/v1/chat/completions", body), 401, "", "invalid_api_key");
  res = kept.Get("/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  for (const char* key : {"k1", "k2"}) {
    auto ok = keyed.client(key);
    res = post(ok, "/v1/chat/completions", body);
    REQUIRE(res);
    CHECK_MESSAGE(res->status == 200, res->body);
    res = ok.Get("/v1/models");
    REQUIRE(res);
    CHECK(res->status == 200);
  }
}

TEST_CASE("malformed requests get the right status and a JSON error, and the server keeps serving") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  auto c = server()->client();
  const std::string chat = "/v1/chat/completions", comp = "/v1/completions";
  const json good = chat_body("hi", 3);
  auto with = [&](json extra) {
    json j = good;
    j.update(extra);
    return j.dump();
  };
  std::string long_prompt;
  for (int i = 0; i < 2500; ++i) long_prompt += "hello ";
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  struct Case {
    std::string path, body;
    int status;
    std::string param, code;
  };
  const std::vector<Case> cases = {
      {chat, "{", 400, "", "invalid_json"},
      {chat, "", 400, "", "invalid_json"},
      {chat, "[1]", 400, "", "invalid_json"},
      {chat, deep, 400, "", "invalid_json"},
      {chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}", 400, "", "invalid_utf8"},
      {chat, with({{"max_tokens", "8"}}), 400, "max_tokens", "invalid_type"},
      {chat, with({{"max_tokens", -1}}), 400, "max_tokens", "invalid_value"},
      {chat, with({{"max_tokens", 1e15}}), 400, "max_tokens", "invalid_value"},
      {chat, with({{"max_tokens", 100000}}), 400, "max_tokens", "context_length_exceeded"},
      {chat, with({{"temperature", -0.5}}), 400, "temperature", "invalid_value"},
      {chat, with({{"temperature", "hot"}}), 400, "temperature", "invalid_type"},
      {chat, with({{"top_p", 0}}), 400, "top_p", "invalid_value"},
      {chat, with({{"top_p", 1.5}}), 400, "top_p", "invalid_value"},
      {chat, with({{"n", 2}}), 400, "n", "invalid_value"},
      {chat, with({{"stop", 5}}), 400, "stop", "invalid_type"},
      {chat, with({{"stream", "yes"}}), 400, "stream", "invalid_type"},
      {chat, with({{"presence_penalty", 0.5}}), 400, "presence_penalty", "unsupported_parameter"},
      {chat, with({{"model", "gpt-4"}}), 404, "model", "model_not_found"},
      {chat, with({{"messages", json::array()}}), 400, "messages", "invalid_value"},
      {chat, R"({"max_tokens": 3})", 400, "messages", "missing_required_parameter"},
      {chat, with({{"messages", {{{"role", "wizard"}, {"content", "hi"}}}}}), 400, "messages[0].role", "invalid_value"},
      {chat, with({{"messages", {{{"role", "user"}, {"content", long_prompt}}}}}), 400, "messages", "context_length_exceeded"},
      {chat, with({{"messages", {{{"role", "user"}, {"content", std::string(2000000, 'a')}}}}}), 400, "messages", "context_length_exceeded"},
      {comp, R"({"prompt": ["a", "b"]})", 400, "prompt", "invalid_value"},
      {comp, R"({"prompt": 5})", 400, "prompt", "invalid_type"},
      {comp, R"({"prompt": ""})", 400, "prompt", "invalid_value"},
      {comp, "{\"prompt\": \"" + long_prompt + "\", \"max_tokens\": 1}", 400, "prompt", "context_length_exceeded"},
  };
  for (const Case& k : cases) {
    const std::string body_start = k.body.substr(0, 80);
    CAPTURE(body_start);
    check_error(post(c, k.path, k.body), k.status, k.param, k.code);
    auto health = c.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
  }
  // The long-prompt error says the limits.
  auto res = post(c, chat, with({{"messages", {{{"role", "user"}, {"content", long_prompt}}}}}));
  REQUIRE(res);
  CHECK(res->body.find("context is 2048 tokens") != std::string::npos);

  // Too large a body: 413, before the server reads it all; the connection stays usable or is closed.
  auto kept = server()->client();
  kept.set_keep_alive(true);
  check_error(post(kept, chat, std::string(11 * 1024 * 1024, ' ')), 413, "", "request_too_large");
  check_error(post(kept, chat, "{"), 400, "", "invalid_json");
  auto health = kept.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  // Wrong method, unknown path.
  check_error(c.Get("/v1/chat/completions"), 405, "", "method_not_allowed");
  check_error(c.Get("/v1/nothing"), 404, "", "not_found");
  check_error(c.Post("/v1/nothing", "{}", "application/json"), 404, "", "not_found");

  // Unknown fields are ignored, and after all that the server still answers.
  res = post(c, chat, with({{"some_new_field", {{"x", 1}}}, {"user", "u-1"}}));
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(json::parse(res->body)["choices"][0]["message"]["content"].is_string());
}

TEST_CASE("a streaming client that disconnects frees its sequence at once") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server()->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const std::string body = chat_body("Tell me a very long story.", 1500, {{"stream", true}, {"ignore_eos", true}}).dump();
  const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  while (got.find("\"content\":\"") == std::string::npos || got.find("\"content\":\"\"") == got.rfind("\"content\":\"")) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  CHECK(server()->engine().stats().running == 1);
  ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  while (server()->engine().stats().running != 0 && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(5ms);
  CHECK(server()->engine().stats().running == 0);
  MESSAGE("freed ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s after the disconnect");
}

TEST_CASE("several clients at once each get their own answer") {
  if (!server()) return skip("the default model is missing (tools/fetch_model.sh)");
  const std::vector<std::string> qs = {"Name a fruit.", "What is 3 + 4?", "Say hello in French.", "Name a planet.", "What color is the sky?",
                                       "Count to three."};
  std::vector<Response> want;
  for (const auto& q : qs) want.push_back(alone(q, 10));
  std::vector<std::string> got(qs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < qs.size(); ++i)
    threads.emplace_back([&, i] {
      auto c = server()->client();
      auto res = post(c, "/v1/chat/completions", chat_body(qs[i], 10, {{"stream", i % 2 == 0}}).dump());
      if (!res || res->status != 200) return;
      got[i] = i % 2 == 0 ? read_stream(res->body, true).text : json::parse(res->body)["choices"][0]["message"]["content"].get<std::string>();
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < qs.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i].text);
  }
}
