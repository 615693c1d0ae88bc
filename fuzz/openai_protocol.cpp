// libFuzzer target for serve/openai_protocol.hpp: any request body either parses into a chat and
// a completion request whose settings the engine accepts, or raises serve::ApiError with an HTTP
// status of 4xx and a non-empty message. See docs/FUZZING.md.
#include <cstdlib>

#include <turbine/serve/openai_protocol.hpp>

namespace {

void check_error(const turbine::serve::ApiError& e) {
  if (e.status < 400 || e.status > 499 || std::string(e.what()).empty()) std::abort();
  (void)turbine::serve::error_body(e).dump();
}

void check_sampling(const turbine::serve::SamplingFields& s) {
  const turbine::GenerationConfig g = turbine::serve::generation_config(s, s.max_tokens.value_or(16), 0);
  g.validate();  // throws turbine::Error (not caught: a crash) if the parser let a bad value through
  if (s.max_tokens && *s.max_tokens < 1) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const auto r = turbine::serve::parse_chat_request(body);
    if (r.messages.empty()) std::abort();
    check_sampling(r.sampling);
  } catch (const turbine::serve::ApiError& e) {
    check_error(e);
  }
  try {
    check_sampling(turbine::serve::parse_completion_request(body).sampling);
  } catch (const turbine::serve::ApiError& e) {
    check_error(e);
  }
  return 0;
}
