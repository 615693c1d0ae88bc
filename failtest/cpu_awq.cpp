// A weight scheme no backend implements yet (AWQ W4A16, the quantization issue) is refused.
// expect: this backend does not implement the weight scheme: use turbine::quant::None
#include <turbine/model/transformer.hpp>  // the model module alone keeps the test fast

#ifdef TURBINE_FAILTEST
using Model = turbine::Llama<turbine::f32, turbine::quant::Awq<4, 128>, turbine::kv::Same, turbine::Cpu>;
#else
using Model = turbine::Llama<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>;
#endif

int main() { return sizeof(Model) > 0 ? 0 : 1; }
