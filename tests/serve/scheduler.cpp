// Engine<Model>: continuous batching gives every request exactly what it gets alone, cancels and
// queues as told, refuses what can never run, and shuts down cleanly with work in flight.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <turbine/engine/scheduler.hpp>
#include <turbine/turbine.hpp>

#include "test_support.hpp"

using namespace turbine;
using Model = Llama<f32, quant::None, kv::Same, Cpu>;
using namespace std::chrono_literals;

namespace {

Pipeline<Model>* pipeline() {
  static std::unique_ptr<Pipeline<Model>> pipe = [] {
    const std::string path = test::default_model_path();
    return path.empty() ? nullptr : std::make_unique<Pipeline<Model>>(path, PipelineOptions{"", 2048});
  }();
  return pipe.get();
}

struct Case {
  std::vector<int32_t> prompt;
  GenerationConfig cfg;
};

/// What one request gets alone: a fresh cache, the whole prompt at once.
Response alone(Pipeline<Model>& pipe, const Case& c) {
  auto cache = pipe.model().new_cache(pipe.context_size());
  std::vector<int32_t> cached;
  return generate_sequence(pipe.model(), cache, cached, c.prompt, pipe.tokenizer(), c.cfg, pipe.eos_ids());
}

/// A sink that records what it hears (on the engine thread) and can cancel after some pieces.
struct Recorder : StreamSink {
  std::string text;
  int pieces = 0, cancel_after = -1;
  RequestStream done;
  bool on_text(std::string_view p) override {
    text += p;
    ++pieces;
    return cancel_after < 0 || pieces < cancel_after;
  }
  void on_finish(const RequestResult& r) override { done.on_finish(r); }
};

std::vector<Case> mixed_cases(Pipeline<Model>& pipe) {
  const char* questions[] = {"What is the capital of France?", "Write a haiku about the sea.", "List three prime numbers.",
                             "Explain gravity to a child.", "hi", "Translate 'good morning' into Spanish.",
                             "Name a color.", "What is 2 + 2?"};
  std::vector<Case> cases;
  int i = 0;
  for (const char* q : questions) {
    Case c{pipe.encode_chat({{"user", q}}), {}};
    c.cfg.max_new_tokens = 6 + 5 * (i % 4);
    if (i == 2) c.cfg.stop = {"\n", ", "};
    if (i == 5) {  // seeded sampling is deterministic too
      c.cfg.temperature = 0.8f;
      c.cfg.top_p = 0.9f;
      c.cfg.seed = 7;
    }
    if (i == 6) c.cfg.repetition_penalty = 1.3f;
    cases.push_back(std::move(c));
    ++i;
  }
  // A prompt of several prefill chunks (and several steps' budget).
  std::string longer;
  for (int k = 0; k < 60; ++k) longer += "The quick brown fox jumps over the lazy dog. ";
  cases.push_back({pipe.encode_chat({{"user", longer + "How many times did the fox jump?"}}), {}});
  cases.back().cfg.max_new_tokens = 12;
  return cases;
}

/// Stats are updated just after the last sink hears its result; wait for them to settle.
template <class E>
EngineStats settled(const E& engine) {
  for (int i = 0; i < 400 && (engine.stats().running != 0 || engine.stats().queued != 0); ++i) std::this_thread::sleep_for(5ms);
  return engine.stats();
}

}  // namespace

TEST_CASE("concurrent requests arriving at random times get exactly the tokens they get alone") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  const std::vector<Case> cases = mixed_cases(*pipe);
  REQUIRE(cases.back().prompt.size() > 600);
  std::vector<Response> want;
  for (const auto& c : cases) want.push_back(alone(*pipe, c));

  // Batched decoding (groups of up to kExactDecodeBatch) and one sequence at a time; few slots
  // (requests queue) and many.
  for (const EngineOptions& opts : {EngineOptions{3, 512, 64, 0, true}, EngineOptions{16, 512, 64, 0, true},
                                    EngineOptions{16, 512, 64, 0, false}}) {
    const int64_t max_concurrent = opts.max_concurrent;
    const bool batched = opts.batched_decode;
    CAPTURE(max_concurrent);
    CAPTURE(batched);
    Engine<Model> engine(*pipe, opts);
    std::vector<std::shared_ptr<RequestStream>> outs(cases.size());
    std::vector<std::thread> clients;
    std::mt19937 rng(static_cast<unsigned>(max_concurrent));
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(rng));
      outs[i] = std::make_shared<RequestStream>();
      clients.emplace_back([&, i, delay] {
        std::this_thread::sleep_for(delay);
        engine.submit(cases[i].prompt, cases[i].cfg, outs[i]);
      });
    }
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < cases.size(); ++i) {
      CAPTURE(i);
      const RequestResult got = outs[i]->wait_result();
      CHECK(got.error.empty());
      CHECK(got.tokens == want[i].tokens);
      CHECK(got.text == want[i].text);
      CHECK(got.finish_reason == want[i].finish_reason);
      CHECK(got.prompt_tokens == static_cast<int64_t>(cases[i].prompt.size()));
    }
    const EngineStats s = settled(engine);
    CHECK(s.finished == cases.size());
    CHECK(s.running == 0);
  }
}

TEST_CASE("at most max_concurrent sequences run; the others wait and then run") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Engine<Model> engine(*pipe, EngineOptions{2, 512, 64, 0});
  std::atomic<int64_t> max_running{0};
  std::vector<std::shared_ptr<Recorder>> sinks;
  GenerationConfig cfg;
  cfg.max_new_tokens = 5;
  cfg.ignore_eos = true;
  for (int i = 0; i < 6; ++i) {
    auto r = std::make_shared<Recorder>();
    sinks.push_back(r);
    engine.submit(pipe->encode_chat({{"user", "Count to ten."}}), cfg, r);
  }
  std::thread watch([&] {
    for (int i = 0; i < 200 && engine.stats().finished < 6; ++i) {
      max_running = std::max(max_running.load(), engine.stats().running);
      std::this_thread::sleep_for(5ms);
    }
  });
  for (auto& s : sinks) {
    const RequestResult r = s->done.wait_result();
    CHECK(r.tokens.size() == 5);
    CHECK(r.finish_reason == FinishReason::Length);
  }
  watch.join();
  CHECK(max_running.load() <= 2);
  CHECK(max_running.load() >= 1);
  CHECK(settled(engine).running == 0);
}

TEST_CASE("cancel() ends a running or queued request before its next step") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Engine<Model> engine(*pipe, EngineOptions{1, 512, 64, 0});
  GenerationConfig endless;
  endless.max_new_tokens = 100000;
  endless.ignore_eos = true;
  auto running = std::make_shared<RequestStream>();
  auto queued = std::make_shared<RequestStream>();
  const RequestId a = engine.submit(pipe->encode_chat({{"user", "Tell me a long story."}}), endless, running);
  const RequestId b = engine.submit(pipe->encode_chat({{"user", "And another."}}), endless, queued);
  std::string text;
  RequestResult r;
  while (text.empty()) running->wait(100ms, text, r);  // it is decoding
  engine.cancel(b);
  const RequestResult rb = queued->wait_result();
  CHECK(rb.finish_reason == FinishReason::Cancelled);
  CHECK(rb.tokens.empty());
  engine.cancel(a);
  const RequestResult ra = running->wait_result();
  CHECK(ra.finish_reason == FinishReason::Cancelled);
  CHECK(ra.tokens.size() < 1000);
  engine.cancel(a);  // already gone: ignored
  engine.cancel(12345);
  CHECK(settled(engine).running == 0);

  // A sink that returns false cancels its request too.
  auto quitter = std::make_shared<Recorder>();
  quitter->cancel_after = 3;
  engine.submit(pipe->encode_chat({{"user", "Tell me a long story."}}), endless, quitter);
  const RequestResult rq = quitter->done.wait_result();
  CHECK(rq.finish_reason == FinishReason::Cancelled);
  CHECK(quitter->pieces == 3);
}

TEST_CASE("requests that can never run are refused at submit() with a one-line error") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Engine<Model> engine(*pipe, EngineOptions{1, 512, 1, 64});
  auto sink = std::make_shared<RequestStream>();
  GenerationConfig cfg;
  CHECK_THROWS_WITH_AS(engine.submit({}, cfg, sink), "the prompt is empty", Error);
  CHECK_THROWS_WITH_AS(engine.submit(std::vector<int32_t>(64, 1), cfg, sink),
                       "prompt of 64 tokens does not fit the context of 64 tokens (shorten it or raise --ctx-size)", Error);
  CHECK_THROWS_WITH_AS(engine.submit({1, -3}, cfg, sink), doctest::Contains("token id -3 is outside the vocabulary"), Error);
  GenerationConfig bad;
  bad.top_p = 0;
  CHECK_THROWS_WITH_AS(engine.submit({1, 2}, bad, sink), doctest::Contains("top_p"), Error);
  CHECK_THROWS_AS(engine.submit({1, 2}, cfg, nullptr), Error);

  // max_queued 1: of three requests sent at once, at least one finds the queue full.
  GenerationConfig longer;
  longer.max_new_tokens = 20;
  int busy = 0;
  std::vector<std::shared_ptr<RequestStream>> outs;
  for (int i = 0; i < 3; ++i) {
    outs.push_back(std::make_shared<RequestStream>());
    try {
      engine.submit({1, 2, 3}, longer, outs.back());
    } catch (const EngineBusy& e) {
      ++busy;
      CHECK(std::string(e.what()).find("busy") != std::string::npos);
      outs.pop_back();
    }
  }
  CHECK(busy >= 1);
  for (auto& o : outs) CHECK(o->wait_result().error.empty());
}

TEST_CASE("max_new_tokens 0 finishes at once; a small prefill budget still completes every prompt") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Engine<Model> engine(*pipe, EngineOptions{4, 16, 64, 0});
  GenerationConfig zero;
  zero.max_new_tokens = 0;
  auto z = std::make_shared<RequestStream>();
  engine.submit(pipe->encode_chat({{"user", "hi"}}), zero, z);
  const RequestResult rz = z->wait_result();
  CHECK(rz.tokens.empty());
  CHECK(rz.finish_reason == FinishReason::Length);

  GenerationConfig cfg;
  cfg.max_new_tokens = 4;
  cfg.ignore_eos = true;
  std::vector<std::shared_ptr<RequestStream>> outs;
  for (const char* q : {"What is the capital of France?", "Explain photosynthesis in one paragraph, please.", "hi"}) {
    outs.push_back(std::make_shared<RequestStream>());
    engine.submit(pipe->encode_chat({{"user", q}}), cfg, outs.back());
  }
  for (auto& o : outs) CHECK(o->wait_result().tokens.size() == 4);
}

TEST_CASE("shutdown with requests running and queued tells each of them and does not hang") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  std::vector<std::shared_ptr<RequestStream>> outs;
  {
    Engine<Model> engine(*pipe, EngineOptions{2, 512, 64, 0});
    GenerationConfig endless;
    endless.max_new_tokens = 100000;
    endless.ignore_eos = true;
    for (int i = 0; i < 5; ++i) {
      outs.push_back(std::make_shared<RequestStream>());
      engine.submit(pipe->encode_chat({{"user", "Go on forever."}}), endless, outs.back());
    }
    std::this_thread::sleep_for(200ms);
  }  // ~Engine
  for (auto& o : outs) {
    const RequestResult r = o->wait_result();
    CHECK(r.finish_reason == FinishReason::Cancelled);
    CHECK(r.error == "the server is shutting down");
  }
}

namespace {
/// A cache pool with no room at all (a paged pool can run out): requests must fail, not hang.
struct NoRoomPool {
  using Cache = HostKvCache;
  NoRoomPool(const Model&, int64_t capacity, const EngineOptions&) : capacity_(capacity) {}
  int64_t capacity() const { return capacity_; }
  std::unique_ptr<Cache> acquire(std::span<const int32_t>, int64_t) { return nullptr; }
  bool reserve(Cache&, int64_t) { return false; }
  void commit(Cache&, std::span<const int32_t>) {}
  void release(std::unique_ptr<Cache>, std::span<const int32_t>) {}
  CachePoolStats stats() const { return {}; }
  int64_t capacity_;
};
}  // namespace

TEST_CASE("a request the cache pool can never hold fails with an error instead of waiting forever") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Engine<Model, NoRoomPool> engine(*pipe, EngineOptions{2, 512, 64, 0});
  auto out = std::make_shared<RequestStream>();
  engine.submit(pipe->encode_chat({{"user", "hi"}}), GenerationConfig{}, out);
  const RequestResult r = out->wait_result();
  CHECK(r.finish_reason == FinishReason::Cancelled);
  CHECK(r.error == "no room for this request's KV cache");
  CHECK(settled(engine).queued == 0);
}
