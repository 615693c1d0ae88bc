#pragma once
// Precision tags. A tag carries its storage type and name; kernels and layers are templated on it.
#include <concepts>
#include <cstdint>
#include <string_view>

namespace turbine {

/// 32-bit float compute and storage.
struct f32 {
  using storage = float;                           ///< the element type in memory
  static constexpr std::string_view name = "f32";  ///< as printed in logs and errors
  static constexpr int bytes = 4;                  ///< sizeof(storage)
};
/// IEEE half precision storage (compute in f32).
struct f16 {
  using storage = uint16_t;                        ///< the element's bits (IEEE binary16)
  static constexpr std::string_view name = "f16";  ///< as printed in logs and errors
  static constexpr int bytes = 2;                  ///< sizeof(storage)
};
/// bfloat16 storage (compute in f32).
struct bf16 {
  using storage = uint16_t;                         ///< the element's bits (the top half of an fp32)
  static constexpr std::string_view name = "bf16";  ///< as printed in logs and errors
  static constexpr int bytes = 2;                   ///< sizeof(storage)
};

/// A precision tag: names a storage type and its size.
template <typename T>
concept Precision = requires {
  typename T::storage;
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bytes } -> std::convertible_to<int>;
} && (sizeof(typename T::storage) == T::bytes);

}  // namespace turbine
