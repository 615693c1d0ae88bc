// Every backend runs kv::Same, kv::Int8 and kv::Int4; a KV-cache scheme of the user's own (here an
// fp8 cache) is refused until a backend specializes turbine::backend_has_kv_scheme for it.
// expect: this backend does not implement the KV-cache scheme: use turbine::kv::Same
#include <string_view>
#include <turbine/model/spec.hpp>  // the tags alone: naming the Spec is enough

struct Fp8Kv {
  static constexpr std::string_view name = "fp8";
  static constexpr int bits = 8;
  static constexpr bool quantized = true;
  static constexpr int group = 0;
};

#ifdef TURBINE_FAILTEST
using S = turbine::Spec<turbine::f16, turbine::quant::None, Fp8Kv, turbine::Cuda>;
#else
using S = turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Int8, turbine::Cuda>;
#endif

int main() { return sizeof(S) > 0 ? 0 : 1; }
