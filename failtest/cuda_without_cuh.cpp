// A Cuda model used from a file that did not include <turbine/turbine.cuh> is refused; the
// message names the header (and ExternModel, the way to use a Cuda model from a .cpp file).
// expect: a turbine::Cuda model needs the CUDA backend: include <turbine/turbine.cuh>
#include <turbine/turbine.hpp>

#ifdef TURBINE_FAILTEST
using Model = turbine::Llama<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>;
#else
using Model = turbine::ExternModel<turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>>;
#endif

// Declared only: the point is what compiles, not what links.
void serve(turbine::Pipeline<Model>& pipe) { pipe.generate({"hello"}); }

int main() { return 0; }
