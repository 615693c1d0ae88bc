#pragma once
// WeightMatrix: a [rows, cols] matrix in its stored format (plain floats or GGML blocks), row-major,
// each row a whole number of blocks. Layers consume weights through this view on the host; the
// memory belongs to a mapped file or to the model's owned buffers.
#include <cstddef>
#include <cstdint>

#include "storage_type.hpp"

namespace turbine {

/// A [rows, cols] weight matrix in its stored format, row-major (memory owned elsewhere).
struct WeightMatrix {
  StorageType type = StorageType::F32;  ///< how elements are stored
  int64_t rows = 0;                     ///< output features
  int64_t cols = 0;                     ///< input features (a whole number of blocks)
  const std::byte* data = nullptr;      ///< the first row

  size_t row_stride() const { return row_bytes(type, cols); }  ///< bytes of one row
  /// The first byte of row `r`.
  const std::byte* row(int64_t r) const { return data + static_cast<size_t>(r) * row_stride(); }
  size_t nbytes() const { return static_cast<size_t>(rows) * row_stride(); }  ///< bytes of the matrix
  bool empty() const { return data == nullptr; }  ///< true for a slot the model does not have
};

}  // namespace turbine
