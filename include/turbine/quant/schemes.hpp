#pragma once
// Weight-quantization and KV-cache-quantization schemes as tag types with their traits.
#include <concepts>
#include <string_view>

namespace turbine {
/// Weight-quantization scheme tags (the `WeightScheme` of a Spec).
namespace quant {

/// Weights used in the format the model file stores them (plain floats or GGML blocks).
struct None {
  static constexpr std::string_view name = "none";  ///< as printed in logs and errors
  static constexpr int bits = 16;                   ///< nominal bits per weight
  static constexpr bool quantized = false;          ///< false: no scales or packing of turbine's own
};

/// Group-wise asymmetric integer weights: every `Group` consecutive input elements of an output
/// row share one fp16 scale and one integer zero point (quant/int4_groups.hpp has the arithmetic).
template <int Bits, int Group>
struct GroupInt {
  static_assert(Bits == 4, "group-wise weight quantization is 4-bit (use Bits = 4)");
  static_assert(Group == 32 || Group == 64 || Group == 128, "the group size must be 32, 64 or 128");
  static constexpr int bits = Bits;              ///< bits per stored weight
  static constexpr int group = Group;            ///< input elements per scale and zero point
  static constexpr bool quantized = true;        ///< true: turbine stores scales and packed integers
  static constexpr bool zero_point = true;       ///< asymmetric: q = round(w / scale) + zero
  static constexpr int values_per_word = 32 / Bits;  ///< packed values per int32 (AutoAWQ "gemm")
};

/// AWQ W4A16: activation-aware scales searched per layer, then GroupInt storage in AutoAWQ's
/// "gemm" packing (`quant_method: awq`, `version: gemm`). The CPU backend runs it (an AWQ
/// directory's weights as stored); the CUDA backend runs AWQ directories under quant::None,
/// dequantized to f16/bf16 (no W4A16 kernels yet).
template <int Bits = 4, int Group = 128>
struct Awq : GroupInt<Bits, Group> {
  static constexpr std::string_view name = "awq";  ///< as printed in logs and errors
};

/// Round-to-nearest W4A16: the same storage as Awq without the activation-aware search; on the
/// CPU, weights that are not 4-bit yet are rounded when the model is built.
template <int Bits = 4, int Group = 128>
struct Rtn : GroupInt<Bits, Group> {
  static constexpr std::string_view name = "rtn";  ///< as printed in logs and errors
};

}  // namespace quant

/// KV-cache scheme tags (the `KvScheme` of a Spec).
namespace kv {

/// KV cache stored in the compute precision of the backend (fp32 on the CPU).
struct Same {
  static constexpr std::string_view name = "same";  ///< as printed in logs and errors
  static constexpr int bits = 0;                    ///< 0: follows the compute precision
  static constexpr bool quantized = false;          ///< false: no scales are stored
  static constexpr int group = 0;                   ///< unused (no scales)
};

/// KV cache quantized to int8, asymmetric, per token and head (quant/kv_quant.hpp): the CPU backend
/// implements it as the numerical reference, the CUDA backend stores it (backend/cuda/kv_quant.cuh).
struct Int8 {
  static constexpr std::string_view name = "int8";  ///< as printed in logs and errors
  static constexpr int bits = 8;                    ///< bits per stored element
  static constexpr bool quantized = true;           ///< true: scales are stored next to the values
  /// channels per scale and minimum within a head; 0: the whole head. The CUDA kernels need a
  /// multiple of 8 that divides head_dim (or 0).
  static constexpr int group = 0;
};

/// KV cache quantized to int4, asymmetric, per token, head and group of 32 channels (16 levels
/// over a whole head of outliers lose too much); on the CPU as kv::Int8.
struct Int4 {
  static constexpr std::string_view name = "int4";  ///< as printed in logs and errors
  static constexpr int bits = 4;                    ///< bits per stored element
  static constexpr bool quantized = true;           ///< true: scales are stored next to the values
  static constexpr int group = 32;                  ///< channels per scale and minimum (see kv::Int8::group)
};

}  // namespace kv

/// A weight scheme tag: a name, nominal bits per weight, and whether turbine quantized it.
template <typename T>
concept WeightScheme = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bits } -> std::convertible_to<int>;
  { T::quantized } -> std::convertible_to<bool>;
};

/// A KV-cache scheme tag: a name, bits per stored element, and whether it keeps scales.
template <typename T>
concept KvScheme = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::bits } -> std::convertible_to<int>;
  { T::quantized } -> std::convertible_to<bool>;
  { T::group } -> std::convertible_to<int>;
};

}  // namespace turbine
