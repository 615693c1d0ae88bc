#pragma once
// How a tensor's elements are stored in a model file: plain floats or a GGML block format.
// Block formats pack `block_elems` weights into `block_bytes` bytes along the innermost dimension.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "error.hpp"

namespace turbine {

/// How elements are stored: plain floats (F32, F16, BF16) or a GGML block format.
enum class StorageType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K };

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
  }
  return {"?", 1, 1};
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
