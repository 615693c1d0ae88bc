// Engine<Model>: continuous batching gives every request exactly what it gets alone, cancels and
// queues as told, refuses what can never run, and shuts down cleanly with work in flight.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <turbine/engine/scheduler.hpp>
#include <turbine/turbine.hpp>

#include "serving_cases.hpp"
#include "default_pipeline.hpp"
#include "test_support.hpp"

using namespace turbine;
using Model = Llama<f32, quant::None, kv::Same, Cpu>;
using namespace std::chrono_literals;

namespace {

Pipeline<Model>* pipeline() { return test::default_pipeline<Model>(); }

using Case = test::ServingCase;
using test::alone;
using test::settled;

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

namespace {
/// `n` requests that share a system prompt and differ in the question; greedy, seeded sampling and
/// a repetition penalty mixed; outputs of 8 to 20 tokens. Long: the system prompt fills two whole
/// KV blocks of 64 and most of a third, so that most outputs cross into a new block.
std::vector<Case> shared_prefix_cases(Pipeline<Model>& pipe, int n, bool long_prompt = true) {
  std::string system = !long_prompt ? "Be brief." :
      "You are a patient assistant for a public library. You answer questions about books, opening hours, "
      "membership, events for children, and the catalogue. Be brief, friendly and precise. If you do not know "
      "something, say so and suggest asking a librarian at the front desk. Never invent titles or authors. "
      "The library opens at nine in the morning and closes at eight in the evening on weekdays, and at five on "
      "Saturdays. Members may borrow up to twelve items for three weeks and renew them twice online.";
  const char* topics[] = {"a novel about the sea", "the opening hours on Sunday", "how to renew a book", "a chess club",
                          "poetry for children", "the reading room", "lost library cards", "a history of Rome"};
  auto question = [&](int i) { return std::string("Question ") + std::to_string(i) + ": tell me about " + topics[i % 8] + "."; };
  // Pad the shared part until every prompt is at least 180 tokens (the third block nearly full).
  while (true) {
    size_t shortest = SIZE_MAX;
    for (int i = 0; i < 8; ++i) shortest = std::min(shortest, pipe.encode_chat({{"system", system}, {"user", question(i)}}).size());
    if (shortest >= 180 || !long_prompt) break;
    system += " Thank you.";
  }
  std::vector<Case> cases;
  std::mt19937 rng(1234);
  for (int i = 0; i < n; ++i) {
    Case c{pipe.encode_chat({{"system", system}, {"user", question(i)}}), {}};
    c.cfg.max_new_tokens = std::uniform_int_distribution<int>(8, 20)(rng);
    c.cfg.ignore_eos = i % 3 == 0;
    if (i % 5 == 1) {
      c.cfg.temperature = 0.9f;
      c.cfg.top_k = 40;
      c.cfg.seed = static_cast<uint64_t>(100 + i);
    }
    if (i % 7 == 2) c.cfg.repetition_penalty = 1.2f;
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

TEST_CASE("16 requests at random times, with prefix caching and with preemption forced by a tiny cache, get exactly their tokens alone") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  // Long prompts that share their first blocks for the prefix cache, short ones for the tiny cache.
  // 16: every kind of request shared_prefix_cases makes, several times each, in half the time of 32
  constexpr int kRequests = 16;
  const std::vector<Case> shared = shared_prefix_cases(*pipe, kRequests),
                          short_ones = shared_prefix_cases(*pipe, kRequests, false);
  size_t longest = 0, longest_short = 0;
  for (const auto& c : shared) longest = std::max(longest, c.prompt.size());
  for (const auto& c : short_ones) longest_short = std::max(longest_short, c.prompt.size());
  REQUIRE(longest < 192);  // the prompts end in the third block of 64
  std::vector<Response> want_shared, want_short;
  for (const auto& c : shared) want_shared.push_back(alone(*pipe, c));
  for (const auto& c : short_ones) want_short.push_back(alone(*pipe, c));

  struct Setup {
    std::string name;
    EngineOptions opts;
    const std::vector<Case>* cases;
    const std::vector<Response>* want;
    bool expect_reuse, expect_preemption;
  };
  EngineOptions prefix{16, 512, 64, 0, true};
  prefix.prefix_caching = true;
  // Blocks of 16 positions for two prompts and one more: a third request waits, and the two that
  // run cannot both grow (preemption).
  EngineOptions tiny{16, 512, 64, 0, true};
  tiny.cache_block_size = 16;
  tiny.cache_blocks = 2 * static_cast<int64_t>((longest_short + 1 + 15) / 16) + 1;
  // 5 blocks of 64: the two shared ones and three more; sequences that cross into a fourth block
  // preempt the newest, whose blocks go back to the prefix cache and are evicted.
  EngineOptions both{16, 512, 64, 0, true};
  both.prefix_caching = true;
  both.cache_blocks = 5;
  for (const Setup& setup : {Setup{"prefix caching", prefix, &shared, &want_shared, true, false},
                             Setup{"tiny cache", tiny, &short_ones, &want_short, false, true},
                             Setup{"prefix caching and a tiny cache", both, &shared, &want_shared, true, true}}) {
    CAPTURE(setup.name);
    const std::vector<Case>& cases = *setup.cases;
    const auto t0 = std::chrono::steady_clock::now();
    Engine<Model> engine(*pipe, setup.opts);
    const std::vector<RequestResult> got = test::run_at_random_times(engine, cases, 99, 300);
    for (size_t i = 0; i < cases.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].error.empty());
      CHECK(got[i].tokens == (*setup.want)[i].tokens);
      CHECK(got[i].text == (*setup.want)[i].text);
      CHECK(got[i].finish_reason == (*setup.want)[i].finish_reason);
    }
    const EngineStats s = settled(engine);
    CHECK(s.finished == cases.size());
    CHECK(s.cache.blocks_used == 0);  // every block came back
    if (setup.expect_reuse) CHECK(s.reused_tokens >= 128 * kRequests / 2);  // half reused both shared blocks
    else CHECK(s.reused_tokens == 0);
    if (setup.expect_preemption) CHECK(s.preemptions > 0);
    if (setup.expect_reuse) CHECK(s.cache.blocks_cached > 0);  // the shared blocks stay for the next request
    MESSAGE(setup.name, ": ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s, ", s.preemptions, " preemptions, ", s.reused_tokens, " prompt positions reused, ",
            s.steps, " steps");
  }
}

TEST_CASE("a prefix-cached request reuses the blocks of an earlier one and computes only the rest") {
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  EngineOptions opts{4, 512, 64, 0, true};
  opts.prefix_caching = true;
  Engine<Model> engine(*pipe, opts);
  const std::vector<Case> cases = shared_prefix_cases(*pipe, 2);
  auto first = std::make_shared<RequestStream>();
  engine.submit(cases[0].prompt, cases[0].cfg, first);
  CHECK(first->wait_result().error.empty());
  const uint64_t before = settled(engine).reused_tokens;
  CHECK(before == 0);
  // The same prompt again: every full block but the one holding its last token is reused.
  auto again = std::make_shared<RequestStream>();
  engine.submit(cases[0].prompt, cases[0].cfg, again);
  const RequestResult r = again->wait_result();
  CHECK(r.tokens == alone(*pipe, cases[0]).tokens);
  const int64_t n = static_cast<int64_t>(cases[0].prompt.size());
  CHECK(settled(engine).reused_tokens == static_cast<uint64_t>((n - 1) / 64 * 64));
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
