// Load: many streaming clients at once on loopback (64 by default, 48 in ctest; TURBINE_LOAD_CLIENTS=256
// for the figure). Each asks for 16 tokens; every stream must end with [DONE], with no errors.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <latch>

#include "server_fixture.hpp"

using namespace turbine;
using namespace turbine::test;
using json = nlohmann::json;

namespace {

struct Outcome {
  int status = 0;
  bool done = false;
  std::string finish_reason, error;
  int64_t completion_tokens = 0;
  double seconds = 0;
};

Outcome one_client(const LocalServer& server, int i, std::latch& go) {
  Outcome o;
  auto c = server.client();
  const json body = {{"messages", {{{"role", "user"}, {"content", "Request " + std::to_string(i) + ": name a fruit and a color."}}}},
                     {"max_tokens", 16},
                     {"temperature", 0.7},
                     {"seed", i},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  const std::string text = body.dump();
  go.arrive_and_wait();
  const auto t0 = std::chrono::steady_clock::now();
  auto res = c.Post("/v1/chat/completions", text, "application/json");
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!res) {
    o.error = "no response: " + httplib::to_string(res.error());
    return o;
  }
  o.status = res->status;
  if (res->status != 200) {
    o.error = res->body;
    return o;
  }
  for (const auto& d : sse_data(res->body)) {
    if (d == "[DONE]") {
      o.done = true;
      continue;
    }
    const json j = json::parse(d, nullptr, false);
    if (j.is_discarded() || j.contains("error")) {
      o.error = d;
      continue;
    }
    if (!j["usage"].is_null()) o.completion_tokens = j["usage"]["completion_tokens"];
    if (!j["choices"].empty() && !j["choices"][0]["finish_reason"].is_null()) o.finish_reason = j["choices"][0]["finish_reason"];
  }
  return o;
}

/// Anonymous resident memory of this process in bytes (RssAnon of /proc/self/status: the heap,
/// stacks and the KV arena, not the mapped model file). The test's own client threads leave free
/// blocks in their allocator arenas, which the server cannot give back, so they are released first
/// (the engine releases its own when it goes idle).
int64_t resident_bytes() {
  release_free_heap();
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::atoll(line.c_str() + 8) * 1024;
  return 0;
}

/// `clients` streaming clients at once; returns their outcomes and the wall time.
std::vector<Outcome> run_clients(const LocalServer& server, int clients, double& seconds) {
  std::vector<Outcome> out(static_cast<size_t>(clients));
  std::latch go(clients + 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) threads.emplace_back([&, i] { out[static_cast<size_t>(i)] = one_client(server, i, go); });
  go.arrive_and_wait();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& t : threads) t.join();
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

TEST_CASE("concurrent streaming clients all get complete streams") {
  const std::string path = default_model_path();
  if (path.empty()) return skip("the default model is missing (tools/fetch_model.sh)");
  const char* env = std::getenv("TURBINE_LOAD_CLIENTS");
  const int clients = env ? std::max(1, std::atoi(env)) : 64;
  // A first wave of the same size brings every pool to its peak (the HTTP server keeps the threads
  // it started, each with its touched stack pages: about 10 MiB for 256); the second wave must then
  // leave memory where the first did. The sanitizer job runs a smaller first wave.
  const char* warm_env = std::getenv("TURBINE_LOAD_WARMUP");
  const int warmup = warm_env ? std::max(1, std::atoi(warm_env)) : clients;
  Pipeline<ServeModel> pipe(path, PipelineOptions{"", 2048});
  LocalServer server(pipe, serve::ServerOptions{}, EngineOptions{});  // the CLI's defaults: 16 at once
  // A first, smaller wave warms the allocator, the thread pools and the page cache; memory is
  // measured from there.
  double seconds = 0;
  const int64_t start = resident_bytes();
  for (const Outcome& o : run_clients(server, warmup, seconds)) CHECK(o.done);
  const int64_t before = resident_bytes();
  const std::vector<Outcome> out = run_clients(server, clients, seconds);

  int errors = 0, incomplete = 0;
  int64_t tokens = 0;
  double slowest = 0;
  for (int i = 0; i < clients; ++i) {
    const Outcome& o = out[static_cast<size_t>(i)];
    CAPTURE(i);
    CAPTURE(o.error);
    CHECK(o.status == 200);
    CHECK(o.done);
    CHECK(o.error.empty());
    CHECK((o.finish_reason == "length" || o.finish_reason == "stop"));
    CHECK(o.completion_tokens > 0);
    CHECK(o.completion_tokens <= 16);
    errors += !o.error.empty() || o.status != 200;
    incomplete += !o.done;
    tokens += o.completion_tokens;
    slowest = std::max(slowest, o.seconds);
  }
  MESSAGE(clients, " streaming clients: ", errors, " errors, ", incomplete, " incomplete streams, ", tokens, " tokens in ", seconds,
          " s (", tokens / seconds, " tokens/s; slowest client ", slowest, " s)");
  CHECK(server.engine().stats().finished == static_cast<uint64_t>(clients + warmup));
  // Memory back to where it was: every KV block returned and its pages given back to the system,
  // nothing kept per request. Anonymous memory only (the mapped model file is not ours to give
  // back); the first wave grows the allocator's caches and the thread stacks by about 13 MiB, and
  // the KV pages of 16 running sequences would add about 40 more if they were kept.
  // The pool's figures are taken after each step, just after the last sinks heard their ends.
  EngineStats st = server.engine().stats();
  for (int i = 0; i < 500 && st.cache.blocks_used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    st = server.engine().stats();
  }
  CHECK(st.cache.blocks_used == 0);
  const int64_t after = resident_bytes();
  MESSAGE("anonymous resident memory: ", start >> 20, " MiB at the start, ", before >> 20, " MiB after a first wave of ", warmup, ", ",
          after >> 20, " MiB after the wave of ", clients, " (KV blocks: ", st.cache.blocks, " reserved, ", st.cache.blocks_used,
          " in use)");
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("memory levels not checked under AddressSanitizer (its shadow memory and quarantine); it checks for leaks itself");
#else
  CHECK(after <= before + (8ll << 20));
  CHECK(after <= start + (32ll << 20));
#endif
}
