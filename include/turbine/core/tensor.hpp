#pragma once
// Views of tensors. A RawTensor points into a mapped model file (stored type, any layout);
// a Matrix/vector view is plain fp32 memory owned by someone else.
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "storage_type.hpp"

namespace turbine {

/// A tensor as stored in a model file. `shape` is outermost first ([rows, cols] for a matrix,
/// like PyTorch), whatever order the file format uses.
struct RawTensor {
  std::string name;                     ///< the tensor's name in the file
  StorageType type = StorageType::F32;  ///< how its elements are stored
  std::vector<int64_t> shape;           ///< outermost first
  const std::byte* data = nullptr;      ///< the first byte, inside the mapped file
  size_t nbytes = 0;                    ///< bytes of data
  std::string file;                     ///< where it came from, for error messages

  /// Number of elements.
  int64_t numel() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
  }
  /// Elements of the outer dimensions together (1 for a vector).
  int64_t rows() const { return shape.size() <= 1 ? 1 : numel() / shape.back(); }
  /// Elements of the innermost dimension.
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  /// The shape as "[a, b]", for messages.
  std::string shape_string() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

}  // namespace turbine
