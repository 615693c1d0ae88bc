#pragma once
// One sequence of the continuous-batching engine: generate_sequence's loop cut into steps. The
// engine feeds the prompt in chunks, then one token per step; after each forward pass that ends
// the prompt or feeds the pending token, on_logits() samples, streams and decides whether the
// sequence is done, with exactly generate_sequence's rules, so a request decodes the same tokens
// whether it runs alone or batched with others.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "../tokenizer/incremental_decoder.hpp"
#include "generation_config.hpp"
#include "request_stream.hpp"
#include "sampler.hpp"
#include "stop_checker.hpp"

namespace turbine {

/// Totals an engine keeps; a sequence adds itself when it ends, before its sink hears of it, so a
/// client woken by its result already sees it counted.
struct SequenceCounters {
  std::atomic<uint64_t> finished{0};          ///< sequences ended
  std::atomic<uint64_t> generated_tokens{0};  ///< their generated tokens
};

/// One request in the engine: its prompt, sampler, detokenizer, stop strings and result.
class SequenceState {
 public:
  using clock = std::chrono::steady_clock;  ///< for the request's timings

  /// A request of `prompt` ids; `sink` hears its output; `counters`, if given, count it at its end.
  SequenceState(uint64_t id, std::vector<int32_t> prompt, const GenerationConfig& cfg, std::shared_ptr<StreamSink> sink,
                const Tokenizer& tok, std::span<const int32_t> eos, SequenceCounters* counters = nullptr)
      : id_(id), counters_(counters), cfg_(cfg), sink_(std::move(sink)), history_(std::move(prompt)), sampler_(cfg_), decoder_(tok),
        stops_(cfg_.stop), eos_(eos.begin(), eos.end()), prompt_len_(static_cast<int64_t>(history_.size())) {
    result_.prompt_tokens = prompt_len_;
  }

  uint64_t id() const { return id_; }  ///< the engine's name for it
  /// Tokens of its history that must go through the model before the next step can sample: the
  /// prompt not yet read, or, after preemption dropped its cache, everything but the pending
  /// token (recomputed, not sampled again).
  int64_t backlog() const { return static_cast<int64_t>(history_.size()) - (generated() ? 1 : 0) - fed_; }
  /// Prompt tokens not yet through the model.
  int64_t prompt_left() const { return std::max<int64_t>(0, prompt_len_ - fed_); }
  /// The next `n` tokens of the backlog.
  std::span<const int32_t> backlog_chunk(int64_t n) const { return {history_.data() + fed_, static_cast<size_t>(n)}; }
  /// Every token that is (or, once the backlog is fed, will be) in the cache, in order.
  std::span<const int32_t> cached_tokens() const {
    return {history_.data(), static_cast<size_t>(static_cast<int64_t>(history_.size()) - (generated() ? 1 : 0))};
  }
  /// `n` more tokens of its history are in the cache (prompt, recomputed or pending tokens).
  void mark_fed(int64_t n) { fed_ += n; }
  /// Its cache was dropped (preempted) or starts with `reused` positions from the prefix cache.
  void restart_from(int64_t reused) { fed_ = reused; }
  bool generated() const { return !result_.tokens.empty(); }  ///< has sampled a token
  /// The token sampled last step, to feed this step (valid while decoding()).
  std::span<const int32_t> pending_token() const { return {&history_.back(), 1}; }
  bool decoding() const { return backlog() == 0 && generated() && !finished_; }  ///< caught up, not done
  bool finished() const { return finished_; }                          ///< done (its sink was told)
  int64_t max_new_tokens() const { return cfg_.max_new_tokens; }       ///< from its GenerationConfig
  int64_t prompt_length() const { return prompt_len_; }                ///< tokens of its prompt
  const GenerationConfig& config() const { return cfg_; }              ///< its sampling settings
  /// The index of the token drawn next (device sampling draws by seed and this step).
  uint64_t sample_step() const { return result_.tokens.size(); }
  std::span<const int32_t> history() const { return history_; }      ///< prompt and generated ids

  /// It leaves the queue (submitted at `submitted`) and starts; again after a preemption, which
  /// keeps the first start's timings.
  void mark_started(clock::time_point submitted) {
    if (started_once_) return;
    started_once_ = true;
    started_ = clock::now();
    result_.queue_seconds = std::chrono::duration<double>(started_ - submitted).count();
  }

  /// Samples the next token from the logits of the last token fed; `cache_length` counts the
  /// positions now in the cache and `capacity` its limit. Returns true when the sequence is done.
  bool on_logits(std::span<float> logits, int64_t cache_length, int64_t capacity) {
    return on_token(sampler_.sample(logits, history_), cache_length, capacity);
  }
  /// As on_logits(), for a token the model sampled on its device (by config() at sample_step()).
  bool on_token(int32_t id, int64_t cache_length, int64_t capacity) {
    if (result_.tokens.empty()) {
      first_token_ = clock::now();
      result_.first_token_seconds = std::chrono::duration<double>(first_token_ - started_).count();
    }
    result_.tokens.push_back(id);
    history_.push_back(id);
    if (is_stop_token(id)) return finish(FinishReason::Stop);
    if (!emit(stops_.push(decoder_.push(id)))) return finish(FinishReason::Cancelled);
    if (stops_.stopped()) return finish(FinishReason::Stop);
    const int64_t made = static_cast<int64_t>(result_.tokens.size());
    if (made == cfg_.max_new_tokens || cache_length + 1 >= capacity) return finish(FinishReason::Length);
    return false;
  }

  /// Ends the sequence now (max_new_tokens 0, cancellation, or an error) and reports it.
  bool finish(FinishReason reason, std::string error = {}) {
    if (finished_) return true;
    finished_ = true;
    if (reason != FinishReason::Cancelled && !stops_.stopped()) emit(stops_.push(decoder_.flush()) + stops_.flush());
    result_.finish_reason = reason;
    result_.error = std::move(error);
    if (!result_.tokens.empty())
      result_.decode_seconds = std::chrono::duration<double>(clock::now() - first_token_).count();
    if (counters_) {
      counters_->generated_tokens.fetch_add(result_.tokens.size());
      counters_->finished.fetch_add(1);
    }
    sink_->on_finish(result_);
    return true;
  }

 private:
  bool is_stop_token(int32_t id) const {
    const auto& ids = cfg_.stop_token_ids;
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return true;
    return !cfg_.ignore_eos && std::find(eos_.begin(), eos_.end(), id) != eos_.end();
  }
  bool emit(const std::string& piece) {
    if (piece.empty()) return true;
    result_.text += piece;
    return sink_->on_text(piece);
  }

  uint64_t id_;
  SequenceCounters* counters_;
  GenerationConfig cfg_;
  std::shared_ptr<StreamSink> sink_;
  std::vector<int32_t> history_;  // prompt, then generated ids (the repetition penalty sees all)
  Sampler sampler_;
  IncrementalDecoder decoder_;
  StopChecker stops_;
  std::vector<int32_t> eos_;
  int64_t prompt_len_ = 0, fed_ = 0;
  bool finished_ = false, started_once_ = false;
  RequestResult result_;
  clock::time_point started_ = clock::now(), first_token_ = clock::now();
};

}  // namespace turbine
