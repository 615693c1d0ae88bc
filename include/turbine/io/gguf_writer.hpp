#pragma once
// GgufWriter: builds a GGUF v3 (or v2) file from metadata and tensors, in the layout GgufFile
// reads and llama.cpp writes: header, metadata, tensor infos, padding, then each tensor's data
// padded to the alignment.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/storage_type.hpp"
#include "ggml_quants.hpp"
#include "gguf.hpp"

namespace turbine::io {

/// Builds a GGUF file in memory (metadata, then tensors) and writes it out: for tests, fuzz seeds
/// and turbine's own quantized models.
class GgufWriter {
 public:
  /// A writer of GGUF `version` 2 or 3.
  explicit GgufWriter(uint32_t version = 3) : version_(version) {
    check(version == 2 || version == 3, "GgufWriter: version ", version, " is not writable (2 or 3)");
  }

  /// Sets `general.alignment` (a power of two); tensor data offsets become multiples of it.
  void set_alignment(uint32_t alignment) {
    check(alignment > 0 && (alignment & (alignment - 1)) == 0 && alignment <= (1u << 30),
          "GgufWriter: alignment ", alignment, " is not a power of two in [1, 2^30]");
    alignment_ = alignment;
    for (auto& [key, value] : kv_)
      if (key == "general.alignment") {
        value = GgufValue::u32(alignment);
        return;
      }
    kv_.emplace_back("general.alignment", GgufValue::u32(alignment));
    keys_.insert("general.alignment");
  }

  /// Adds a metadata entry of any type (see the GgufValue constructors).
  void add(std::string key, GgufValue value) {
    if (key == "general.alignment") {
      check(gguf_is_integer(value.type) && std::get<int64_t>(value.payload) > 0 &&
                std::get<int64_t>(value.payload) <= (int64_t{1} << 30),
            "GgufWriter: general.alignment must be a positive integer");
      return set_alignment(uint32_t(std::get<int64_t>(value.payload)));
    }
    validate(key, value, 0);
    check(keys_.insert(key).second, "GgufWriter: duplicate metadata key '", key, "'");
    kv_.emplace_back(std::move(key), std::move(value));
  }
  /// @name Typed shorthands for add()
  ///@{

  /// Adds metadata `key` with value `v`, of the type in the name.
  void add_string(std::string key, std::string v) { add(std::move(key), GgufValue::string(std::move(v))); }
  void add_uint32(std::string key, uint32_t v) { add(std::move(key), GgufValue::u32(v)); }
  void add_int32(std::string key, int32_t v) { add(std::move(key), GgufValue::i32(v)); }
  void add_uint64(std::string key, uint64_t v) { add(std::move(key), GgufValue::u64(v)); }
  void add_float32(std::string key, float v) { add(std::move(key), GgufValue::f32(v)); }
  void add_bool(std::string key, bool v) { add(std::move(key), GgufValue::boolean(v)); }
  void add_string_array(std::string key, std::vector<std::string> v) {
    add(std::move(key), GgufValue::string_array(std::move(v)));
  }
  void add_float32_array(std::string key, const std::vector<float>& v) {
    add(std::move(key), GgufValue::float_array(GgufType::Float32, {v.begin(), v.end()}));
  }
  void add_int32_array(std::string key, const std::vector<int32_t>& v) {
    add(std::move(key), GgufValue::int_array(GgufType::Int32, {v.begin(), v.end()}));
  }
  ///@}

  /// Adds a tensor; `shape` is outermost first, `data` its bytes in `type`'s layout (copied).
  void add_tensor(std::string name, StorageType type, std::vector<int64_t> shape, std::vector<std::byte> data) {
    Tensor& t = add_tensor_info(std::move(name), type, std::move(shape), data.size());
    t.owned = std::move(data);
    t.data = t.owned.data();
  }
  /// As add_tensor, without a copy: `data` must stay valid until the file is written.
  void add_tensor_view(std::string name, StorageType type, std::vector<int64_t> shape, const std::byte* data,
                       size_t nbytes) {
    add_tensor_info(std::move(name), type, std::move(shape), nbytes).data = data;
  }
  /// Adds an F32 tensor holding `values` (copied).
  void add_tensor_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values) {
    std::vector<std::byte> bytes(values.size_bytes());
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    add_tensor(std::move(name), StorageType::F32, std::move(shape), std::move(bytes));
  }

  /// The whole file.
  std::vector<std::byte> to_bytes() const {
    std::vector<std::byte> out;
    emit([&](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      out.insert(out.end(), b, b + n);
    });
    return out;
  }

  /// Writes to `path` through a temporary file renamed into place, so a failed write never
  /// leaves a truncated model behind.
  void write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      check(bool(f), tmp, ": cannot open for writing");
      emit([&](const void* p, size_t n) { f.write(static_cast<const char*>(p), std::streamsize(n)); });
      f.flush();
      check(bool(f), tmp, ": write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    check(!ec, path, ": cannot rename ", tmp, " into place (", ec.message(), ")");
  }

 private:
  struct Tensor {
    std::string name;
    StorageType type;
    std::vector<int64_t> shape;  // outermost first
    const std::byte* data = nullptr;
    size_t nbytes = 0;
    std::vector<std::byte> owned;
  };

  Tensor& add_tensor_info(std::string name, StorageType type, std::vector<int64_t> shape, size_t nbytes) {
    check(!tensor_names_.count(name), "GgufWriter: duplicate tensor '", name, "'");
    check(!shape.empty() && shape.size() <= size_t(GgufFile::kMaxDims), "GgufWriter: tensor '", name, "' has ",
          shape.size(), " dimensions (1 to ", GgufFile::kMaxDims, ")");
    size_t numel = 1;
    for (const int64_t d : shape) {
      check(d > 0, "GgufWriter: tensor '", name, "' has a non-positive dimension");
      numel *= size_t(d);
    }
    const auto info = storage_info(type);
    check(shape.back() % info.block_elems == 0, "GgufWriter: tensor '", name, "' innermost dimension ",
          shape.back(), " is not a multiple of the ", info.name, " block size ", info.block_elems);
    const size_t expected = numel / size_t(info.block_elems) * size_t(info.block_bytes);
    check(nbytes == expected, "GgufWriter: tensor '", name, "' has ", nbytes, " bytes of data, expected ",
          expected);
    tensor_names_.insert(name);
    tensors_.push_back(Tensor{std::move(name), type, std::move(shape), nullptr, nbytes, {}});
    return tensors_.back();
  }

  // Refuses values the file could not represent as declared (the writer is also used by tests,
  // which build values by hand).
  static void validate(const std::string& key, const GgufValue& v, int depth) {
    const auto bad = [&](const char* why) { fail("GgufWriter: metadata key '", key, "': ", why); };
    if (v.type == GgufType::Array) {
      if (depth >= GgufFile::kMaxArrayDepth) bad("arrays nested too deeply");
      if (v.elem_type == GgufType::Array) {
        if (!std::holds_alternative<std::vector<GgufValue>>(v.payload)) bad("array of arrays without nested values");
        for (const auto& e : std::get<std::vector<GgufValue>>(v.payload)) {
          if (!e.is_array()) bad("array of arrays holds a non-array");
          validate(key, e, depth + 1);
        }
      } else if (v.elem_type == GgufType::String) {
        if (!std::holds_alternative<std::vector<std::string>>(v.payload)) bad("string array without strings");
      } else if (gguf_is_float(v.elem_type)) {
        if (!std::holds_alternative<std::vector<double>>(v.payload)) bad("float array without floats");
      } else {
        if (!std::holds_alternative<std::vector<int64_t>>(v.payload)) bad("integer array without integers");
        for (const int64_t x : std::get<std::vector<int64_t>>(v.payload))
          if (!fits(v.elem_type, x)) bad("array element out of range for its type");
      }
      return;
    }
    if (v.type == GgufType::String) {
      if (!std::holds_alternative<std::string>(v.payload)) bad("string value without a string");
    } else if (gguf_is_float(v.type)) {
      if (!std::holds_alternative<double>(v.payload)) bad("float value without a float");
    } else if (gguf_is_integer(v.type) || v.type == GgufType::Bool) {
      if (!std::holds_alternative<int64_t>(v.payload)) bad("integer value without an integer");
      if (!fits(v.type, std::get<int64_t>(v.payload))) bad("value out of range for its type");
    } else {
      bad("invalid value type");
    }
  }

  static bool fits(GgufType t, int64_t x) {
    switch (t) {
      case GgufType::Bool: return x == 0 || x == 1;
      case GgufType::Uint8: return x >= 0 && x <= 0xff;
      case GgufType::Int8: return x >= -128 && x <= 127;
      case GgufType::Uint16: return x >= 0 && x <= 0xffff;
      case GgufType::Int16: return x >= -32768 && x <= 32767;
      case GgufType::Uint32: return x >= 0 && x <= int64_t{0xffffffff};
      case GgufType::Int32: return x >= INT32_MIN && x <= INT32_MAX;
      default: return true;  // 64-bit (uint64 is stored as its bit pattern)
    }
  }

  template <typename Out>
  static void put_scalar(Out& out, GgufType t, int64_t i, double f) {
    const auto put = [&](auto x) { out(&x, sizeof(x)); };
    switch (t) {
      case GgufType::Uint8: case GgufType::Bool: return put(uint8_t(i));
      case GgufType::Int8: return put(int8_t(i));
      case GgufType::Uint16: return put(uint16_t(i));
      case GgufType::Int16: return put(int16_t(i));
      case GgufType::Uint32: return put(uint32_t(i));
      case GgufType::Int32: return put(int32_t(i));
      case GgufType::Uint64: return put(uint64_t(i));
      case GgufType::Int64: return put(int64_t(i));
      case GgufType::Float32: return put(float(f));
      case GgufType::Float64: return put(double(f));
      default: fail("GgufWriter: not a scalar type");
    }
  }

  template <typename Out>
  static void put_string(Out& out, const std::string& s) {
    const uint64_t n = s.size();
    out(&n, 8);
    out(s.data(), s.size());
  }

  template <typename Out>
  static void put_value(Out& out, const GgufValue& v) {
    if (v.type == GgufType::String) return put_string(out, std::get<std::string>(v.payload));
    if (v.type != GgufType::Array)
      return gguf_is_float(v.type) ? put_scalar(out, v.type, 0, std::get<double>(v.payload))
                                   : put_scalar(out, v.type, std::get<int64_t>(v.payload), 0);
    const uint32_t elem = uint32_t(v.elem_type);
    const uint64_t n = v.size();
    out(&elem, 4);
    out(&n, 8);
    if (v.elem_type == GgufType::String) {
      for (const auto& s : std::get<std::vector<std::string>>(v.payload)) put_string(out, s);
    } else if (v.elem_type == GgufType::Array) {
      for (const auto& e : std::get<std::vector<GgufValue>>(v.payload)) put_value(out, e);
    } else if (gguf_is_float(v.elem_type)) {
      for (const double f : std::get<std::vector<double>>(v.payload)) put_scalar(out, v.elem_type, 0, f);
    } else {
      for (const int64_t i : std::get<std::vector<int64_t>>(v.payload)) put_scalar(out, v.elem_type, i, 0);
    }
  }

  template <typename Out>
  void emit(Out&& out) const {
    size_t pos = 0;
    auto counted = [&](const void* p, size_t n) {
      out(p, n);
      pos += n;
    };
    const auto pad = [&] {
      static constexpr std::byte kZeros[64] = {};
      while (pos % alignment_ != 0) counted(kZeros, std::min<size_t>(sizeof(kZeros), alignment_ - pos % alignment_));
    };
    counted("GGUF", 4);
    const uint64_t n_tensors = tensors_.size(), n_kv = kv_.size();
    counted(&version_, 4);
    counted(&n_tensors, 8);
    counted(&n_kv, 8);
    for (const auto& [key, value] : kv_) {
      put_string(counted, key);
      const uint32_t type = uint32_t(value.type);
      counted(&type, 4);
      put_value(counted, value);
    }
    uint64_t offset = 0;  // of each tensor within the data section
    for (const auto& t : tensors_) {
      put_string(counted, t.name);
      const uint32_t n_dims = uint32_t(t.shape.size()), type = ggml_type_id(t.type);
      counted(&n_dims, 4);
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {  // GGUF: innermost first
        const uint64_t ne = uint64_t(*it);
        counted(&ne, 8);
      }
      counted(&type, 4);
      counted(&offset, 8);
      offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    }
    pad();
    for (const auto& t : tensors_) {
      if (t.nbytes) counted(t.data, t.nbytes);
      pad();
    }
  }

  uint32_t version_;
  uint32_t alignment_ = uint32_t(GgufFile::kDefaultAlignment);
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::set<std::string> keys_;
  std::vector<Tensor> tensors_;
  std::set<std::string> tensor_names_;
};

}  // namespace turbine::io
