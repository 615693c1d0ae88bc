// Compile-cost probe: what a CUDA user's translation unit instantiates for one model type
// (Pipeline<Llama<f16, None, Same, Cuda>>: loader, tokenizer, generation loop, CUDA kernels).
#include <turbine/turbine.cuh>

using Model = turbine::Llama<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>;

std::vector<turbine::Response> run(const std::string& path, const std::vector<std::string>& prompts) {
  turbine::Pipeline<Model> pipe(path);
  return pipe.generate(prompts);
}
