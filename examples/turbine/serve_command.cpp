// turbine serve: its flags, and the HTTP server over an engine's Backend (serve_model.hpp builds
// the engine for each model type).
#include "serve_command.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include <turbine/serve/http_server.hpp>

namespace turbine::cli {

void add_serve_options(CLI::App& app, ServeOptions& s) {
  app.add_option("--host", s.host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  app.add_option("--port", s.port, "port to listen on (0: any free port, printed at startup)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--api-keys", s.api_keys, "accepted API keys, comma-separated (clients send 'Authorization: Bearer KEY'); default: none needed")
      ->delimiter(',');
  app.add_option("--max-concurrent", s.max_concurrent, "requests decoded at once; more wait in a queue")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-prefill-tokens", s.max_prefill_tokens, "prompt tokens read per engine step, across requests")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queued", s.max_queued, "waiting requests beyond this get 503")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--default-max-tokens", s.default_max_tokens, "max_tokens for requests that set none (0: the rest of the context)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--http-threads", s.http_threads, "connections served at once (0: 512)")->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet", s.quiet, "do not log each request on stderr");
  add_cache_options(app, s.cache);
}

sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

void block_stop_signals() {
  // SIGINT/SIGTERM are taken by one thread that stops the server; every thread started from here
  // on (the engine's, the server's) inherits the mask, so no other thread is interrupted.
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void serve_backend(serve::Backend backend, const ServeOptions& s, const std::string& path, const std::string& where) {
  serve::ServerOptions so;
  so.host = s.host;
  so.port = s.port;
  so.api_keys = s.api_keys;
  so.http_threads = s.http_threads;
  so.default_max_tokens = s.default_max_tokens;
  so.model_id = serve::model_id_from_path(path);
  so.log_requests = !s.quiet;
  for (const auto& k : so.api_keys) check(!k.empty(), "--api-keys: empty key");
  const int64_t context = backend.context_size;
  serve::Server server(std::move(backend), so);
  const int port = server.bind();

  const sigset_t signals = stop_signals();
  std::atomic<bool> signalled{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    std::fprintf(stderr, "turbine serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server.stop();
  });
  const std::string host = s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host;
  std::printf("turbine serve: listening on http://%s:%d/v1 (model '%s', %s, context %lld tokens, "
              "%lld concurrent, API key %s)\n",
              host.c_str(), port, so.model_id.c_str(), where.c_str(), static_cast<long long>(context),
              static_cast<long long>(s.max_concurrent), so.api_keys.empty() ? "not required" : "required");
  std::fflush(stdout);
  server.run();
  if (!signalled) pthread_kill(stopper.native_handle(), SIGTERM);  // wake it so it can be joined
  stopper.join();
}

}  // namespace turbine::cli
