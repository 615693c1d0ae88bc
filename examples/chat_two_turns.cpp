// The first program an LMDeploy user writes, in C++: a two-turn chat with streaming output.
//   chat_two_turns [MODEL]   (default: the SmolLM2 model fetched by tools/fetch_model.sh)
#include <cstdio>
#include <turbine/turbine.hpp>

int main(int argc, char** argv) {
  using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
  try {
    const std::string path = argc > 1 ? argv[1] : std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    turbine::Pipeline<Model> pipe(path);
    turbine::ChatSession<Model> chat(pipe);
    turbine::GenerationConfig cfg;
    cfg.max_new_tokens = 256;
    for (const char* prompt : {"hello", "please provide three suggestions about time management"}) {
      std::printf(">>> %s\n", prompt);
      chat.say(prompt, cfg, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      std::printf("\n\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat_two_turns: %s\n", e.what());
    return 1;
  }
  return 0;
}
