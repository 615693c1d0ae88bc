// turbine serve when cpp-httplib was not found at configure time: the flags parse, the command
// explains how to get the server.
#include "serve_command.hpp"

namespace turbine::cli {

void add_serve_options(CLI::App& app, ServeOptions& s) {
  app.add_option("--host", s.host, "address to listen on");
  app.add_option("--port", s.port, "port to listen on");
  app.add_option("--api-keys", s.api_keys, "accepted API keys, comma-separated")->delimiter(',');
  app.add_option("--max-concurrent", s.max_concurrent, "requests decoded at once");
}

void block_stop_signals() {}

void serve_backend(serve::Backend, const ServeOptions&, const std::string&, const std::string&) {
  turbine::fail("turbine serve: this turbine was built without cpp-httplib "
                "(apt-get install libcpp-httplib-dev pkg-config, then reconfigure)");
}

void add_bench_serve_options(CLI::App& app, BenchServeOptions& b) {
  app.add_option("--url", b.url, "server to measure");
  app.add_option("--concurrency", b.concurrency, "requests in flight at once");
}

void run_bench_serve(CommonOptions&, const BenchServeOptions&) {
  turbine::fail("turbine bench serve: this turbine was built without cpp-httplib "
                "(apt-get install libcpp-httplib-dev pkg-config, then reconfigure)");
}

}  // namespace turbine::cli
