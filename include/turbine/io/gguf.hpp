#pragma once
// GGUF v2/v3 reader (the llama.cpp model format): metadata, tensor infos and zero-copy tensor
// views into a memory-mapped file.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count,
// metadata (string key, u32 value type, value)*, tensor infos (string name, u32 n_dims,
// u64 ne[n_dims] innermost first, u32 ggml type, u64 offset)*, padding to `general.alignment`,
// then the data section; tensor offsets are relative to its start. Strings are u64 length + bytes.
//
// The file comes from outside, so every count and length is checked against the bytes left
// before anything is allocated, and every failure is a one-line turbine::Error naming the file
// and the key or tensor.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "../core/error.hpp"
#include "../core/mapped_file.hpp"
#include "../core/storage_type.hpp"
#include "../core/tensor.hpp"
#include "ggml_quants.hpp"

namespace turbine::io {

/// GGUF metadata value types (the ids are part of the file format).
enum class GgufType : uint32_t {
  Uint8 = 0, Int8 = 1, Uint16 = 2, Int16 = 3, Uint32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, Uint64 = 10, Int64 = 11, Float64 = 12,
};

constexpr const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::Uint8: return "uint8";
    case GgufType::Int8: return "int8";
    case GgufType::Uint16: return "uint16";
    case GgufType::Int16: return "int16";
    case GgufType::Uint32: return "uint32";
    case GgufType::Int32: return "int32";
    case GgufType::Float32: return "float32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::Uint64: return "uint64";
    case GgufType::Int64: return "int64";
    case GgufType::Float64: return "float64";
  }
  return "invalid";
}

constexpr bool gguf_is_integer(GgufType t) {
  switch (t) {
    case GgufType::Uint8: case GgufType::Int8: case GgufType::Uint16: case GgufType::Int16:
    case GgufType::Uint32: case GgufType::Int32: case GgufType::Uint64: case GgufType::Int64:
      return true;
    default: return false;
  }
}
constexpr bool gguf_is_float(GgufType t) { return t == GgufType::Float32 || t == GgufType::Float64; }

/// Bytes of one scalar in the file (0 for string and array, whose size varies).
constexpr size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::Uint8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::Uint16: case GgufType::Int16: return 2;
    case GgufType::Uint32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::Uint64: case GgufType::Int64: case GgufType::Float64: return 8;
    default: return 0;
  }
}

/// One metadata value. Integers and bools are widened to int64 (a uint64 keeps its bit pattern,
/// so get_int can refuse values above INT64_MAX), floats to double; arrays keep their element
/// type and hold one of the vectors.
struct GgufValue {
  /// What a value holds: a widened scalar, a string, or an array of one of them.
  using Payload = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                               std::vector<std::string>, std::vector<GgufValue>>;
  GgufType type = GgufType::Uint8;       ///< the type in the file
  GgufType elem_type = GgufType::Uint8;  ///< the element type (arrays only)
  Payload payload = int64_t{0};          ///< the value

  bool is_array() const { return type == GgufType::Array; }  ///< true for arrays
  /// "uint32", "string", "array of float32", ...
  std::string type_string() const {
    return is_array() ? std::string("array of ") + gguf_type_name(elem_type) : gguf_type_name(type);
  }
  /// Number of elements of an array (0 for scalars).
  size_t size() const {
    return std::visit([](const auto& v) -> size_t {
      if constexpr (requires { v.size(); } && !std::is_same_v<std::decay_t<decltype(v)>, std::string>)
        return v.size();
      else
        return 0;
    }, payload);
  }

  /// @name Constructors for writers and tests
  ///@{

  /// A value of the named GGUF type holding `v`. Integer scalars keep their declared width.
  static GgufValue integer(GgufType t, int64_t v) { return {t, GgufType::Uint8, v}; }
  static GgufValue u8(uint8_t v) { return integer(GgufType::Uint8, v); }
  static GgufValue i8(int8_t v) { return integer(GgufType::Int8, v); }
  static GgufValue u16(uint16_t v) { return integer(GgufType::Uint16, v); }
  static GgufValue i16(int16_t v) { return integer(GgufType::Int16, v); }
  static GgufValue u32(uint32_t v) { return integer(GgufType::Uint32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::Int32, v); }
  static GgufValue u64(uint64_t v) { return integer(GgufType::Uint64, static_cast<int64_t>(v)); }
  static GgufValue i64(int64_t v) { return integer(GgufType::Int64, v); }
  static GgufValue f32(float v) { return {GgufType::Float32, GgufType::Uint8, double{v}}; }
  static GgufValue f64(double v) { return {GgufType::Float64, GgufType::Uint8, v}; }
  static GgufValue boolean(bool v) { return {GgufType::Bool, GgufType::Uint8, int64_t{v}}; }
  static GgufValue string(std::string v) { return {GgufType::String, GgufType::Uint8, std::move(v)}; }
  static GgufValue int_array(GgufType elem, std::vector<int64_t> v) { return {GgufType::Array, elem, std::move(v)}; }
  static GgufValue float_array(GgufType elem, std::vector<double> v) { return {GgufType::Array, elem, std::move(v)}; }
  static GgufValue bool_array(const std::vector<bool>& v) {
    return {GgufType::Array, GgufType::Bool, std::vector<int64_t>(v.begin(), v.end())};
  }
  static GgufValue string_array(std::vector<std::string> v) {
    return {GgufType::Array, GgufType::String, std::move(v)};
  }
  static GgufValue array_of_arrays(std::vector<GgufValue> v) { return {GgufType::Array, GgufType::Array, std::move(v)}; }
  ///@}
};

namespace detail {

/// A name from the file, made safe for a one-line message: control and non-ASCII bytes escaped,
/// long names cut.
inline std::string printable(std::string_view s) {
  static constexpr size_t kMax = 120;
  std::string out;
  size_t i = 0;
  for (; i < s.size() && out.size() < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += char(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

}  // namespace detail

/// A GGUF file (v2 or v3), mapped: its metadata and its tensors, which point into the mapping.
/// Every read is bounds-checked; a malformed file throws Error naming the file and the field.
class GgufFile {
 public:
  static constexpr uint64_t kDefaultAlignment = 32;  ///< data alignment when general.alignment is absent
  static constexpr int kMaxDims = 4;                 ///< most dimensions a tensor may have
  static constexpr int kMaxArrayDepth = 8;           ///< deepest nesting of arrays accepted; real files use none

  /// Maps and parses the file at `path`.
  explicit GgufFile(const std::string& path) : path_(path), map_(path) {
    parse(map_.data(), map_.size());
  }

  /// Parses an in-memory copy (fuzzer, tests); `name` stands for the path in messages.
  static GgufFile from_bytes(std::vector<std::byte> bytes, std::string name) {
    return GgufFile(std::move(bytes), std::move(name));
  }

  /// Moves the file; tensor pointers stay valid, as the mapping or buffer moves whole.
  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;  ///< as the move constructor

  uint32_t version() const { return version_; }        ///< 2 or 3
  const std::string& path() const { return path_; }    ///< the path (or name) it was read from
  uint64_t alignment() const { return alignment_; }    ///< alignment of the tensor data
  size_t data_offset() const { return data_offset_; }  ///< start of the tensor data section

  // --- metadata ---
  /// Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  /// The value of `key`, or null if absent.
  const GgufValue* find(std::string_view key) const {
    const auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
  }

  /// @name Required metadata
  /// Each fails with an Error naming the key if it is absent or has another type.
  ///@{

  /// A string.
  const std::string& get_string(std::string_view key) const {
    return std::get<std::string>(get(key, GgufType::String, "a string").payload);
  }
  /// Any integer type, widened.
  int64_t get_int(std::string_view key) const { return to_int(key, get(key)); }
  /// float32 or float64 (integers are accepted too and converted).
  double get_float(std::string_view key) const { return to_float(key, get(key)); }
  /// A bool.
  bool get_bool(std::string_view key) const {
    return std::get<int64_t>(get(key, GgufType::Bool, "a bool").payload) != 0;
  }
  /// An array of strings.
  const std::vector<std::string>& get_string_array(std::string_view key) const {
    return std::get<std::vector<std::string>>(get_array(key, GgufType::String, "an array of strings").payload);
  }
  /// An array of float32 or float64, widened.
  const std::vector<double>& get_float_array(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_array() || !gguf_is_float(v.elem_type)) wrong_type(key, v, "an array of floats");
    return std::get<std::vector<double>>(v.payload);
  }
  /// Any integer element type; fails if a uint64 element exceeds INT64_MAX.
  const std::vector<int64_t>& get_int_array(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.is_array() || !gguf_is_integer(v.elem_type)) wrong_type(key, v, "an array of integers");
    const auto& ints = std::get<std::vector<int64_t>>(v.payload);
    if (v.elem_type == GgufType::Uint64 && std::any_of(ints.begin(), ints.end(), [](int64_t x) { return x < 0; }))
      fail(path_, ": metadata key '", detail::printable(key), "' has a uint64 element above INT64_MAX");
    return ints;
  }
  ///@}

  /// @name Optional metadata
  ///@{

  /// Absent: nullopt; present with the wrong type: Error, as for the get_ variants.
  std::optional<int64_t> find_int(std::string_view key) const {
    const GgufValue* v = find(key);
    return v ? std::optional<int64_t>(to_int(key, *v)) : std::nullopt;
  }
  std::optional<double> find_float(std::string_view key) const {
    const GgufValue* v = find(key);
    return v ? std::optional<double>(to_float(key, *v)) : std::nullopt;
  }
  std::optional<std::string> find_string(std::string_view key) const {
    return find(key) ? std::optional<std::string>(get_string(key)) : std::nullopt;
  }
  ///@}

  // --- tensors ---
  /// In file order; shape outermost first (GGUF ne = [576, 49152] -> shape {49152, 576}).
  const std::vector<RawTensor>& tensors() const { return tensors_; }
  /// The tensor called `name`, or null.
  const RawTensor* find_tensor(std::string_view name) const {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }

 private:
  GgufFile(std::vector<std::byte> bytes, std::string name) : path_(std::move(name)), bytes_(std::move(bytes)) {
    parse(bytes_.data(), bytes_.size());
  }

  // A bounds-checked little-endian cursor over the file.
  struct Cursor {
    const std::byte* data;
    size_t size;
    size_t pos = 0;
    const std::string* path;

    size_t left() const { return size - pos; }
    void need(size_t n, std::string_view what) const {
      if (n > left())
        fail(*path, ": truncated: ", what, " needs ", n, " bytes at offset ", pos, " but the file has ",
             left(), " left (", size, " bytes in all)");
    }
    template <typename T>
    T read(std::string_view what) {
      need(sizeof(T), what);
      T v;
      std::memcpy(&v, data + pos, sizeof(T));  // unaligned; the host is little-endian like GGUF
      pos += sizeof(T);
      return v;
    }
    std::string read_string(std::string_view what) {
      const uint64_t n = read<uint64_t>(what);
      if (n > left())
        fail(*path, ": ", what, " has length ", n, " at offset ", pos - 8, " but only ", left(),
             " bytes are left in the file");
      std::string s(reinterpret_cast<const char*>(data + pos), size_t(n));
      pos += size_t(n);
      return s;
    }
  };

  static std::string value_context(std::string_view key) {
    return turbine::detail::concat("metadata key '", detail::printable(key), "'");
  }

  void parse(const std::byte* data, size_t size) {
    Cursor c{data, size, 0, &path_};
    c.need(4, "the magic \"GGUF\"");
    if (std::memcmp(data, "GGUF", 4) != 0)
      fail(path_, ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
    c.pos = 4;
    version_ = c.read<uint32_t>("the version");
    if (version_ == 1)
      fail(path_, ": GGUF version 1 is not supported (turbine reads v2 and v3; re-convert the model with a current llama.cpp)");
    if (version_ != 2 && version_ != 3) {
      if ((version_ & 0xffffu) == 0 && (version_ >> 16) != 0)
        fail(path_, ": big-endian GGUF files are not supported");
      fail(path_, ": unsupported GGUF version ", version_, " (turbine reads v2 and v3)");
    }
    const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
    const uint64_t n_kv = c.read<uint64_t>("the metadata count");
    // Smallest possible entries: key = 8-byte length + u32 type + 1-byte value; tensor info =
    // 8-byte name length + u32 n_dims + u32 type + u64 offset. Bounds the reservations below.
    static constexpr uint64_t kMinKv = 13, kMinTensorInfo = 24;
    if (n_kv > c.left() / kMinKv)
      fail(path_, ": header claims ", n_kv, " metadata entries, more than the ", c.left(), " bytes left can hold");
    if (n_tensors > c.left() / kMinTensorInfo)
      fail(path_, ": header claims ", n_tensors, " tensors, more than the ", c.left(), " bytes left can hold");

    keys_.reserve(size_t(n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key = c.read_string(turbine::detail::concat("the key of metadata entry ", i));
      const auto type = c.read<uint32_t>(turbine::detail::concat("the type of ", value_context(key)));
      GgufValue value = parse_value(c, type, key, 0);
      if (kv_.count(key)) fail(path_, ": duplicate ", value_context(key));
      keys_.push_back(key);
      kv_.emplace(std::move(key), std::move(value));
    }
    if (const GgufValue* a = find("general.alignment")) {
      const int64_t align = to_int("general.alignment", *a);
      if (align <= 0 || (align & (align - 1)) != 0 || align > (int64_t{1} << 30))
        fail(path_, ": metadata key 'general.alignment' is ", align, ", not a power of two in [1, 2^30]");
      alignment_ = uint64_t(align);
    }

    struct Info {
      uint32_t ggml_type;
      uint64_t offset;
    };
    std::vector<Info> infos;
    infos.reserve(size_t(n_tensors));
    tensors_.reserve(size_t(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      RawTensor t;
      t.name = c.read_string(turbine::detail::concat("the name of tensor ", i));
      const std::string ctx = turbine::detail::concat("tensor '", detail::printable(t.name), "'");
      const auto n_dims = c.read<uint32_t>(turbine::detail::concat("the dimension count of ", ctx));
      if (n_dims > uint32_t(kMaxDims))
        fail(path_, ": ", ctx, " has ", n_dims, " dimensions (at most ", kMaxDims, " are allowed)");
      t.shape.resize(n_dims);
      for (uint32_t d = 0; d < n_dims; ++d) {
        const auto ne = c.read<uint64_t>(turbine::detail::concat("dimension ", d, " of ", ctx));
        if (ne == 0 || ne > uint64_t(INT64_MAX))
          fail(path_, ": ", ctx, " has invalid dimension ", d, " = ", ne, " (must be positive)");
        t.shape[n_dims - 1 - d] = int64_t(ne);  // GGUF lists the innermost dimension first
      }
      const auto ggml_type = c.read<uint32_t>(turbine::detail::concat("the type of ", ctx));
      const auto offset = c.read<uint64_t>(turbine::detail::concat("the data offset of ", ctx));
      if (tensor_index_.count(t.name)) fail(path_, ": duplicate ", ctx);
      tensor_index_.emplace(t.name, tensors_.size());
      t.file = path_;
      tensors_.push_back(std::move(t));
      infos.push_back({ggml_type, offset});
    }

    data_offset_ = size_t((uint64_t(c.pos) + alignment_ - 1) / alignment_ * alignment_);
    for (size_t i = 0; i < tensors_.size(); ++i) locate(tensors_[i], infos[i].ggml_type, infos[i].offset, data, size);
  }

  // Checks type, shape and data range of a tensor and points it into the data section.
  void locate(RawTensor& t, uint32_t ggml_type, uint64_t offset, const std::byte* data, size_t size) const {
    const std::string ctx = turbine::detail::concat("tensor '", detail::printable(t.name), "'");
    const auto type = storage_type_from_ggml(ggml_type);
    if (!type) {
      const std::string name = ggml_type_name(ggml_type);
      fail(path_, ": ", ctx, " has ",
           name.rfind("type ", 0) == 0 ? turbine::detail::concat("unknown ggml type ", ggml_type)
                                       : turbine::detail::concat("type ", name, " (ggml type ", ggml_type, ")"),
           ", which turbine does not support (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS; re-quantize the model to one of them with llama.cpp)");
    }
    t.type = *type;
    const auto info = storage_info(t.type);
    uint64_t numel = 1;
    for (const int64_t ne : t.shape)
      if (__builtin_mul_overflow(numel, uint64_t(ne), &numel) || numel > uint64_t(INT64_MAX))
        fail(path_, ": ", ctx, " has shape ", t.shape_string(), " whose element count overflows");
    if (t.cols() % info.block_elems != 0)
      fail(path_, ": ", ctx, " of type ", info.name, " has innermost dimension ", t.cols(),
           ", not a multiple of the block size ", info.block_elems);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel / uint64_t(info.block_elems), uint64_t(info.block_bytes), &nbytes))
      fail(path_, ": ", ctx, " has shape ", t.shape_string(), " whose byte size overflows");
    if (offset % alignment_ != 0)
      fail(path_, ": ", ctx, " has data offset ", offset, ", not a multiple of the alignment ", alignment_);
    const uint64_t avail = data_offset_ <= size ? size - data_offset_ : 0;
    if (offset > avail || nbytes > avail - offset)
      fail(path_, ": ", ctx, " data (", nbytes, " bytes at offset ", offset, " of the data section at ", data_offset_,
           ") lies past the end of the file (", size, " bytes; is it truncated?)");
    t.data = data + data_offset_ + offset;
    t.nbytes = size_t(nbytes);
  }

  // n elements of file type T widened to U; the caller has checked that n * sizeof(T) bytes are left.
  template <typename T, typename U>
  static std::vector<U> read_scalars(Cursor& c, uint64_t n) {
    c.need(size_t(n) * sizeof(T), "an array");
    std::vector<U> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) {
      T x;
      std::memcpy(&x, c.data + c.pos + i * sizeof(T), sizeof(T));
      v[i] = static_cast<U>(x);
    }
    c.pos += size_t(n) * sizeof(T);
    return v;
  }

  GgufValue parse_value(Cursor& c, uint32_t type_id, const std::string& key, int depth) {
    if (type_id > uint32_t(GgufType::Float64))
      fail(path_, ": ", value_context(key), " has invalid value type ", type_id);
    const auto type = GgufType(type_id);
    const std::string what = value_context(key);
    switch (type) {
      case GgufType::Uint8: return GgufValue::integer(type, c.read<uint8_t>(what));
      case GgufType::Int8: return GgufValue::integer(type, c.read<int8_t>(what));
      case GgufType::Uint16: return GgufValue::integer(type, c.read<uint16_t>(what));
      case GgufType::Int16: return GgufValue::integer(type, c.read<int16_t>(what));
      case GgufType::Uint32: return GgufValue::integer(type, c.read<uint32_t>(what));
      case GgufType::Int32: return GgufValue::integer(type, c.read<int32_t>(what));
      case GgufType::Uint64: return GgufValue::u64(c.read<uint64_t>(what));
      case GgufType::Int64: return GgufValue::integer(type, c.read<int64_t>(what));
      case GgufType::Float32: return GgufValue::f32(c.read<float>(what));
      case GgufType::Float64: return GgufValue::f64(c.read<double>(what));
      case GgufType::Bool: {
        const auto b = c.read<uint8_t>(what);
        if (b > 1) fail(path_, ": ", what, " is a bool with invalid value ", int(b));
        return GgufValue::boolean(b != 0);
      }
      case GgufType::String: return GgufValue::string(c.read_string(what));
      case GgufType::Array: return parse_array(c, key, depth);
    }
    fail(path_, ": ", what, " has invalid value type ", type_id);
  }

  GgufValue parse_array(Cursor& c, const std::string& key, int depth) {
    const std::string what = value_context(key);
    if (depth >= kMaxArrayDepth) fail(path_, ": ", what, " nests arrays deeper than ", kMaxArrayDepth, " levels");
    const auto elem_id = c.read<uint32_t>(what);
    if (elem_id > uint32_t(GgufType::Float64)) fail(path_, ": ", what, " is an array of invalid type ", elem_id);
    const auto elem = GgufType(elem_id);
    const uint64_t n = c.read<uint64_t>(what);
    // A string is at least its 8-byte length, a nested array its 4-byte type and 8-byte count.
    const size_t min_size = elem == GgufType::String ? 8 : elem == GgufType::Array ? 12 : gguf_scalar_size(elem);
    if (n > c.left() / min_size)
      fail(path_, ": ", what, " claims ", n, " elements of type ", gguf_type_name(elem), " but only ", c.left(),
           " bytes are left in the file");
    GgufValue out{GgufType::Array, elem, int64_t{0}};
    if (elem == GgufType::String) {
      std::vector<std::string> v;
      v.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) v.push_back(c.read_string(what));
      out.payload = std::move(v);
    } else if (elem == GgufType::Array) {
      std::vector<GgufValue> v;
      v.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) v.push_back(parse_array(c, key, depth + 1));
      out.payload = std::move(v);
    } else if (elem == GgufType::Float32) {
      out.payload = read_scalars<float, double>(c, n);
    } else if (elem == GgufType::Float64) {
      out.payload = read_scalars<double, double>(c, n);
    } else {
      std::vector<int64_t> v;
      switch (elem) {
        case GgufType::Uint8: v = read_scalars<uint8_t, int64_t>(c, n); break;
        case GgufType::Int8: v = read_scalars<int8_t, int64_t>(c, n); break;
        case GgufType::Uint16: v = read_scalars<uint16_t, int64_t>(c, n); break;
        case GgufType::Int16: v = read_scalars<int16_t, int64_t>(c, n); break;
        case GgufType::Uint32: v = read_scalars<uint32_t, int64_t>(c, n); break;
        case GgufType::Int32: v = read_scalars<int32_t, int64_t>(c, n); break;
        case GgufType::Uint64: v = read_scalars<uint64_t, int64_t>(c, n); break;  // bit pattern kept
        case GgufType::Int64: v = read_scalars<int64_t, int64_t>(c, n); break;
        default:  // Bool
          v = read_scalars<uint8_t, int64_t>(c, n);
          if (std::any_of(v.begin(), v.end(), [](int64_t b) { return b > 1; }))
            fail(path_, ": ", what, " is an array of bool with a value other than 0 or 1");
      }
      out.payload = std::move(v);
    }
    return out;
  }

  const GgufValue& get(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail(path_, ": missing metadata key '", detail::printable(key), "'");
    return *v;
  }
  const GgufValue& get(std::string_view key, GgufType type, const char* expected) const {
    const GgufValue& v = get(key);
    if (v.type != type) wrong_type(key, v, expected);
    return v;
  }
  const GgufValue& get_array(std::string_view key, GgufType elem, const char* expected) const {
    const GgufValue& v = get(key);
    if (!v.is_array() || v.elem_type != elem) wrong_type(key, v, expected);
    return v;
  }
  [[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, const char* expected) const {
    fail(path_, ": metadata key '", detail::printable(key), "' is ", v.type_string(), ", expected ", expected);
  }
  int64_t to_int(std::string_view key, const GgufValue& v) const {
    if (!gguf_is_integer(v.type)) wrong_type(key, v, "an integer");
    const int64_t x = std::get<int64_t>(v.payload);
    if (v.type == GgufType::Uint64 && x < 0)
      fail(path_, ": metadata key '", detail::printable(key), "' = ", uint64_t(x), " is above INT64_MAX");
    return x;
  }
  double to_float(std::string_view key, const GgufValue& v) const {
    if (gguf_is_float(v.type)) return std::get<double>(v.payload);
    if (gguf_is_integer(v.type)) return double(to_int(key, v));
    wrong_type(key, v, "a float");
  }

  std::string path_;
  MappedFile map_;               // the file, when opened from a path
  std::vector<std::byte> bytes_;  // the bytes, when made with from_bytes
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<RawTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace turbine::io
