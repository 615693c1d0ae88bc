// Compile-cost probe: what a CPU user's translation unit instantiates for one model type
// (Pipeline<Llama<f32, None, Same, Cpu>>: loader, tokenizer, generation loop, CPU kernels).
#include <turbine/turbine.hpp>

using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;

std::vector<turbine::Response> run(const std::string& path, const std::vector<std::string>& prompts) {
  turbine::Pipeline<Model> pipe(path);
  return pipe.generate(prompts);
}
