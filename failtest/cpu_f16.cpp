// The CPU backend computes in f32: an f16 Cpu model is refused.
// expect: turbine::Cpu computes in f32: use turbine::f32 as the precision of a Cpu model
#include <turbine/model/transformer.hpp>  // the model module alone keeps the test fast

#ifdef TURBINE_FAILTEST
using Model = turbine::Llama<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
#else
using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
#endif

int main() { return sizeof(Model) > 0 ? 0 : 1; }
