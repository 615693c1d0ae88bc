#pragma once
// How a request's output leaves the engine: a StreamSink receives the text as it is generated and
// then the result, on the engine's thread. RequestStream is the ready-made sink that hands both to
// another thread (an HTTP handler) that waits on it.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "generate.hpp"

namespace turbine {

/// The outcome of one request.
struct RequestResult {
  FinishReason finish_reason = FinishReason::Length;  ///< why it ended
  std::string text;                ///< everything streamed
  std::vector<int32_t> tokens;     ///< generated ids (including a final end-of-sequence id, if any)
  int64_t prompt_tokens = 0;       ///< tokens of the prompt
  std::string error;               ///< non-empty: the request failed (finish_reason is Cancelled)
  double queue_seconds = 0;        ///< waiting for a free slot
  double first_token_seconds = 0;  ///< from the start of its prefill to its first token
  double decode_seconds = 0;       ///< from the first token to the end
};

/// Receives one request's output. Both calls come from the engine's thread and must return quickly.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  /// New text (whole UTF-8 characters; text that may start a stop string is held back).
  /// Return false to cancel the request.
  virtual bool on_text(std::string_view piece) = 0;
  /// Called exactly once, after the last on_text.
  virtual void on_finish(const RequestResult& result) = 0;
};

/// A StreamSink that another thread waits on.
class RequestStream final : public StreamSink {
 public:
  bool on_text(std::string_view piece) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ += piece;
    }
    cv_.notify_all();
    return true;
  }
  void on_finish(const RequestResult& result) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = result;
    }
    cv_.notify_all();
  }

  /// Waits at most `timeout` for news. Moves the text that arrived since the last call into `text`
  /// and returns true once the request has finished (then `result` holds it).
  bool wait(std::chrono::milliseconds timeout, std::string& text, RequestResult& result) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || result_.has_value(); });
    text.clear();
    text.swap(pending_);
    if (!result_) return false;
    result = *result_;
    return true;
  }

  /// Blocks until the request finishes.
  RequestResult wait_result() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  std::optional<RequestResult> result_;
};

}  // namespace turbine
