#pragma once
// serve::Backend: what the HTTP server needs of a model and its engine, as plain functions, so the
// server (cpp-httplib) compiles once while the engine is instantiated for any model type, in any
// translation unit (a CUDA model's .cu file included). make_backend() builds one.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../engine/scheduler.hpp"

namespace turbine::serve {

/// What the server needs of an engine; make_backend() builds it from a Pipeline and an Engine.
struct Backend {
  /// Messages to prompt ids, through the chat template (throws Error for a bad conversation).
  std::function<std::vector<int32_t>(const std::vector<ChatMessage>&)> encode_chat;
  std::function<std::vector<int32_t>(const std::string&)> encode_text;  ///< raw text to ids
  /// Engine::submit.
  std::function<RequestId(std::vector<int32_t>, const GenerationConfig&, std::shared_ptr<StreamSink>)> submit;
  std::function<void(RequestId)> cancel;  ///< Engine::cancel
  std::function<EngineStats()> stats;     ///< Engine::stats
  int64_t context_size = 0;               ///< tokens per sequence
  size_t max_token_bytes = 1;  ///< the longest token's text: a prompt of more than context × this bytes cannot fit
};

/// The Backend of `engine`, which runs `pipe`'s model (both must outlive the server).
template <class Model, class Pool>
Backend make_backend(Pipeline<Model>& pipe, Engine<Model, Pool>& engine) {
  Backend b;
  b.encode_chat = [&pipe](const std::vector<ChatMessage>& m) { return pipe.encode_chat(m); };
  b.encode_text = [&pipe](const std::string& t) { return pipe.tokenizer().encode(t); };
  b.submit = [&engine](std::vector<int32_t> ids, const GenerationConfig& cfg, std::shared_ptr<StreamSink> sink) {
    return engine.submit(std::move(ids), cfg, std::move(sink));
  };
  b.cancel = [&engine](RequestId id) { engine.cancel(id); };
  b.stats = [&engine] { return engine.stats(); };
  b.context_size = engine.context_size();
  const Tokenizer& tok = pipe.tokenizer();
  for (int32_t id = 0; id < tok.vocab_size(); ++id) b.max_token_bytes = std::max(b.max_token_bytes, tok.token_text(id).size());
  return b;
}

/// The id clients use for a model: a file's stem ("SmolLM2-135M-Instruct.Q4_1") or a directory's name.
inline std::string model_id_from_path(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" names "dir"
  return std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
}

}  // namespace turbine::serve
