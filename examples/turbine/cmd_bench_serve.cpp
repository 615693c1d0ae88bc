// turbine bench serve: the workload of `turbine bench throughput` (workload.hpp) sent over HTTP to
// an OpenAI-compatible server, at most --concurrency requests in flight, as vLLM's
// benchmark_serving and LMDeploy's profile_restful_api measure it. Each request is a streamed
// /v1/completions with max_tokens set to its drawn output length and ignore_eos; first-token
// latency is the time to the first chunk with text, per-token latency the rest of the stream
// over the remaining tokens. Without --url, a server on the model is started in this process on a
// free loopback port (the engine with --concurrency slots), so one command measures the whole
// serving path. Prompts are text: random word pieces of the model's vocabulary, decoded; the
// counts of input and output tokens are the server's (usage).
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <turbine/engine/scheduler.hpp>
#include <turbine/serve/http_server.hpp>

#include "serve_command.hpp"
#include "stats.hpp"
#include "workload.hpp"

namespace turbine::cli {

void add_bench_serve_options(CLI::App& app, BenchServeOptions& b) {
  app.add_option("--url", b.url, "server to measure, e.g. http://127.0.0.1:8000 (default: start one on the model here)");
  app.add_option("--api-key", b.api_key, "API key sent as 'Authorization: Bearer KEY'");
  app.add_option("--concurrency", b.concurrency, "requests in flight at once")->check(CLI::PositiveNumber)->capture_default_str();
  auto& t = b.workload;
  app.add_option("--num-prompts", t.num_prompts, "requests in the run")->check(CLI::PositiveNumber)->capture_default_str();
  add_workload_options(app, t);
}

namespace {

struct Outcome {
  std::string error;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double first_token_s = 0, total_s = 0;
};

// Splits "http://host:port" into what httplib::Client takes; fails with the flag's name.
httplib::Client make_client(const std::string& url, const std::string& api_key) {
  const std::string prefix = "http://";
  check(url.rfind(prefix, 0) == 0, "--url '", url, "': only http://HOST:PORT is supported");
  std::string rest = url.substr(prefix.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  check(rest.find('/') == std::string::npos, "--url '", url, "': give the server's root (http://HOST:PORT), without a path");
  httplib::Client c(prefix + rest);
  c.set_connection_timeout(10);
  c.set_read_timeout(3600);
  if (!api_key.empty()) c.set_bearer_token_auth(api_key);
  return c;
}

// One streamed completion; times its first text chunk and its end.
Outcome one_request(httplib::Client& c, const std::string& prompt, int64_t max_tokens) {
  Outcome o;
  const nlohmann::json body = {{"model", "default"},   {"prompt", prompt},      {"max_tokens", max_tokens},
                               {"temperature", 0},     {"ignore_eos", true},    {"stream", true},
                               {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string pending;  // bytes of an event not yet complete
  const auto t0 = std::chrono::steady_clock::now();
  auto on_event = [&](const std::string& data) {
    if (data == "[DONE]") return;
    const nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || j.contains("error")) {
      o.error = data.substr(0, 200);
      return;
    }
    if (o.first_token_s == 0 && !j["choices"].empty() && !j["choices"][0]["text"].get<std::string>().empty())
      o.first_token_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (j.contains("usage") && j["usage"].is_object()) {
      o.prompt_tokens = j["usage"]["prompt_tokens"];
      o.completion_tokens = j["usage"]["completion_tokens"];
    }
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
      const std::string event = pending.substr(0, end);
      if (event.rfind("data: ", 0) == 0) on_event(event.substr(6));
    }
    return true;
  };
  const httplib::Result res = c.send(req);
  o.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!res) o.error = "no response (" + httplib::to_string(res.error()) + ")";
  else if (res->status != 200 && o.error.empty()) o.error = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
  else if (o.completion_tokens == 0 && o.error.empty()) o.error = "the stream ended without usage";
  return o;
}

}  // namespace

void run_bench_serve(CommonOptions& o, const BenchServeOptions& b) {
  check(o.device != "cuda" || !b.url.empty(), "turbine bench serve starts a CPU server in this process; for the GPU start `turbine serve --device cuda` and pass its address with --url");
  if (!b.url.empty()) make_client(b.url, b.api_key);
  const std::string path = resolve_model(o.model);
  check(o.tp == 1 || !b.url.empty(), "turbine bench serve --tp ", o.tp, ": the in-process server runs the model unsplit; start ",
        "`turbine serve --tp ", o.tp, "` and pass its address with --url");
  PipelineOptions po = pipeline_options(o);
  po.tp = 1;  // the server behind --url runs its own split; here the model is only the in-process server's
  Pipeline<CpuModel> pipe(path, po);
  const Tokenizer& tok = pipe.tokenizer();
  // Word pieces: tokens of letters only, so that decoded text tokenizes back to about as many.
  std::vector<int32_t> words;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string text = tok.decode(std::vector<int32_t>{id}, true);
    if (text.size() >= 3 && std::all_of(text.begin(), text.end(), [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)) || ch == ' '; }))
      words.push_back(id);
  }
  const std::vector<WorkloadJob> jobs = sharegpt_like_workload(b.workload, pipe.context_size() - 16, words);
  std::vector<std::string> prompts;
  for (const WorkloadJob& j : jobs) prompts.push_back(tok.decode(j.prompt, true));

  // Without --url: the server of `turbine serve` on a free loopback port, in this process.
  std::unique_ptr<Engine<CpuModel>> engine;
  std::unique_ptr<serve::Server> server;
  std::thread server_thread;
  std::string url = b.url;
  if (url.empty()) {
    EngineOptions eo{b.concurrency, 512, b.workload.num_prompts + 16, 0};
    apply_cache_options(b.workload.cache, pipe.model(), eo);
    engine = std::make_unique<Engine<CpuModel>>(pipe, eo);
    serve::ServerOptions so;
    so.port = 0;
    so.log_requests = false;
    so.model_id = serve::model_id_from_path(path);
    so.http_threads = static_cast<int>(b.concurrency) + 8;
    server = std::make_unique<serve::Server>(serve::make_backend(pipe, *engine), so);
    url = "http://127.0.0.1:" + std::to_string(server->bind());
    server_thread = std::thread([&] { server->run(); });
  }

  make_client(url, b.api_key);  // a bad --url fails here, not in a client thread
  const Colors color;
  std::vector<Outcome> out(jobs.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex print_mu;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int64_t c = 0; c < std::min<int64_t>(b.concurrency, static_cast<int64_t>(jobs.size())); ++c)
    clients.emplace_back([&] {
      httplib::Client client = make_client(url, b.api_key);
      for (size_t i; (i = next.fetch_add(1)) < jobs.size();) {
        out[i] = one_request(client, prompts[i], jobs[i].output);
        const size_t d = done.fetch_add(1) + 1;
        std::lock_guard<std::mutex> lock(print_mu);
        std::fprintf(stderr, "\r%sbench serve: %zu/%zu requests done, %.0f s%s", color.dim(), d, jobs.size(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), color.reset());
      }
    });
  for (auto& t : clients) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "\n");
  if (server) {
    server->stop();
    server_thread.join();
    engine->shutdown();
  }

  std::vector<double> ttft, tpot, e2e;
  int64_t in_total = 0, out_total = 0, errors = 0;
  std::string first_error;
  for (const Outcome& r : out) {
    if (!r.error.empty()) {
      if (errors++ == 0) first_error = r.error;
      continue;
    }
    in_total += r.prompt_tokens;
    out_total += r.completion_tokens;
    ttft.push_back(r.first_token_s);
    if (r.completion_tokens > 1) tpot.push_back((r.total_s - r.first_token_s) / static_cast<double>(r.completion_tokens - 1));
    e2e.push_back(r.total_s);
  }
  check(errors == 0, errors, " of ", jobs.size(), " requests failed; the first: ", first_error);
  const Stats first = stats(ttft), per_token = stats(tpot), request = stats(e2e);
  const double n = static_cast<double>(jobs.size());
  if (b.workload.json) {
    const nlohmann::json j = {{"model", path}, {"url", b.url.empty() ? "in-process" : b.url}, {"num_prompts", jobs.size()},
                              {"concurrency", b.concurrency}, {"input_tokens", in_total}, {"output_tokens", out_total},
                              {"seconds", secs}, {"requests_per_s", n / secs}, {"input_tokens_per_s", in_total / secs},
                              {"output_tokens_per_s", out_total / secs}, {"total_tokens_per_s", (in_total + out_total) / secs},
                              {"first_token_s", to_json(first)}, {"per_token_s", to_json(per_token)}, {"request_s", to_json(request)}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("server %s (model %s), %zu requests, %lld in flight at once\n", b.url.empty() ? "in-process (CPU)" : b.url.c_str(),
              path.c_str(), jobs.size(), static_cast<long long>(b.concurrency));
  std::printf("%.1f s: %.2f requests/s, input %.1f tokens/s, output %.1f tokens/s, total %.1f tokens/s (%lld in, %lld out)\n", secs,
              n / secs, in_total / secs, out_total / secs, (in_total + out_total) / secs, static_cast<long long>(in_total),
              static_cast<long long>(out_total));
  std::printf("first-token latency  p50 %.3f s  p90 %.3f s  p99 %.3f s (from sending the request)\n", first.p50, first.p90, first.p99);
  std::printf("per-token latency    p50 %.1f ms p90 %.1f ms p99 %.1f ms (per request, after its first token)\n", 1e3 * per_token.p50,
              1e3 * per_token.p90, 1e3 * per_token.p99);
  std::printf("request latency      p50 %.2f s  p90 %.2f s  p99 %.2f s\n", request.p50, request.p90, request.p99);
}

}  // namespace turbine::cli
