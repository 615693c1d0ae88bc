// 4-bit weights on the GPU run in f16 only (the W4A16 GEMV dequantizes with fp16 arithmetic).
// expect: 4-bit weights (quant::Awq, quant::Rtn) on turbine::Cuda run in f16: use turbine::f16
#include <turbine/model/spec.hpp>  // the tags alone: naming the Spec is enough

#ifdef TURBINE_FAILTEST
using S = turbine::Spec<turbine::bf16, turbine::quant::Awq<4, 128>, turbine::kv::Same, turbine::Cuda>;
#else
using S = turbine::Spec<turbine::f16, turbine::quant::Awq<4, 128>, turbine::kv::Same, turbine::Cuda>;
#endif

int main() { return sizeof(S) > 0 ? 0 : 1; }
