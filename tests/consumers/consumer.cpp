// A user's program, built by tests/consumers/{find_package,add_subdirectory}: loads the tiny
// Llama from tests/data/tiny_models/llama_tied through the public API, runs a forward pass over
// the token ids of its golden file, and compares the last position's logits with transformers'.
//   consumer MODEL_DIR
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>
#include <turbine/turbine.hpp>

#ifdef __CUDACC__
#error "the CPU consumer is plain C++"
#endif

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL_DIR\n");
    return 2;
  }
  try {
    const std::string dir = argv[1];
    turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu> model(turbine::load_weights(dir));
    std::ifstream in(dir + "/golden.json");
    const auto golden = nlohmann::json::parse(in);
    const auto ids = golden.at("ids").get<std::vector<int32_t>>();
    const auto ref = golden.at("logits").back().get<std::vector<float>>();  // [vocab] of the last position

    auto cache = model.new_cache(64);
    std::vector<float> logits;  // [vocab]
    model.forward(cache, ids, logits);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      diff += (logits[i] - ref[i]) * static_cast<double>(logits[i] - ref[i]);
      norm += static_cast<double>(ref[i]) * ref[i];
    }
    const double rel = std::sqrt(diff / norm);
    std::printf("consumer: %zu tokens, relative error of the last logits vs transformers %.2e\n", ids.size(), rel);
    return logits.size() == ref.size() && rel < 1e-3 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
