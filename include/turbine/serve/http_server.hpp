#pragma once
// An OpenAI-compatible HTTP server (cpp-httplib) in front of the continuous-batching engine:
//   GET  /health                 liveness and load, no API key needed
//   GET  /v1/models[/ID]         the one model this server runs
//   POST /v1/completions         text continuation
//   POST /v1/chat/completions    chat, through the model's chat template
// "stream": true answers with server-sent events (`data: {...}` chunks, then `data: [DONE]`). A
// streaming client that goes away cancels its request. Every error is OpenAI's JSON error body
// with the right status.
//
//   serve::Server server(serve::make_backend(pipe, engine), {.port = 8000});
//   server.bind();
//   server.run();   // until server.stop() from another thread
//
// Link cpp-httplib (the target turbine_httplib in cmake/httplib.cmake does that). Include this header
// before <httplib.h>: httplib pulls in <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "openai_protocol.hpp"
// After the engine (Eigen), see above.
#include <httplib.h>
#include <sys/socket.h>

namespace turbine::serve {

/// How the server listens and what it accepts.
struct ServerOptions {
  std::string host = "127.0.0.1";            ///< address to listen on
  int port = 8000;                           ///< 0: any free port (see Server::port())
  std::vector<std::string> api_keys;         ///< accepted bearer keys; empty: no authentication
  size_t max_body_bytes = 10 * 1024 * 1024;  ///< larger requests get 413
  int http_threads = 0;                      ///< connections served at once; 0: 512
  int64_t default_max_tokens = 0;            ///< when a request sets none; 0: the rest of the context
  std::string model_id = "default";          ///< what /v1/models lists ("default" is always accepted)
  bool log_requests = false;                 ///< one line per request on stderr
};


/// The HTTP server (see the top of this file).
class Server {
 public:
  /// Sets up the routes; bind() and run() start serving.
  Server(Backend backend, ServerOptions opts) : b_(std::move(backend)), o_(std::move(opts)) { routes(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the address; returns the port (the chosen one for port 0). Throws Error.
  int bind() {
    if (o_.port == 0) {
      port_ = svr_.bind_to_any_port(o_.host);
      check(port_ > 0, "cannot listen on ", o_.host, " (not a local address?)");
    } else {
      check(svr_.bind_to_port(o_.host, o_.port), "cannot listen on ", o_.host, ":", o_.port,
            " (the port is in use, or the host is not a local address)");
      port_ = o_.port;
    }
    // cpp-httplib listens with a backlog of 5; a burst of clients needs more (Linux allows raising it).
    if (listen_fd_ >= 0) ::listen(listen_fd_, 1024);
    return port_;
  }
  /// Serves until stop(). Call bind() first.
  void run() {
    check(port_ > 0, "Server::run() before bind()");
    svr_.listen_after_bind();
  }
  /// From any thread: requests in flight end (streams with an error event and [DONE], others with
  /// 503) within a few seconds; then the server stops listening and run() returns.
  void stop() {
    stopping_.store(true);
    for (int i = 0; i < 300 && in_flight_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    svr_.stop();
  }
  int port() const { return port_; }                      ///< the bound port
  bool is_running() const { return svr_.is_running(); }  ///< between run()'s start and stop()

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;

  void routes() {
    svr_.set_payload_max_length(o_.max_body_bytes);
    const int threads = o_.http_threads > 0 ? o_.http_threads : 512;
    svr_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    svr_.set_socket_options([this](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));  // not SO_REUSEPORT: a busy port is an error
      listen_fd_ = static_cast<int>(sock);
    });
    svr_.set_error_handler(
        httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) { return fill_error(req, res); }));
    svr_.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
      send(res, ApiError(500, "internal server error", "", "", "server_error"));
    });
    if (o_.log_requests)
      svr_.set_logger([](const Request& req, const Response& res) {
        std::fprintf(stderr, "%s \"%s %s\" %d\n", req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(), res.status);
      });
    svr_.Get("/health", [this](const Request&, Response& res) {
      const EngineStats s = b_.stats();
      res.set_content(json{{"status", "ok"}, {"model", o_.model_id}, {"running", s.running}, {"queued", s.queued},
                           {"finished", s.finished}, {"generated_tokens", s.generated_tokens}, {"preemptions", s.preemptions},
                           {"prefix_reused_tokens", s.reused_tokens},
                           {"kv_blocks", {{"total", s.cache.blocks}, {"used", s.cache.blocks_used}, {"cached", s.cache.blocks_cached}}}}
                          .dump(),
                      "application/json");
    });
    svr_.Get("/v1/models", [this](const Request& req, Response& res) {
      guarded(req, res, [&] {
        res.set_content(json{{"object", "list"}, {"data", json::array({model_object(o_.model_id, started_)})}}.dump(), "application/json");
      });
    });
    svr_.Get(R"(/v1/models/(.+))", [this](const Request& req, Response& res) {
      guarded(req, res, [&] {
        check_model(req.matches[1].str());
        res.set_content(model_object(o_.model_id, started_).dump(), "application/json");
      });
    });
    svr_.Post("/v1/chat/completions", [this](const Request& req, Response& res) {
      guarded(req, res, [&] {
        ChatRequest r = parse_chat_request(req.body);
        check_model(r.sampling.model);
        size_t bytes = 0;
        for (const auto& m : r.messages) bytes += m.content.size();
        check_bytes(bytes, "messages");
        std::vector<int32_t> ids;
        try {
          ids = b_.encode_chat(r.messages);
        } catch (const Error& e) {  // e.g. a template that needs alternating roles
          throw ApiError(400, e.what(), "messages", "invalid_value");
        }
        generate(std::move(ids), r.sampling, "messages", true, res);
      });
    });
    svr_.Post("/v1/completions", [this](const Request& req, Response& res) {
      guarded(req, res, [&] {
        CompletionRequest r = parse_completion_request(req.body);
        check_model(r.sampling.model);
        check_bytes(r.prompt.size(), "prompt");
        generate(b_.encode_text(r.prompt), r.sampling, "prompt", false, res);
      });
    });
  }

  static void send(Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(error_body(e).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  // Runs a handler for an authorized client, turning every failure into an OpenAI error. (Keys are
  // checked here, after cpp-httplib has read the body, rather than before routing: a request
  // refused with its body unread would leave that body to be parsed as the connection's next request.)
  template <class F>
  void guarded(const Request& req, Response& res, F&& f) {
    try {
      authorize(req);
      f();
    } catch (const ApiError& e) {
      send(res, e);
    } catch (const EngineBusy& e) {
      send(res, ApiError(503, e.what(), "", "server_busy", "server_error"));
    } catch (const Error& e) {  // the engine refused the request
      send(res, ApiError(400, e.what(), "", "invalid_value"));
    } catch (const std::exception& e) {
      send(res, ApiError(500, std::string("internal error: ") + e.what(), "", "", "server_error"));
    }
  }

  void authorize(const Request& req) const {
    if (o_.api_keys.empty()) return;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    bool ok = false;
    if (auth.compare(0, prefix.size(), prefix) == 0) {
      const std::string key = auth.substr(prefix.size());
      for (const auto& k : o_.api_keys) ok |= same_key(key, k);
    }
    if (!ok)
      throw ApiError(401, auth.empty() ? "missing API key: send the header 'Authorization: Bearer YOUR_KEY'" : "incorrect API key provided",
                     "", "invalid_api_key");
  }
  static bool same_key(const std::string& a, const std::string& b) {  // time independent of where they differ
    unsigned diff = a.size() != b.size();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
  }

  // Errors that cpp-httplib makes itself (no route, body too large, malformed HTTP) get a JSON body too.
  httplib::Server::HandlerResponse fill_error(const Request& req, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string where = req.method + " " + req.path;
    const bool post_route = req.path == "/v1/chat/completions" || req.path == "/v1/completions";
    const bool get_route = req.path == "/health" || req.path == "/v1/models" || req.path.rfind("/v1/models/", 0) == 0;
    if (res.status == 404 && (post_route || get_route))
      send(res, ApiError(405, "method " + req.method + " is not allowed on " + req.path + " (use " + (post_route ? "POST" : "GET") + ")",
                         "", "method_not_allowed"));
    else if (res.status == 404)
      send(res, ApiError(404, "no such endpoint: " + where, "", "not_found"));
    else if (res.status == 413)
      send(res, ApiError(413, "request body exceeds the limit of " + std::to_string(o_.max_body_bytes) + " bytes", "",
                         "request_too_large"));
    else
      send(res, ApiError(res.status, "bad HTTP request (" + std::to_string(res.status) + ")", "", ""));
    return httplib::Server::HandlerResponse::Handled;
  }

  void check_model(const std::string& m) const {
    if (m.empty() || m == o_.model_id || m == "default") return;
    throw ApiError(404, "the model '" + m + "' does not exist (this server runs '" + o_.model_id + "')", "model",
                   "model_not_found");
  }
  // A text that cannot fit even if every token were the longest one is refused before tokenizing it.
  void check_bytes(size_t bytes, const char* param) const {
    if (bytes / b_.max_token_bytes >= static_cast<size_t>(b_.context_size))
      throw ApiError(400, "the " + std::string(param) + " (" + std::to_string(bytes) + " bytes) cannot fit this model's context of " +
                              std::to_string(b_.context_size) + " tokens",
                     param, "context_length_exceeded");
  }

  // Checks the lengths, submits, and answers (whole or streamed).
  void generate(std::vector<int32_t> ids, const SamplingFields& s, const char* prompt_param, bool chat, Response& res) {
    const int64_t ctx = b_.context_size, n = static_cast<int64_t>(ids.size());
    const std::string what = chat ? "messages" : "prompt";
    if (n == 0) throw ApiError(400, "the " + what + " is empty", prompt_param, "invalid_value");
    if (n >= ctx)
      throw ApiError(400, "this model's context is " + std::to_string(ctx) + " tokens, and the " + what + " alone has " +
                              std::to_string(n) + " (one token must be left to generate); shorten the " + what,
                     prompt_param, "context_length_exceeded");
    int64_t max_tokens = ctx - n;
    if (s.max_tokens) {
      max_tokens = *s.max_tokens;
      if (n + max_tokens > ctx)
        throw ApiError(400, "this model's context is " + std::to_string(ctx) + " tokens, but " + std::to_string(n + max_tokens) +
                                " were requested (" + std::to_string(n) + " in the " + what + ", " + std::to_string(max_tokens) +
                                " for the completion); lower max_tokens or shorten the " + what,
                       "max_tokens", "context_length_exceeded");
    } else if (o_.default_max_tokens > 0) {
      max_tokens = std::min(max_tokens, o_.default_max_tokens);
    }
    const GenerationConfig cfg = generation_config(s, max_tokens, next_seed());
    auto stream = std::make_shared<RequestStream>();
    const RequestId id = b_.submit(std::move(ids), cfg, stream);
    InFlight counted(in_flight_);
    ResponseHead head{(chat ? "chatcmpl-" : "cmpl-") + random_hex(), o_.model_id, static_cast<int64_t>(std::time(nullptr)), chat};
    if (s.stream) return stream_response(res, std::make_shared<StreamJob>(b_.cancel, id, stream, head, s.include_usage, &stopping_, in_flight_));
    RequestResult r;
    std::string ignored;
    while (!stream->wait(std::chrono::milliseconds(200), ignored, r)) {
      if (!stopping_.load()) continue;
      b_.cancel(id);
      r = stream->wait_result();
      break;
    }
    if (!r.error.empty() || r.finish_reason == FinishReason::Cancelled) throw ApiError(503, ended_early(r), "", "", "server_error");
    const Usage u{r.prompt_tokens, static_cast<int64_t>(r.tokens.size())};
    res.set_content(full_response(head, r.text, finish_reason_name(r.finish_reason), u).dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
  }

  // Counts a request in flight for as long as it lives.
  struct InFlight {
    explicit InFlight(std::atomic<int>& counter) : n(counter) { n.fetch_add(1); }
    ~InFlight() { n.fetch_sub(1); }
    std::atomic<int>& n;
  };

  // Why a request ended without finishing.
  static std::string ended_early(const RequestResult& r) {
    return r.error.empty() ? "the request was cancelled (the server is shutting down)" : r.error;
  }

  // One streamed response: the chunks of one request, pulled by cpp-httplib's connection thread.
  struct StreamJob {
    StreamJob(std::function<void(RequestId)> cancel_fn, RequestId request, std::shared_ptr<RequestStream> source,
              ResponseHead response_head, bool with_usage, const std::atomic<bool>* server_stopping, std::atomic<int>& in_flight)
        : cancel(std::move(cancel_fn)), id(request), stream(std::move(source)), head(std::move(response_head)), usage(with_usage),
          stopping(server_stopping), counted(in_flight) {}
    std::function<void(RequestId)> cancel;
    RequestId id;
    std::shared_ptr<RequestStream> stream;
    ResponseHead head;
    bool usage;
    const std::atomic<bool>* stopping;
    InFlight counted;
    bool started = false, finished = false, cancelled = false;
    int idle_ms = 0;

    // Writes what is ready; false when the client is gone (cpp-httplib then ends the response).
    bool pump(httplib::DataSink& sink) {
      auto put = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
      if (!started) {
        started = true;
        return !head.chat || put(sse_event(stream_chunk(head, "", "", usage, true)));
      }
      constexpr int kWaitMs = 100, kHeartbeatMs = 1000;
      std::string text;
      RequestResult r;
      const bool done = stream->wait(std::chrono::milliseconds(kWaitMs), text, r);
      if (!text.empty()) {
        idle_ms = 0;
        if (!put(sse_event(stream_chunk(head, text, "", usage)))) return false;
      }
      if (done) {
        finished = true;
        bool ok = true;
        if (!r.error.empty() || r.finish_reason == FinishReason::Cancelled) {
          ok = put(sse_event(error_body(ApiError(503, ended_early(r), "", "", "server_error"))));
        } else {
          ok = put(sse_event(stream_chunk(head, "", finish_reason_name(r.finish_reason), usage)));
          if (ok && usage) ok = put(sse_event(usage_chunk(head, Usage{r.prompt_tokens, static_cast<int64_t>(r.tokens.size())})));
        }
        if (ok) ok = put("data: [DONE]\n\n");
        if (ok) sink.done();
        return ok;
      }
      // Waiting (queued, or in a long prompt): a comment now and then finds out if the client left.
      if (text.empty() && (idle_ms += kWaitMs) >= kHeartbeatMs) {
        idle_ms = 0;
        if (!put(": keep-alive\n\n")) return false;
      }
      if (stopping->load() && !cancelled) {  // the engine ends the request; the next call writes that
        cancel(id);
        cancelled = true;
      }
      return true;
    }
  };

  static void stream_response(Response& res, std::shared_ptr<StreamJob> job) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [job](size_t, httplib::DataSink& sink) { return job->pump(sink); },
        [job](bool) {
          if (!job->finished) job->cancel(job->id);  // the client left, or the server is stopping
        });
  }

  uint64_t next_seed() {
    uint64_t z = seed_base_ + 0x9E3779B97F4A7C15ull * seq_.fetch_add(1);  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::string random_hex() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (uint64_t v = next_seed(), i = 0; i < 16; ++i, v >>= 4) s += kHex[v & 15];
    return s;
  }

  Backend b_;
  ServerOptions o_;
  httplib::Server svr_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};  // requests submitted and not yet answered
  const int64_t started_ = static_cast<int64_t>(std::time(nullptr));
  const uint64_t seed_base_ = std::random_device{}() * 0x100000001ull ^ static_cast<uint64_t>(std::time(nullptr));
  std::atomic<uint64_t> seq_{0};
};

}  // namespace turbine::serve
