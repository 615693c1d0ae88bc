// Compile-cost probe: a plain .cpp (g++, no CUDA toolkit) that drives the Cuda model compiled in
// cuda_extern.cu through turbine::ExternModel.
#include <turbine/turbine.hpp>

using Model = turbine::ExternModel<turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>>;

std::vector<turbine::Response> run(const std::string& path, const std::vector<std::string>& prompts) {
  turbine::Pipeline<Model> pipe(path);
  return pipe.generate(prompts);
}
