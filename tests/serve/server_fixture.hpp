#pragma once
// An in-process `turbine serve` on an ephemeral loopback port (the default model on the CPU), and
// helpers to talk to it with httplib::Client and read server-sent events.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <turbine/turbine.hpp>
#include <turbine/serve/http_server.hpp>  // brings <httplib.h>, after Eigen

#include "test_support.hpp"

namespace turbine::test {

using ServeModel = Llama<f32, quant::None, kv::Same, Cpu>;

class LocalServer {
 public:
  /// Starts a server; `pipe` must outlive it.
  LocalServer(Pipeline<ServeModel>& pipe, serve::ServerOptions opts, EngineOptions eopts = {})
      : engine_(pipe, eopts) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.model_id = serve::model_id_from_path(pipe.model_files().path);
    server_ = std::make_unique<serve::Server>(serve::make_backend(pipe, engine_), opts);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    for (int i = 0; i < 500 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~LocalServer() {
    server_->stop();
    thread_.join();
    engine_.shutdown();
  }
  int port() const { return port_; }
  Engine<ServeModel>& engine() { return engine_; }

  /// A client with timeouts long enough for a busy CPU.
  httplib::Client client(const std::string& api_key = {}) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(10);
    c.set_read_timeout(300);
    c.set_write_timeout(60);
    if (!api_key.empty()) c.set_bearer_token_auth(api_key);
    return c;
  }

 private:
  Engine<ServeModel> engine_;
  std::unique_ptr<serve::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

/// The `data:` payloads of a server-sent event stream, in order (comments skipped).
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(at, end - at);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    at = end + 2;
  }
  return out;
}

}  // namespace turbine::test
