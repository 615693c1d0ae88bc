#pragma once
// How a tensor's elements are stored in a model file: plain floats or a GGML block format, or
// turbine's row layout of group-wise 4-bit weights (AWQ / RTN checkpoints, repacked at load time).
// Block formats pack `block_elems` weights into `block_bytes` bytes along the innermost dimension.
//
// I4G32 / I4G64 / I4G128: one block per group of G input elements of an output row:
//   bytes 0-1  fp16 scale s        byte 2  zero point z (0..15)        byte 3  0
//   then G / 2 bytes, 16 per 32 elements: the low nibble of byte b holds element b, the high
//   nibble element b + 16 of that 32 (GGML Q4_1's order);   w = (q - z) * s.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "error.hpp"

namespace turbine {

/// How elements are stored: plain floats (F32, F16, BF16), a GGML block format, or group-wise int4 (I4G*).
enum class StorageType : uint8_t {
  F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, I4G32, I4G64, I4G128, Q2_K, Q3_K, IQ4_NL, IQ4_XS
};

/// The name and block geometry of a StorageType.
struct StorageInfo {
  std::string_view name;  ///< GGML's name: "F32", "Q4_K", ...
  int block_elems;        ///< weights per block (1 for plain floats)
  int block_bytes;        ///< bytes per block
};

/// The name and block geometry of `t`.
constexpr StorageInfo storage_info(StorageType t) {
  switch (t) {
    case StorageType::F32: return {"F32", 1, 4};
    case StorageType::F16: return {"F16", 1, 2};
    case StorageType::BF16: return {"BF16", 1, 2};
    case StorageType::Q8_0: return {"Q8_0", 32, 34};
    case StorageType::Q4_0: return {"Q4_0", 32, 18};
    case StorageType::Q4_1: return {"Q4_1", 32, 20};
    case StorageType::Q5_0: return {"Q5_0", 32, 22};
    case StorageType::Q5_1: return {"Q5_1", 32, 24};
    case StorageType::Q4_K: return {"Q4_K", 256, 144};
    case StorageType::Q5_K: return {"Q5_K", 256, 176};
    case StorageType::Q6_K: return {"Q6_K", 256, 210};
    case StorageType::I4G32: return {"I4G32", 32, 4 + 16};
    case StorageType::I4G64: return {"I4G64", 64, 4 + 32};
    case StorageType::I4G128: return {"I4G128", 128, 4 + 64};
    case StorageType::Q2_K: return {"Q2_K", 256, 84};
    case StorageType::Q3_K: return {"Q3_K", 256, 110};
    case StorageType::IQ4_NL: return {"IQ4_NL", 32, 18};
    case StorageType::IQ4_XS: return {"IQ4_XS", 256, 136};
  }
  return {"?", 1, 1};
}

/// True for turbine's group-wise int4 layouts (I4G32, I4G64, I4G128), which GGUF cannot hold.
constexpr bool is_int4_groups(StorageType t) {
  return t == StorageType::I4G32 || t == StorageType::I4G64 || t == StorageType::I4G128;
}

/// The group-wise int4 storage type for `group` elements per scale (32, 64 or 128).
inline StorageType int4_groups_type(int64_t group) {
  switch (group) {
    case 32: return StorageType::I4G32;
    case 64: return StorageType::I4G64;
    case 128: return StorageType::I4G128;
    default: fail("group size ", group, " is not supported for 4-bit weights (supported: 32, 64, 128)");
  }
}

/// GGML's name of `t` ("F32", "Q4_K", ...).
inline std::string_view storage_name(StorageType t) { return storage_info(t).name; }

/// Bytes of one row of `n` elements; fails if `n` is not a whole number of blocks.
inline size_t row_bytes(StorageType t, int64_t n) {
  const auto info = storage_info(t);
  check(n >= 0 && n % info.block_elems == 0, "row of ", n, " elements is not a multiple of the ",
        info.name, " block size ", info.block_elems);
  return static_cast<size_t>(n / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

}  // namespace turbine
