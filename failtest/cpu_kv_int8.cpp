// A KV-cache scheme the backend does not implement is refused.
// expect: this backend does not implement the KV-cache scheme: use turbine::kv::Same
#include <turbine/model/transformer.hpp>  // the model module alone keeps the test fast

#ifdef TURBINE_FAILTEST
using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Int8, turbine::Cpu>;
#else
using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
#endif

int main() { return sizeof(Model) > 0 ? 0 : 1; }
