// A weight scheme the backend does not implement is refused (the CUDA backend has no W4A16 kernels yet).
// expect: this backend does not implement the weight scheme: use turbine::quant::None
#include <turbine/model/spec.hpp>  // the tags alone: naming the Spec is enough

#ifdef TURBINE_FAILTEST
using S = turbine::Spec<turbine::f16, turbine::quant::Awq<4, 128>, turbine::kv::Same, turbine::Cuda>;
#else
using S = turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>;
#endif

int main() { return sizeof(S) > 0 ? 0 : 1; }
