#pragma once
// Precision tags. A tag carries its storage type and name; kernels and layers are templated on it.
#include <concepts>
#include <cstdint>
#include <string_view>

namespace turbine {

/// 32-bit float compute and storage.
struct f32 {
  using storage = float;
  static constexpr std::string_view name = "f32";
  static constexpr int bytes = 4;
};
/// IEEE half precision storage (compute in f32).
struct f16 {
  using storage = uint16_t;
  static constexpr std::string_view name = "f16";
  static constexpr int bytes = 2;
};
/// bfloat16 storage (compute in f32).
struct bf16 {
  using storage = uint16_t;
  static constexpr std::string_view name = "bf16";
  static constexpr int bytes = 2;
};

/// A precision tag: names a storage type and its size.
template <typename T>
concept Precision = requires {
  typename T::storage;
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bytes } -> std::convertible_to<int>;
} && (sizeof(typename T::storage) == T::bytes);

}  // namespace turbine
