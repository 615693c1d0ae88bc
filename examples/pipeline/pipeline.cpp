// Batch generation from C++: several prompts through one Pipeline, every reply streamed piece by
// piece as it is produced, then the finished responses and their statistics. A second batch
// shows sampling settings and stopping a reply early from the streaming callback.
//   pipeline [MODEL] [MAX_NEW_TOKENS]   (default: the SmolLM2 model fetched by tools/fetch_model.sh)
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <turbine/turbine.hpp>

using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;

int main(int argc, char** argv) {
  const std::string path =
      argc > 1 ? argv[1] : std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  const int64_t max_new_tokens = argc > 2 ? std::atoll(argv[2]) : 64;
  try {
    turbine::Pipeline<Model> pipe(path);  // loads once: weights stay mapped, the tokenizer is built
    const std::vector<std::string> prompts{"hello", "please provide three suggestions about time management",
                                           "What is the capital of France?"};

    turbine::GenerationConfig greedy;
    greedy.max_new_tokens = max_new_tokens;
    std::vector<std::string> streamed(prompts.size());
    size_t current = prompts.size();
    auto on_text = [&](size_t i, std::string_view piece) {
      if (i != current) std::printf("%s[%zu] ", i == 0 ? "" : "\n", current = i);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      streamed[i] += piece;
      return true;  // false would stop this reply
    };
    const std::vector<turbine::Response> replies = pipe.generate(prompts, greedy, on_text);

    std::printf("\n\n%-3s %-8s %-9s %-8s %s\n", "#", "prompt", "generated", "finish", "decode tok/s");
    bool ok = true;
    for (size_t i = 0; i < replies.size(); ++i) {
      const turbine::Response& r = replies[i];
      const double tps = r.decode_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.decode_seconds : 0.0;
      std::printf("%-3zu %-8lld %-9zu %-8s %.1f\n", i, static_cast<long long>(r.prompt_tokens), r.tokens.size(),
                  turbine::finish_reason_name(r.finish_reason), tps);
      ok = ok && !r.tokens.empty() && streamed[i] == r.text;  // what was streamed is the reply
    }

    // Sampling, and a reply cut short by the callback after 5 pieces.
    turbine::GenerationConfig sampled = greedy;
    sampled.temperature = 0.7f;
    sampled.top_p = 0.9f;
    sampled.seed = 42;
    int pieces = 0;
    const auto cut = pipe.generate({"Tell me a long story about a dragon."}, sampled,
                                   [&](size_t, std::string_view) { return ++pieces < 5; });
    std::printf("\nsampled reply stopped by the callback after %d pieces (%s): %s\n", pieces,
                turbine::finish_reason_name(cut[0].finish_reason), cut[0].text.c_str());
    ok = ok && cut[0].finish_reason == turbine::FinishReason::Cancelled && pieces == 5;

    if (!ok) {
      std::fprintf(stderr, "pipeline: FAILED (streamed text differs from a reply, or the cancel did not stop it)\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline: %s\n", e.what());
    return 1;
  }
  return 0;
}
