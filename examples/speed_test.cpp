// LMDeploy's speed test, in C++: 5 warm-up runs, then 10 timed runs of one prompt; prints the
// characters and tokens generated per second.
//   speed_test [MODEL] [RUNS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <turbine/turbine.hpp>

int main(int argc, char** argv) {
  using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
  try {
    const std::string path = argc > 1 ? argv[1] : std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    const int runs = argc > 2 ? std::atoi(argv[2]) : 10;
    turbine::Pipeline<Model> pipe(path);
    turbine::GenerationConfig cfg;
    cfg.max_new_tokens = 256;
    const std::string prompt = "请介绍一下你自己。";
    for (int i = 0; i < 5; ++i) pipe.generate({prompt}, cfg);
    size_t chars = 0, tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) {
      const auto r = pipe.generate({prompt}, cfg)[0];
      // Count characters as Python's len() does: UTF-8 code points, not bytes.
      for (unsigned char ch : r.text) chars += (ch & 0xC0) != 0x80;
      tokens += r.tokens.size();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%d runs in %.2f s: %.1f characters/s, %.1f tokens/s\n", runs, s, chars / s, tokens / s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "speed_test: %s\n", e.what());
    return 1;
  }
  return 0;
}
