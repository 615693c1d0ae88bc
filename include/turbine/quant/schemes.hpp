#pragma once
// Weight-quantization and KV-cache-quantization schemes as tag types with their traits.
#include <concepts>
#include <string_view>

namespace turbine {
namespace quant {

/// Weights used in the format the model file stores them (plain floats or GGML blocks).
struct None {
  static constexpr std::string_view name = "none";
  static constexpr int bits = 16;
  static constexpr bool quantized = false;
};

}  // namespace quant

namespace kv {

/// KV cache stored in the compute precision of the backend (fp32 on the CPU).
struct Same {
  static constexpr std::string_view name = "same";
  static constexpr int bits = 0;  // 0: follows the compute precision
  static constexpr bool quantized = false;
};

}  // namespace kv

/// A weight scheme tag.
template <typename T>
concept WeightScheme = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bits } -> std::convertible_to<int>;
  { T::quantized } -> std::convertible_to<bool>;
};

/// A KV-cache scheme tag.
template <typename T>
concept KvScheme = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bits } -> std::convertible_to<int>;
  { T::quantized } -> std::convertible_to<bool>;
};

}  // namespace turbine
