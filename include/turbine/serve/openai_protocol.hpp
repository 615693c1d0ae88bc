#pragma once
// The OpenAI HTTP API as turbine speaks it: request bodies of /v1/completions and
// /v1/chat/completions parsed and checked into typed structs, each failure an ApiError that names
// the field, what was expected and what came; and builders of the response, stream chunk and
// error bodies. No I/O here (http_server.hpp does that).
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../engine/generation_config.hpp"
#include "../tokenizer/chat_template.hpp"
#include "../tokenizer/unicode.hpp"

namespace turbine::serve {

using json = nlohmann::json;

/// An error for the client: HTTP status plus OpenAI's {"error": {message, type, param, code}}.
class ApiError : public std::runtime_error {
 public:
  /// An error with HTTP status `http_status`; `field` names the request field at fault (empty:
  /// none), `reason` is the code, `kind` the type.
  ApiError(int http_status, const std::string& message, std::string field = {}, std::string reason = {},
           std::string kind = "invalid_request_error")
      : std::runtime_error(message), status(http_status), param(std::move(field)), code(std::move(reason)), type(std::move(kind)) {}
  int status;         ///< HTTP status
  std::string param;  ///< the field at fault, or empty
  std::string code;   ///< a machine-readable reason ("invalid_type", "model_not_found"), or empty
  std::string type;   ///< OpenAI's error type ("invalid_request_error", "server_error")
};

/// {"error": {"message", "type", "param", "code"}}, null where a field is empty.
inline json error_body(const ApiError& e) {
  auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"error", {{"message", e.what()}, {"type", e.type}, {"param", or_null(e.param)}, {"code", or_null(e.code)}}}};
}

/// Fields both endpoints share.
struct SamplingFields {
  std::string model;                  ///< empty: the server's model
  std::optional<int64_t> max_tokens;  ///< max_completion_tokens, else max_tokens; absent: the server decides
  float temperature = 1.0f;           ///< 0: greedy (OpenAI's default is 1)
  float top_p = 1.0f;                 ///< nucleus mass; 1: off
  int64_t top_k = 0;                  ///< 0: off (-1 in a request means off too)
  float min_p = 0.0f;                 ///< 0: off
  float repetition_penalty = 1.0f;    ///< 1: off
  std::optional<uint64_t> seed;       ///< absent: the server picks one
  std::vector<std::string> stop;      ///< stop strings (not included in the text)
  bool stream = false;                ///< answer with server-sent events
  bool include_usage = false;         ///< stream_options.include_usage
  bool ignore_eos = false;            ///< an extension (as in vLLM): generate max_tokens tokens (benchmarks)
};

/// A parsed POST /v1/chat/completions.
struct ChatRequest {
  SamplingFields sampling;            ///< the shared fields
  std::vector<ChatMessage> messages;  ///< at least one; roles system, user or assistant
};

/// A parsed POST /v1/completions.
struct CompletionRequest {
  SamplingFields sampling;  ///< the shared fields
  std::string prompt;       ///< text to continue, without a chat template
};

namespace detail {

inline std::string quoted(const std::string& name) { return "'" + name + "'"; }

inline std::string type_word(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    default: return "an unsupported value";
  }
}

[[noreturn]] inline void bad_type(const std::string& name, const char* expected, const json& got) {
  throw ApiError(400, "Invalid type for " + quoted(name) + ": expected " + expected + ", got " + type_word(got), name,
                 "invalid_type");
}

[[noreturn]] inline void bad_value(const std::string& name, const std::string& expected, const std::string& got) {
  throw ApiError(400, "Invalid value for " + quoted(name) + ": expected " + expected + ", got " + got, name, "invalid_value");
}

inline std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

/// The body as a JSON object: valid UTF-8, valid JSON, an object.
inline json parse_object(std::string_view body) {
  for (size_t i = 0; i < body.size();) {
    const unicode::DecodedChar c = unicode::decode_utf8(body, i);
    if (!c.valid) throw ApiError(400, "request body is not valid UTF-8 (bad byte at offset " + std::to_string(i) + ")", "", "invalid_utf8");
    i += c.len;
  }
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // syntax errors, and numbers too large for a double
    std::string what = e.what();
    if (const size_t at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);
    // The message quotes the bytes last read, which may end inside a UTF-8 character.
    throw ApiError(400, "request body is not valid JSON: " + unicode::sanitize_utf8(what), "", "invalid_json");
  }
  if (!j.is_object()) throw ApiError(400, "request body must be a JSON object, got " + type_word(j), "", "invalid_json");
  return j;
}

/// Reads the optional fields of a request object; null counts as absent (clients send it).
class Reader {
 public:
  explicit Reader(const json& obj) : obj_(obj) {}
  const json* get(const std::string& name) const {
    const auto it = obj_.find(name);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<double> number(const std::string& name, double lo, double hi, bool lo_open, const char* range) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad_type(name, "a number", *v);
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) bad_value(name, std::string("a number in ") + range, number_text(x));
    return x;
  }
  /// An integer (a float with an integral value is accepted) in [lo, hi].
  std::optional<int64_t> integer(const std::string& name, int64_t lo, int64_t hi) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad_type(name, "an integer", *v);
    const double x = v->get<double>();
    if (v->is_number_float() && (!std::isfinite(x) || x != std::floor(x))) bad_type(name, "an integer", *v);
    const std::string shown = v->dump();
    const bool out = v->is_number_unsigned()
                         ? v->get<uint64_t>() > static_cast<uint64_t>(hi) || (lo > 0 && v->get<uint64_t>() < static_cast<uint64_t>(lo))
                         : x < static_cast<double>(lo) || x > static_cast<double>(hi);
    if (out)
      bad_value(name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", shown);
    if (v->is_number_float()) return static_cast<int64_t>(x);
    return v->get<int64_t>();
  }
  std::optional<bool> boolean(const std::string& name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) bad_type(name, "a boolean", *v);
    return v->get<bool>();
  }
  std::optional<std::string> string(const std::string& name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) bad_type(name, "a string", *v);
    return v->get<std::string>();
  }
  /// Known OpenAI fields this server does not implement: refused unless they ask for nothing
  /// (false, 0, "", [], {}, or `also_ok`).
  void unsupported(const std::string& name, const std::string& hint = {}, const json& also_ok = nullptr) const {
    const json* v = get(name);
    if (!v || (!also_ok.is_null() && *v == also_ok)) return;
    if ((v->is_boolean() && !v->get<bool>()) || (v->is_number() && v->get<double>() == 0) ||
        (v->is_string() && v->get_ref<const std::string&>().empty()) || ((v->is_array() || v->is_object()) && v->empty()))
      return;
    throw ApiError(400, quoted(name) + " is not supported by this server" + (hint.empty() ? "" : " (" + hint + ")"), name,
                   "unsupported_parameter");
  }

 private:
  const json& obj_;
};

inline std::vector<std::string> parse_stop(const Reader& r) {
  const json* v = r.get("stop");
  if (!v) return {};
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > 16) bad_value("stop", "at most 16 stop strings", std::to_string(v->size()));
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) bad_type("stop[" + std::to_string(i) + "]", "a string", (*v)[i]);
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    bad_type("stop", "a string or an array of strings", *v);
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].empty()) bad_value(v->is_string() ? "stop" : "stop[" + std::to_string(i) + "]", "a non-empty string", "\"\"");
  return out;
}

inline SamplingFields parse_sampling(const json& body) {
  const Reader r(body);
  SamplingFields s;
  s.model = r.string("model").value_or("");
  constexpr int64_t kMaxTokens = int64_t{1} << 31;
  s.max_tokens = r.integer("max_tokens", 1, kMaxTokens);
  if (auto m = r.integer("max_completion_tokens", 1, kMaxTokens)) s.max_tokens = m;
  s.temperature = static_cast<float>(r.number("temperature", 0, 2, false, "[0, 2]").value_or(1.0));
  s.top_p = static_cast<float>(r.number("top_p", 0, 1, true, "(0, 1]").value_or(1.0));
  s.top_k = std::max<int64_t>(0, r.integer("top_k", -1, kMaxTokens).value_or(0));  // -1 and 0: off
  s.min_p = static_cast<float>(r.number("min_p", 0, 1, false, "[0, 1]").value_or(0.0));
  s.repetition_penalty = static_cast<float>(r.number("repetition_penalty", 0, 10, true, "(0, 10]").value_or(1.0));
  if (const json* seed = r.get("seed")) {
    if (!seed->is_number_integer()) bad_type("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
  }
  s.stop = parse_stop(r);
  if (auto n = r.integer("n", 1, kMaxTokens); n && *n != 1) bad_value("n", "1 (one choice per request)", std::to_string(*n));
  s.stream = r.boolean("stream").value_or(false);
  s.ignore_eos = r.boolean("ignore_eos").value_or(false);
  if (const json* so = r.get("stream_options")) {
    if (!so->is_object()) bad_type("stream_options", "an object", *so);
    const Reader sr(*so);
    const json* iu = sr.get("include_usage");
    if (iu && !iu->is_boolean()) bad_type("stream_options.include_usage", "a boolean", *iu);
    s.include_usage = iu && iu->get<bool>();
  }
  const std::string use_rp = "use repetition_penalty";
  r.unsupported("frequency_penalty", use_rp);
  r.unsupported("presence_penalty", use_rp);
  for (const char* name : {"logprobs", "top_logprobs", "logit_bias", "echo", "suffix", "tools", "functions"}) r.unsupported(name);
  r.unsupported("best_of", "", 1);
  if (const json* rf = r.get("response_format"); rf && !(rf->is_object() && rf->value("type", "") == "text"))
    throw ApiError(400, "'response_format' other than {\"type\": \"text\"} is not supported by this server", "response_format",
                   "unsupported_parameter");
  return s;
}

/// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
inline std::string parse_content(const json& c, const std::string& where, bool may_be_null) {
  if (c.is_null() && may_be_null) return {};
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad_type(where, "a string or an array of text parts", c);
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& part = c[i];
    if (!part.is_object()) bad_type(at, "an object", part);
    const auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text")
      bad_value(at + ".type", "\"text\" (only text parts are supported)", type == part.end() ? "nothing" : type->dump());
    const auto text = part.find("text");
    if (text == part.end()) bad_value(at + ".text", "a string", "nothing");
    if (!text->is_string()) bad_type(at + ".text", "a string", *text);
    out += text->get<std::string>();
  }
  return out;
}

}  // namespace detail

/// POST /v1/chat/completions. Throws ApiError.
inline ChatRequest parse_chat_request(std::string_view body) {
  const json j = detail::parse_object(body);
  ChatRequest out;
  out.sampling = detail::parse_sampling(j);
  const auto it = j.find("messages");
  if (it == j.end() || it->is_null()) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!it->is_array()) detail::bad_type("messages", "an array", *it);
  if (it->empty()) throw ApiError(400, "'messages' must contain at least one message", "messages", "invalid_value");
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json& m = (*it)[i];
    if (!m.is_object()) detail::bad_type(at, "an object", m);
    const auto role = m.find("role");
    if (role == m.end()) throw ApiError(400, "'" + at + ".role' is required", at + ".role", "missing_required_parameter");
    if (!role->is_string()) detail::bad_type(at + ".role", "a string", *role);
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant")
      detail::bad_value(at + ".role", "one of \"system\", \"user\", \"assistant\", \"developer\"", role->dump());
    const auto content = m.find("content");
    if (content == m.end() && r != "assistant")
      throw ApiError(400, "'" + at + ".content' is required", at + ".content", "missing_required_parameter");
    out.messages.push_back({r, content == m.end() ? std::string() : detail::parse_content(*content, at + ".content", r == "assistant")});
  }
  return out;
}

/// POST /v1/completions. Throws ApiError.
inline CompletionRequest parse_completion_request(std::string_view body) {
  const json j = detail::parse_object(body);
  CompletionRequest out;
  out.sampling = detail::parse_sampling(j);
  const auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  if (it->is_string()) {
    out.prompt = it->get<std::string>();
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    out.prompt = (*it)[0].get<std::string>();
  } else if (it->is_array() && it->size() != 1) {
    detail::bad_value("prompt", "a string or an array of exactly one string (one prompt per request)",
                      "an array of " + std::to_string(it->size()));
  } else {
    detail::bad_type("prompt", "a string", it->is_array() ? (*it)[0] : *it);
  }
  return out;
}

/// The engine's settings for a request; `max_tokens` is decided by the server (context, defaults).
inline GenerationConfig generation_config(const SamplingFields& s, int64_t max_tokens, uint64_t fallback_seed) {
  GenerationConfig g;
  g.max_new_tokens = max_tokens;
  g.temperature = s.temperature;
  g.top_p = s.top_p;
  g.top_k = s.top_k;
  g.min_p = s.min_p;
  g.repetition_penalty = s.repetition_penalty;
  g.seed = s.seed.value_or(fallback_seed);
  g.stop = s.stop;
  g.ignore_eos = s.ignore_eos;
  return g;
}

// ---- responses ------------------------------------------------------------------------------

/// Token counts of a request ("usage" in responses).
struct Usage {
  int64_t prompt_tokens = 0;      ///< prompt tokens (the chat template's included)
  int64_t completion_tokens = 0;  ///< generated tokens (a final end-of-sequence token included)
};

/// {"prompt_tokens", "completion_tokens", "total_tokens"}.
inline json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

/// Fields every response and chunk of one request shares.
struct ResponseHead {
  std::string id;       ///< "chatcmpl-..." or "cmpl-..."
  std::string model;    ///< the model id
  int64_t created = 0;  ///< Unix time
  bool chat = true;     ///< chat completion (else text completion)
};

/// id, object, created, model and system_fingerprint of a response or chunk.
inline json response_base(const ResponseHead& h, bool chunk) {
  const char* object = h.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}, {"system_fingerprint", "turbine"}};
}

/// The whole (non-streamed) response.
inline json full_response(const ResponseHead& h, const std::string& text, const std::string& finish_reason, const Usage& u) {
  json j = response_base(h, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (h.chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(u);
  return j;
}

/// One stream chunk: new text (or, for chat, the assistant role when `role_only`), or the
/// finish reason. `with_usage` adds "usage": null as OpenAI does when include_usage is set.
inline json stream_chunk(const ResponseHead& h, const std::string& text, const std::string& finish_reason, bool with_usage,
                         bool role_only = false) {
  json j = response_base(h, true);
  json choice = {{"index", 0}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (h.chat) {
    json delta = json::object();
    if (role_only) delta = {{"role", "assistant"}, {"content", ""}};
    else if (finish_reason.empty()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  if (with_usage) j["usage"] = nullptr;
  return j;
}

/// The last chunk when stream_options.include_usage is set: no choices, the usage.
inline json usage_chunk(const ResponseHead& h, const Usage& u) {
  json j = response_base(h, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(u);
  return j;
}

/// One server-sent event.
inline std::string sse_event(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

/// One entry of GET /v1/models.
inline json model_object(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "turbine"}};
}

}  // namespace turbine::serve
