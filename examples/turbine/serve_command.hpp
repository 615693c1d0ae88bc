#pragma once
// turbine serve: flags and entry point (serve_command.cpp), hooked into main.cpp.
#include <string>
#include <vector>

#include <turbine/serve/backend.hpp>

#include "cli_common.hpp"

namespace turbine::cli {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::vector<std::string> api_keys;
  int64_t max_concurrent = 16;
  int64_t max_prefill_tokens = 512;
  int64_t max_queued = 4096;
  int64_t default_max_tokens = 0;
  int http_threads = 0;
  bool quiet = false;
  CacheOptions cache;
};

void add_serve_options(CLI::App& app, ServeOptions& s);
/// Blocks SIGINT and SIGTERM in this thread and the threads it starts (serve_backend waits for them).
void block_stop_signals();
/// Serves `backend` over HTTP until SIGINT or SIGTERM; `path` names the model, `where` the device.
void serve_backend(serve::Backend backend, const ServeOptions& s, const std::string& path, const std::string& where);

/// `turbine bench serve` (cmd_bench_serve.cpp): the throughput workload over HTTP.
struct BenchServeOptions {
  std::string url, api_key;  // no url: a server started in this process
  int64_t concurrency = 16;
  ThroughputOptions workload = [] {
    ThroughputOptions t;
    t.num_prompts = 200;
    return t;
  }();
};
void add_bench_serve_options(CLI::App& app, BenchServeOptions& b);
void run_bench_serve(CommonOptions& o, const BenchServeOptions& b);

}  // namespace turbine::cli
