// Request parsing and validation of the OpenAI API: typed results for good bodies, and for bad
// ones an ApiError with the status, the field, and what was expected.
#include <doctest/doctest.h>

#include <turbine/serve/openai_protocol.hpp>

using namespace turbine;
using namespace turbine::serve;

namespace {

/// The ApiError a chat body raises (status 0 if it parses).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "no error");
}

ApiError completion_error(const std::string& body) {
  try {
    parse_completion_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "no error");
}

const std::string kMsgs = R"("messages": [{"role": "user", "content": "hi"}])";
std::string chat_with(const std::string& field) { return "{" + kMsgs + ", " + field + "}"; }

/// One field of a chat body that must be refused: the field as JSON, the param and message expected.
struct FieldCase {
  const char* field;
  const char* param;
  const char* message;
};

/// Each case's field in a valid chat body gets a 400 with `code`, its param and its exact message.
template <size_t N>
void expect_refused(const FieldCase (&cases)[N], const char* code) {
  for (const FieldCase& c : cases) {
    const std::string field = c.field;
    CAPTURE(field);
    const ApiError e = chat_error(chat_with(c.field));
    CHECK(e.status == 400);
    CHECK(e.param == c.param);
    CHECK(e.code == code);
    CHECK(std::string(e.what()) == c.message);
  }
}

}  // namespace

TEST_CASE("a full chat request becomes typed fields") {
  const ChatRequest r = parse_chat_request(R"({
    "model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                               {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}],
    "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
    "seed": 42, "stop": ["\n\n", "END"], "n": 1, "stream": true, "stream_options": {"include_usage": true},
    "user": "someone", "some_future_field": {"x": 1}, "frequency_penalty": 0, "logprobs": false, "tools": [], "ignore_eos": true})");
  REQUIRE(r.messages.size() == 4);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[1].content == "ab");
  CHECK(r.messages[2].content.empty());
  CHECK(r.messages[3].role == "system");
  const SamplingFields& s = r.sampling;
  CHECK(s.model == "m");
  CHECK(s.max_tokens == 7);
  CHECK(s.temperature == doctest::Approx(0.5));
  CHECK(s.top_p == doctest::Approx(0.9));
  CHECK(s.top_k == 40);
  CHECK(s.min_p == doctest::Approx(0.05));
  CHECK(s.repetition_penalty == doctest::Approx(1.1));
  CHECK(s.seed == 42u);
  CHECK(s.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(s.stream);
  CHECK(s.include_usage);
  CHECK(s.ignore_eos);
  const GenerationConfig g = generation_config(s, 7, 99);
  CHECK_NOTHROW(g.validate());
  CHECK(g.seed == 42u);
  CHECK(g.stop.size() == 2);
}

TEST_CASE("defaults follow OpenAI; null means absent; max_completion_tokens wins") {
  const ChatRequest r = parse_chat_request(chat_with(R"("temperature": null, "stop": null, "max_tokens": 5, "max_completion_tokens": 9)"));
  CHECK(r.sampling.temperature == 1.0f);
  CHECK(r.sampling.top_p == 1.0f);
  CHECK(r.sampling.stop.empty());
  CHECK(r.sampling.max_tokens == 9);
  CHECK_FALSE(r.sampling.stream);
  CHECK_FALSE(r.sampling.seed.has_value());
  CHECK(generation_config(r.sampling, 9, 1234).seed == 1234u);
  CHECK(parse_chat_request(chat_with(R"("top_k": -1, "max_tokens": 3.0, "seed": -5, "stop": "x")")).sampling.top_k == 0);
  CHECK(parse_chat_request(chat_with(R"("seed": -5)")).sampling.seed == static_cast<uint64_t>(-5));
  CHECK(parse_chat_request(chat_with(R"("stop": "x")")).sampling.stop == std::vector<std::string>{"x"});
}

TEST_CASE("completion prompts: a string, or an array of one string") {
  CHECK(parse_completion_request(R"({"prompt": "Once upon"})").prompt == "Once upon");
  CHECK(parse_completion_request(R"({"prompt": ["Once upon"], "max_tokens": 3})").prompt == "Once upon");
  ApiError e = completion_error(R"({"prompt": ["a", "b"]})");
  CHECK(e.status == 400);
  CHECK(e.param == "prompt");
  CHECK(std::string(e.what()).find("an array of 2") != std::string::npos);
  e = completion_error(R"({"prompt": 5})");
  CHECK(e.param == "prompt");
  CHECK(e.code == "invalid_type");
  CHECK(completion_error(R"({"prompt": [5]})").code == "invalid_type");
  CHECK(completion_error(R"({"max_tokens": 5})").code == "missing_required_parameter");
  CHECK(completion_error(R"({"prompt": null})").param == "prompt");
}

TEST_CASE("malformed bodies: not UTF-8, not JSON, not an object") {
  ApiError e = chat_error("{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}");
  CHECK(e.status == 400);
  CHECK(e.code == "invalid_utf8");
  CHECK(std::string(e.what()) == "request body is not valid UTF-8 (bad byte at offset 43)");
  e = chat_error("{\"messages\": ");
  CHECK(e.code == "invalid_json");
  CHECK(std::string(e.what()).rfind("request body is not valid JSON: parse error at line 1", 0) == 0);
  CHECK(chat_error("").code == "invalid_json");
  // Found by fuzz/openai_protocol.cpp: a number beyond a double, and a quoted UTF-8 character cut in two.
  CHECK(std::string(chat_error(R"({"max_tokens": 1e400})").what()).find("number overflow") != std::string::npos);
  e = chat_error("{\"role\":\"\xde\xa3ssistant\",\"content\":[{gtyp\"}");
  CHECK(e.code == "invalid_json");
  CHECK(unicode::is_valid_utf8(e.what()));
  CHECK(chat_error("[1, 2]").code == "invalid_json");
  CHECK(std::string(chat_error("\"hi\"").what()) == "request body must be a JSON object, got a string");
  // Deep nesting is refused without exhausting the stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  CHECK(chat_error(deep).code == "invalid_json");
  CHECK(chat_error("{\"messages\": " + deep + "}").param == "messages[0]");
}

TEST_CASE("wrong types name the field, the expected type and what came") {
  const FieldCase cases[] = {
      {R"("max_tokens": "8")", "max_tokens", "Invalid type for 'max_tokens': expected an integer, got a string"},
      {R"("max_tokens": 2.5)", "max_tokens", "Invalid type for 'max_tokens': expected an integer, got a number"},
      {R"("temperature": "hot")", "temperature", "Invalid type for 'temperature': expected a number, got a string"},
      {R"("temperature": true)", "temperature", "Invalid type for 'temperature': expected a number, got a boolean"},
      {R"("stream": "yes")", "stream", "Invalid type for 'stream': expected a boolean, got a string"},
      {R"("stop": 5)", "stop", "Invalid type for 'stop': expected a string or an array of strings, got an integer"},
      {R"("stop": ["a", 1])", "stop[1]", "Invalid type for 'stop[1]': expected a string, got an integer"},
      {R"("seed": 1.5)", "seed", "Invalid type for 'seed': expected an integer, got a number"},
      {R"("model": 3)", "model", "Invalid type for 'model': expected a string, got an integer"},
      {R"("stream_options": [])", "stream_options", "Invalid type for 'stream_options': expected an object, got an array"},
      {R"("stream_options": {"include_usage": 1})", "stream_options.include_usage",
       "Invalid type for 'stream_options.include_usage': expected a boolean, got an integer"},
  };
  expect_refused(cases, "invalid_type");
}

TEST_CASE("out-of-range values name the field and the range") {
  const FieldCase cases[] = {
      {R"("max_tokens": -1)", "max_tokens", "Invalid value for 'max_tokens': expected an integer in [1, 2147483648], got -1"},
      {R"("max_tokens": 0)", "max_tokens", "Invalid value for 'max_tokens': expected an integer in [1, 2147483648], got 0"},
      {R"("max_tokens": 1e300)", "max_tokens", "Invalid value for 'max_tokens': expected an integer in [1, 2147483648], got 1e+300"},
      {R"("max_tokens": 18446744073709551615)", "max_tokens",
       "Invalid value for 'max_tokens': expected an integer in [1, 2147483648], got 18446744073709551615"},
      {R"("max_completion_tokens": -3)", "max_completion_tokens",
       "Invalid value for 'max_completion_tokens': expected an integer in [1, 2147483648], got -3"},
      {R"("temperature": -0.5)", "temperature", "Invalid value for 'temperature': expected a number in [0, 2], got -0.5"},
      {R"("temperature": 2.5)", "temperature", "Invalid value for 'temperature': expected a number in [0, 2], got 2.5"},
      {R"("top_p": 0)", "top_p", "Invalid value for 'top_p': expected a number in (0, 1], got 0"},
      {R"("top_p": 1.5)", "top_p", "Invalid value for 'top_p': expected a number in (0, 1], got 1.5"},
      {R"("top_k": -2)", "top_k", "Invalid value for 'top_k': expected an integer in [-1, 2147483648], got -2"},
      {R"("min_p": 1.5)", "min_p", "Invalid value for 'min_p': expected a number in [0, 1], got 1.5"},
      {R"("repetition_penalty": 0)", "repetition_penalty", "Invalid value for 'repetition_penalty': expected a number in (0, 10], got 0"},
      {R"("n": 2)", "n", "Invalid value for 'n': expected 1 (one choice per request), got 2"},
      {R"("stop": ["ok", ""])", "stop[1]", "Invalid value for 'stop[1]': expected a non-empty string, got \"\""},
      {R"("stop": "")", "stop", "Invalid value for 'stop': expected a non-empty string, got \"\""},
  };
  expect_refused(cases, "invalid_value");
}

TEST_CASE("messages: required, non-empty, each with a known role and text content") {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": [5]})", "messages[0]"},
      {R"({"messages": [{"content": "hi"}]})", "messages[0].role"},
      {R"({"messages": [{"role": 1, "content": "hi"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "wizard", "content": "hi"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": null}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "image_url"}]}]})", "messages[1].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]})", "messages[0].content[0].text"},
      {R"({"messages": [{"role": "user", "content": ["x"]}]})", "messages[0].content[0]"},
  };
  for (const Case& c : cases) {
    const std::string body = c.body;
    CAPTURE(body);
    const ApiError e = chat_error(c.body);
    CHECK(e.status == 400);
    CHECK(e.param == c.param);
  }
}

TEST_CASE("known OpenAI features this server lacks are refused unless they ask for nothing") {
  for (const char* field : {R"("frequency_penalty": 0.5)", R"("presence_penalty": -1)", R"("logprobs": true)", R"("top_logprobs": 3)",
                            R"("logit_bias": {"50256": -100})", R"("best_of": 3)", R"("echo": true)", R"("suffix": "end")",
                            R"("tools": [{"type": "function"}])", R"("response_format": {"type": "json_object"})"}) {
    const std::string f = field;
    CAPTURE(f);
    const ApiError e = chat_error(chat_with(field));
    CHECK(e.status == 400);
    CHECK(e.code == "unsupported_parameter");
    CHECK_FALSE(e.param.empty());
  }
  for (const char* field : {R"("frequency_penalty": 0)", R"("logprobs": false)", R"("best_of": 1)", R"("echo": false)", R"("suffix": "")",
                            R"("tools": [])", R"("response_format": {"type": "text"})", R"("logit_bias": {})"}) {
    const std::string f = field;
    CAPTURE(f);
    CHECK_NOTHROW(parse_chat_request(chat_with(field)));
  }
}

TEST_CASE("response builders: full response, chunks, usage, errors") {
  ResponseHead chat{"chatcmpl-1", "m", 7, true};
  const json full = full_response(chat, "hello", "stop", Usage{3, 2});
  CHECK(full["object"] == "chat.completion");
  CHECK(full["choices"][0]["message"]["content"] == "hello");
  CHECK(full["choices"][0]["message"]["role"] == "assistant");
  CHECK(full["choices"][0]["finish_reason"] == "stop");
  CHECK(full["usage"]["total_tokens"] == 5);
  const json role = stream_chunk(chat, "", "", true, true);
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["choices"][0]["delta"]["role"] == "assistant");
  CHECK(role["usage"].is_null());
  CHECK(role.contains("usage"));
  const json piece = stream_chunk(chat, "he", "", false);
  CHECK(piece["choices"][0]["delta"]["content"] == "he");
  CHECK(piece["choices"][0]["finish_reason"].is_null());
  CHECK_FALSE(piece.contains("usage"));
  const json last = stream_chunk(chat, "", "length", false);
  CHECK(last["choices"][0]["delta"].empty());
  CHECK(last["choices"][0]["finish_reason"] == "length");
  const json usage = usage_chunk(chat, Usage{3, 2});
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["completion_tokens"] == 2);

  ResponseHead text{"cmpl-1", "m", 7, false};
  CHECK(full_response(text, "x", "length", {})["choices"][0]["text"] == "x");
  CHECK(full_response(text, "x", "length", {})["object"] == "text_completion");
  CHECK(stream_chunk(text, "y", "", false)["choices"][0]["text"] == "y");
  CHECK(sse_event(json{{"a", 1}}) == "data: {\"a\":1}\n\n");

  const json err = error_body(ApiError(404, "no such model", "model", "model_not_found"));
  CHECK(err["error"]["message"] == "no such model");
  CHECK(err["error"]["type"] == "invalid_request_error");
  CHECK(err["error"]["param"] == "model");
  CHECK(err["error"]["code"] == "model_not_found");
  CHECK(error_body(ApiError(500, "x"))["error"]["param"].is_null());
}
