// A KV-cache scheme the backend does not implement is refused (the CUDA backend has no int8 cache yet).
// expect: this backend does not implement the KV-cache scheme: use turbine::kv::Same
#include <turbine/model/spec.hpp>  // the tags alone: naming the Spec is enough

#ifdef TURBINE_FAILTEST
using S = turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Int8, turbine::Cuda>;
#else
using S = turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>;
#endif

int main() { return sizeof(S) > 0 ? 0 : 1; }
