#pragma once
// Helpers shared by the serving-engine suites (tests/serve/scheduler.cpp on the CPU,
// tests/cuda/engine_serving.cu on the GPU): a request case, what it gets alone, clients that
// submit every case from its own thread at a random time, and waiting for the engine's stats to
// settle. Include after <turbine/turbine.hpp> or <turbine/turbine.cuh> and engine/scheduler.hpp.
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace turbine::test {

/// One request: its prompt tokens and its generation settings.
struct ServingCase {
  std::vector<int32_t> prompt;
  GenerationConfig cfg;
};

/// What one request gets alone: a fresh cache, the whole prompt at once.
template <class M>
Response alone(Pipeline<M>& pipe, const ServingCase& c) {
  auto cache = pipe.model().new_cache(pipe.context_size());
  std::vector<int32_t> cached;
  return generate_sequence(pipe.model(), cache, cached, c.prompt, pipe.tokenizer(), c.cfg, pipe.eos_ids());
}

/// Submits every case from its own thread after a random delay of 0 to max_delay_ms; returns what
/// each got, in the cases' order.
template <class M>
std::vector<RequestResult> run_at_random_times(Engine<M>& engine, const std::vector<ServingCase>& cases, unsigned seed,
                                               int max_delay_ms) {
  std::vector<std::shared_ptr<RequestStream>> outs(cases.size());
  std::vector<std::thread> clients;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, max_delay_ms)(rng));
    outs[i] = std::make_shared<RequestStream>();
    clients.emplace_back([&, i, delay] {
      std::this_thread::sleep_for(delay);
      engine.submit(cases[i].prompt, cases[i].cfg, outs[i]);
    });
  }
  for (auto& t : clients) t.join();
  std::vector<RequestResult> got;
  for (auto& o : outs) got.push_back(o->wait_result());
  return got;
}

/// Stats (and the pool's figures) are updated just after the last sink hears its result; waits up
/// to 2 s for them to settle (nothing running, queued or holding cache blocks).
template <class E>
EngineStats settled(const E& engine) {
  for (int i = 0; i < 400; ++i) {
    const EngineStats s = engine.stats();
    if (s.running == 0 && s.queued == 0 && s.cache.blocks_used == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return engine.stats();
}

}  // namespace turbine::test
