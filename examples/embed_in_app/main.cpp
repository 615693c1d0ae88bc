// turbine inside an application: the model is loaded once, by a worker thread that owns the
// Pipeline, and the application's own threads hand it prompts and wait for the replies. This file
// is plain C++ (g++ builds it without the CUDA toolkit); the model's code is compiled once
// elsewhere (app_model_cpu.cpp, app_model_cuda.cu) through turbine::ExternModel.
//   embed_in_app [MODEL] [--cuda]
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "app_model.hpp"

/// Serves prompts one at a time on its own thread. A Pipeline keeps per-sequence state (the KV
/// cache of the last request), so exactly one thread uses it; any thread may call ask().
template <class Model>
class Assistant {
 public:
  explicit Assistant(std::string model_path) {
    std::promise<void> loaded;
    auto ready = loaded.get_future();
    worker_ = std::thread([this, model_path, &loaded] { serve(model_path, loaded); });
    ready.get();  // rethrows a load error here, in the caller's thread
  }
  ~Assistant() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();
  }

  /// Queues a prompt; the future holds the reply (or the error) once the worker has produced it.
  std::future<turbine::Response> ask(std::string prompt) {
    Job job{std::move(prompt), {}};
    auto reply = job.reply.get_future();
    {
      std::lock_guard lock(mutex_);
      jobs_.push(std::move(job));
    }
    wake_.notify_one();
    return reply;
  }

 private:
  struct Job {
    std::string prompt;
    std::promise<turbine::Response> reply;
  };

  void serve(const std::string& path, std::promise<void>& loaded) {
    std::optional<turbine::Pipeline<Model>> pipe;
    try {
      pipe.emplace(path);  // the only load of the program
    } catch (...) {
      loaded.set_exception(std::current_exception());
      return;
    }
    loaded.set_value();
    turbine::GenerationConfig cfg;
    cfg.max_new_tokens = 24;
    for (;;) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to answer
      Job job = std::move(jobs_.front());
      jobs_.pop();
      lock.unlock();
      try {
        job.reply.set_value(pipe->chat({{"user", job.prompt}}, cfg));
      } catch (...) {
        job.reply.set_exception(std::current_exception());
      }
    }
  }

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::queue<Job> jobs_;
  bool stopping_ = false;
};

template <class Model>
int run(const std::string& path) {
  Assistant<Model> assistant(path);
  // Three client threads of the application, two questions each.
  const std::vector<std::vector<std::string>> questions{{"hello", "What is 2 + 2?"},
                                                         {"Name a color.", "What is the capital of France?"},
                                                         {"Say something kind.", "What day comes after Monday?"}};
  std::mutex print;
  int answered = 0;
  std::vector<std::thread> clients;
  for (size_t c = 0; c < questions.size(); ++c)
    clients.emplace_back([&, c] {
      for (const std::string& q : questions[c]) {
        const turbine::Response r = assistant.ask(q).get();
        std::lock_guard lock(print);
        std::printf("client %zu: %s\n  -> %s (%zu tokens, %s)\n", c, q.c_str(), r.text.c_str(), r.tokens.size(),
                    turbine::finish_reason_name(r.finish_reason));
        answered += !r.tokens.empty();
      }
    });
  for (auto& t : clients) t.join();
  std::printf("embed_in_app: %d of 6 prompts answered by one loaded model\n", answered);
  return answered == 6 ? 0 : 1;
}

int main(int argc, char** argv) {
  std::string path = std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  bool cuda = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--cuda") cuda = true;
    else path = argv[i];
  }
  try {
    if (!cuda) return run<CpuModel>(path);
#ifdef TURBINE_EXAMPLE_CUDA
    return run<CudaModel>(path);
#else
    std::fprintf(stderr, "embed_in_app: built without CUDA (configure with -DTURBINE_ENABLE_CUDA=ON)\n");
    return 1;
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed_in_app: %s\n", e.what());
    return 1;
  }
}
