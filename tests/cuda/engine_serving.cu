// The serving engine on the GPU: Engine<CudaTransformer> over paged KV caches (one shared block
// arena on the device, block tables read by both attention kernels). 32 greedy requests at random
// times, alone and batched (decode steps of up to 32 sequences), with prefix caching, and with
// preemption forced by a tiny cache: each request gets the tokens it gets alone, or, where the
// batched run's rounding (other GEMM shapes, recomputed caches) changes a token, the change is at a
// near tie: teacher-forced alone on the batched tokens, the token it took is within kTieTolerance
// of the best logit. Every block comes back; the prefix cache is reused; preemption happens.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include <turbine/engine/scheduler.hpp>
#include <turbine/turbine.cuh>

#include "serving_cases.hpp"
#include "default_pipeline.hpp"
#include "test_support.hpp"

using namespace turbine;
using Model = Llama<f16, quant::None, kv::Same, Cuda>;
using namespace std::chrono_literals;

namespace {

constexpr float kTieTolerance = 0.25f;  // logits of this model span about 30; f16 GEMMs differ by ~0.05

Pipeline<Model>* pipeline() { return test::default_pipeline<Model>(); }

using Case = test::ServingCase;
using test::alone;
using test::settled;

/// Greedy requests that share a long system prompt (two full blocks of 64 and more), with
/// questions of different lengths; 8 to 40 new tokens.
std::vector<Case> cases(Pipeline<Model>& pipe, int n, bool long_prompt) {
  std::string system = long_prompt ? "You are a patient assistant for a public library. You answer questions about books, opening hours, "
                                     "membership, events for children, and the catalogue. Be brief, friendly and precise. If you do "
                                     "not know something, say so and suggest asking a librarian at the front desk. Never invent titles."
                                   : "Be brief.";
  const char* topics[] = {"a novel about the sea", "the opening hours on Sunday", "how to renew a book", "a chess club",
                          "poetry for children", "the reading room", "lost library cards", "a history of Rome"};
  std::vector<Case> out;
  std::mt19937 rng(4321);
  for (int i = 0; i < n; ++i) {
    std::string q = std::string("Question ") + std::to_string(i) + ": tell me about " + topics[i % 8] + ".";
    for (int k = 0; k < i % 4; ++k) q += " Please give details.";
    Case c{pipe.encode_chat({{"system", system}, {"user", q}}), {}};
    c.cfg.max_new_tokens = std::uniform_int_distribution<int>(8, 40)(rng);
    c.cfg.ignore_eos = i % 3 == 0;
    out.push_back(std::move(c));
  }
  return out;
}

int divergence(Pipeline<Model>& pipe, const Case& c, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t d = 0;
  while (d < got.size() && d < want.size() && got[d] == want[d]) ++d;
  if (d == got.size() && d == want.size()) return 0;
  REQUIRE(d < got.size());  // a run that stops early differs in a token (eos) too
  std::vector<int32_t> ids = c.prompt;
  ids.insert(ids.end(), got.begin(), got.begin() + static_cast<std::ptrdiff_t>(d));
  auto cache = pipe.model().new_cache(pipe.context_size());
  std::vector<float> logits;
  pipe.model().forward(cache, ids, logits);
  const float best = *std::max_element(logits.begin(), logits.end());
  MESSAGE("token ", d, " differs: batched ", got[d], " (logit ", logits[got[d]], "), best alone ", best);
  CHECK(logits[static_cast<size_t>(got[d])] >= best - kTieTolerance);
  return 1;
}

}  // namespace

TEST_CASE("GPU serving: 32 requests at random times, batched, prefix-cached and preempted, get their tokens alone") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  const std::vector<Case> shared = cases(*pipe, 32, true), short_ones = cases(*pipe, 32, false);
  size_t longest_short = 0;
  for (const auto& c : short_ones) longest_short = std::max(longest_short, c.prompt.size());
  std::vector<Response> want_shared, want_short;
  for (const auto& c : shared) want_shared.push_back(alone(*pipe, c));
  for (const auto& c : short_ones) want_short.push_back(alone(*pipe, c));

  struct Setup {
    const char* name;
    EngineOptions opts;
    const std::vector<Case>* cases;
    const std::vector<Response>* want;
  };
  EngineOptions plain{32, 512, 64, 0};
  EngineOptions prefix{32, 512, 64, 0};
  prefix.prefix_caching = true;
  EngineOptions tiny{16, 512, 64, 0};  // blocks for two prompts and a bit: preemption
  tiny.cache_block_size = 16;
  tiny.cache_blocks = 2 * static_cast<int64_t>((longest_short + 1 + 15) / 16) + 1;
  const Setup setups[] = {{"batched", plain, &shared, &want_shared},
                          {"prefix caching", prefix, &shared, &want_shared},
                          {"tiny cache", tiny, &short_ones, &want_short}};
  for (const Setup& setup : setups) {
    CAPTURE(setup.name);
    const auto t0 = std::chrono::steady_clock::now();
    Engine<Model> engine(*pipe, setup.opts);
    const std::vector<RequestResult> got = test::run_at_random_times(engine, *setup.cases, 7, 200);
    int diverged = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].error.empty());
      diverged += divergence(*pipe, (*setup.cases)[i], got[i].tokens, (*setup.want)[i].tokens);
    }
    CHECK(diverged <= static_cast<int>(got.size()) / 4);  // rounding moves a few near ties, not most requests
    const EngineStats s = settled(engine);
    CHECK(s.finished == got.size());
    CHECK(s.cache.blocks_used == 0);  // every block came back
    if (setup.opts.prefix_caching) CHECK(s.reused_tokens >= 64 * 31);
    if (setup.cases == &short_ones) CHECK(s.preemptions > 0);
    MESSAGE(std::string(setup.name), ": ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s, ", s.steps,
            " steps, ", s.preemptions, " preemptions, ", s.reused_tokens, " positions reused, ", diverged,
            " requests differ at a near tie");
  }
}

TEST_CASE("GPU serving: a block table over a shared arena gives the logits of a cache of its own") {
  if (turbine::cuda::device_count() == 0) return test::skip("no CUDA device");
  Pipeline<Model>* pipe = pipeline();
  if (!pipe) return test::skip("the default model is missing (tools/fetch_model.sh)");
  Model& model = pipe->model();
  const std::vector<int32_t> ids = pipe->encode_chat({{"user", "Name three rivers in Europe and say which is the longest."}});
  // A shared arena whose blocks are handed out out of order: another cache takes every other one.
  auto arena = std::make_shared<DeviceKvArena<__half>>(model.config(), 16, 64);
  DeviceKvCache<__half> other(arena, 512), paged(arena, 512);
  std::vector<float> la, lb;
  for (int i = 0; i < 6; ++i) {
    other.reserve_more(16);
    other.advance(16);
    paged.reserve_more(16);
    paged.advance(16);
  }
  paged.clear();
  other.clear();
  auto own = model.new_cache(512);
  model.forward(own, ids, la);
  model.forward(paged, ids, lb);
  REQUIRE(la.size() == lb.size());
  CHECK(la == lb);  // the same arithmetic through other addresses: bit for bit
  for (int32_t next : {17, 280, 3}) {  // decode steps, crossing into new blocks
    const int32_t one[] = {next};
    model.forward(own, one, la);
    model.forward(paged, one, lb);
    CHECK(la == lb);
  }
}
