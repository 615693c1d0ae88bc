#pragma once
// Safetensors reader: one memory-mapped file (SafetensorsFile) or a Hugging Face model directory,
// possibly sharded through model.safetensors.index.json (SafetensorsModel). Tensors are views into
// the mapping, never copies.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// and then the data section, which the offsets index from its first byte.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/mapped_file.hpp"
#include "../core/storage_type.hpp"
#include "../core/tensor.hpp"

namespace turbine::io {

// Tensors are used in place, and safetensors stores them little-endian.
static_assert(std::endian::native == std::endian::little, "turbine reads safetensors in place");

/// One tensor of a safetensors file, whatever its dtype: AWQ checkpoints keep packed int32
/// `qweight` and `qzeros` next to fp16 scales, so non-float tensors stay reachable here.
struct SafetensorsEntry {
  std::string name;                 ///< the tensor's name
  std::string dtype;                ///< as written in the file: "F32", "BF16", "I32", ...
  std::vector<int64_t> shape;       ///< outermost first
  const std::byte* data = nullptr;  ///< the first byte, inside the mapping
  size_t nbytes = 0;                ///< bytes of data
};

namespace detail {

struct SafetensorsDtype {
  std::string_view name;
  size_t bytes;
};
// Every whole-byte dtype of the format; sub-byte ones (F4, F6_*) are not supported.
inline constexpr SafetensorsDtype kSafetensorsDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},     {"C64", 8}};

// The reference implementation refuses larger headers too; it bounds what a bad file can allocate.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

/// A name from a file, safe to put in a one-line error: control bytes escaped, length bounded.
inline std::string printable_name(std::string_view s, size_t max_len = 120) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  for (; i < s.size() && out.size() < max_len; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  RawTensor t;
  t.shape = shape;
  return t.shape_string();
}

/// A JSON value that must be a non-negative integer fitting in int64; nullopt otherwise.
inline std::optional<uint64_t> json_index(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= uint64_t(INT64_MAX)) return u;
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i >= 0) return uint64_t(i);
  }
  return std::nullopt;
}

/// Parses JSON text; syntax errors become turbine::Error so callers (and fuzzers) see one type.
inline nlohmann::json parse_json_or_fail(std::string_view text, const std::string& file) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": invalid JSON (", e.what(), ")");
  }
}

}  // namespace detail

/// Bytes per element of a safetensors dtype; 0 if turbine does not know it.
inline size_t safetensors_dtype_bytes(std::string_view dtype) {
  for (const auto& d : detail::kSafetensorsDtypes)
    if (d.name == dtype) return d.bytes;
  return 0;
}

/// The StorageType of the float dtypes turbine computes with (F32, F16, BF16); nullopt otherwise.
inline std::optional<StorageType> safetensors_float_type(std::string_view dtype) {
  if (dtype == "F32") return StorageType::F32;
  if (dtype == "F16") return StorageType::F16;
  if (dtype == "BF16") return StorageType::BF16;
  return std::nullopt;
}

/// One .safetensors file, mapped (or held in memory by from_bytes) and fully validated on open.
class SafetensorsFile {
 public:
  /// Maps and validates the file at `path`.
  explicit SafetensorsFile(const std::string& path) : path_(path), map_(path) {
    parse(map_.data(), map_.size());
  }
  /// Parses a file image held in memory; `name` stands for the path in error messages.
  static SafetensorsFile from_bytes(std::vector<std::byte> bytes, std::string name) {
    SafetensorsFile f;
    f.path_ = std::move(name);
    f.bytes_ = std::move(bytes);  // entries point into this buffer; moving the vector keeps it
    f.parse(f.bytes_.data(), f.bytes_.size());
    return f;
  }
  /// Moves the file; entries stay valid, as the mapping or buffer moves whole.
  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;  ///< as the move constructor
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }  ///< the path (or name) it was read from
  /// Every tensor, sorted by name.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  /// The string map stored under `__metadata__` (often {"format": "pt"}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The tensor called `name`, any dtype; nullptr if the file has none.
  const SafetensorsEntry* find_entry(std::string_view name) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [](const SafetensorsEntry& e, std::string_view n) { return e.name < n; });
    return it != entries_.end() && it->name == name ? &*it : nullptr;
  }

  /// A float tensor (F32, F16, BF16) as a RawTensor; nullopt for other dtypes.
  std::optional<RawTensor> as_raw(const SafetensorsEntry& e) const {
    const auto type = safetensors_float_type(e.dtype);
    if (!type) return std::nullopt;
    return RawTensor{e.name, *type, e.shape, e.data, e.nbytes, path_};
  }

  /// The float tensor called `name`; fails if it is absent or not F32/F16/BF16.
  RawTensor tensor(std::string_view name) const {
    const SafetensorsEntry* e = find_entry(name);
    if (!e) fail(path_, ": no tensor '", detail::printable_name(name), "'");
    auto raw = as_raw(*e);
    if (!raw) fail_not_float(*e);
    return *raw;
  }

  /// Throws the Error for a tensor that is not F32, F16 or BF16.
  [[noreturn]] void fail_not_float(const SafetensorsEntry& e) const {
    fail(path_, ": tensor '", detail::printable_name(e.name), "': dtype ", e.dtype,
         " cannot be loaded as float weights (supported: F32, F16, BF16)");
  }

 private:
  SafetensorsFile() = default;

  void parse(const std::byte* p, size_t size) {
    check(size >= 8, path_, ": too small for a safetensors file (", size, " bytes)");
    uint64_t header_len = 0;
    for (int i = 0; i < 8; ++i) header_len |= uint64_t(std::to_integer<uint8_t>(p[i])) << (8 * i);
    check(header_len <= detail::kMaxSafetensorsHeaderBytes, path_, ": header length ", header_len,
          " exceeds the limit of ", detail::kMaxSafetensorsHeaderBytes, " bytes");
    check(header_len <= size - 8, path_, ": header length ", header_len,
          " runs past the end of the file (", size, " bytes)");
    const std::string_view text(reinterpret_cast<const char*>(p + 8), header_len);
    const nlohmann::json header = detail::parse_json_or_fail(text, path_ + ": header");
    check(header.is_object(), path_, ": header is not a JSON object");

    const std::byte* data = p + 8 + header_len;
    const size_t data_size = size - 8 - header_len;
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        parse_metadata(value);
      } else {
        entries_.push_back(parse_entry(key, value, data, data_size));
      }
    }
    // nlohmann keeps object keys sorted, so entries_ is sorted by name for find_entry().
    check_no_overlaps(data);
  }

  void parse_metadata(const nlohmann::json& v) {
    check(v.is_object(), path_, ": __metadata__ is not a JSON object");
    for (const auto& [key, value] : v.items()) {
      check(value.is_string(), path_, ": __metadata__ value of '", detail::printable_name(key),
            "' is not a string");
      metadata_.emplace(key, value.get<std::string>());
    }
  }

  SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& v,
                               const std::byte* data, size_t data_size) const {
    const std::string where = path_ + ": tensor '" + detail::printable_name(name) + "': ";
    check(v.is_object(), where, "entry is not a JSON object");
    SafetensorsEntry e;
    e.name = name;

    const auto dtype = v.find("dtype");
    check(dtype != v.end() && dtype->is_string(), where, "'dtype' is missing or not a string");
    e.dtype = dtype->get<std::string>();
    const size_t elem_bytes = safetensors_dtype_bytes(e.dtype);
    check(elem_bytes != 0, where, "unknown dtype '", detail::printable_name(e.dtype), "'");

    const auto shape = v.find("shape");
    check(shape != v.end() && shape->is_array(), where, "'shape' is missing or not an array");
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *shape) {
      const auto dim = detail::json_index(d);
      check(dim.has_value(), where, "'shape' holds something other than a non-negative integer");
      e.shape.push_back(int64_t(*dim));
      overflow = overflow || __builtin_mul_overflow(numel, *dim, &numel);
    }
    uint64_t expected = 0;
    overflow = overflow || __builtin_mul_overflow(numel, uint64_t(elem_bytes), &expected);
    check(!overflow, where, "shape ", detail::shape_string(e.shape), " is too large");

    const auto offsets = v.find("data_offsets");
    check(offsets != v.end() && offsets->is_array() && offsets->size() == 2, where,
          "'data_offsets' is missing or not a [begin, end] pair");
    const auto begin = detail::json_index((*offsets)[0]);
    const auto end = detail::json_index((*offsets)[1]);
    check(begin && end, where, "'data_offsets' are not non-negative integers");
    check(*begin <= *end, where, "data_offsets [", *begin, ", ", *end, "] are out of order");
    check(*end <= data_size, where, "data_offsets [", *begin, ", ", *end,
          "] run past the end of the data section (", data_size, " bytes)");
    check(*end - *begin == expected, where, "data_offsets [", *begin, ", ", *end, "] hold ",
          *end - *begin, " bytes but dtype ", e.dtype, " with shape ",
          detail::shape_string(e.shape), " needs ", expected);
    e.data = data + *begin;
    e.nbytes = size_t(expected);
    return e;
  }

  // Two tensors sharing bytes means a corrupted header: writes through one would alter the other.
  void check_no_overlaps(const std::byte* data) const {
    std::vector<const SafetensorsEntry*> by_offset;
    for (const auto& e : entries_) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(),
              [](auto* a, auto* b) { return a->data != b->data ? a->data < b->data : a->nbytes < b->nbytes; });
    const SafetensorsEntry* furthest = nullptr;  // the tensor that reaches furthest so far
    for (const auto* e : by_offset) {
      if (furthest && e->data < furthest->data + furthest->nbytes)
        fail(path_, ": tensor '", detail::printable_name(e->name), "': data at offset ", e->data - data,
             " overlaps tensor '", detail::printable_name(furthest->name), "'");
      if (!furthest || e->data + e->nbytes > furthest->data + furthest->nbytes) furthest = e;
    }
  }

  std::string path_;
  MappedFile map_;
  std::vector<std::byte> bytes_;  // the file image when made by from_bytes
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Reads the `weight_map` of a model.safetensors.index.json: tensor name -> shard file name.
/// Shard names must be plain file names, so an index cannot point outside its directory.
inline std::map<std::string, std::string> parse_safetensors_index(const nlohmann::json& index,
                                                                  const std::string& file) {
  check(index.is_object(), file, ": not a JSON object");
  const auto wm = index.find("weight_map");
  check(wm != index.end() && wm->is_object(), file, ": 'weight_map' is missing or not an object");
  std::map<std::string, std::string> out;
  for (const auto& [name, shard] : wm->items()) {
    check(shard.is_string(), file, ": weight_map: tensor '", detail::printable_name(name),
          "': shard is not a string");
    const auto s = shard.get<std::string>();
    const bool plain = !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
                       s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
    check(plain, file, ": weight_map: tensor '", detail::printable_name(name), "': shard '",
          detail::printable_name(s), "' is not a file name in the model directory");
    out.emplace(name, s);
  }
  return out;
}

/// The weights of a Hugging Face model: a directory with model.safetensors or a sharded
/// model.safetensors.index.json (or the path of either file). Each shard is mapped once.
class SafetensorsModel {
 public:
  /// Opens the directory or file `path` and every shard it names.
  explicit SafetensorsModel(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      const fs::path dir(path);
      if (fs::exists(dir / "model.safetensors.index.json", ec)) {
        open_index((dir / "model.safetensors.index.json").string());
      } else if (fs::exists(dir / "model.safetensors", ec)) {
        add_file((dir / "model.safetensors").string());
      } else {
        fail(path, ": no model.safetensors or model.safetensors.index.json in this directory");
      }
    } else if (path.ends_with(".index.json")) {
      open_index(path);
    } else {
      add_file(path);
    }
  }

  const std::string& path() const { return path_; }       ///< the path it was opened with
  size_t num_files() const { return files_.size(); }      ///< shards (1 for a single file)

  /// The float tensor called `name`; nullptr if the model has none. A tensor stored as a
  /// non-float dtype fails (naming file, tensor and dtype) instead of being misread.
  const RawTensor* find(std::string_view name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return nullptr;
    if (!it->second.raw) it->second.file->fail_not_float(*it->second.entry);
    return &*it->second.raw;
  }
  /// Like find(), but a missing tensor is an error.
  const RawTensor& require(std::string_view name) const {
    const RawTensor* t = find(name);
    if (!t) fail(path_, ": missing tensor '", detail::printable_name(name), "'");
    return *t;
  }
  /// The tensor called `name` in any dtype (e.g. I32 AWQ `qweight`); nullptr if absent.
  const SafetensorsEntry* find_entry(std::string_view name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : it->second.entry;
  }
  /// The file that holds `name` (for error messages); empty if absent.
  std::string file_of(std::string_view name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? std::string() : it->second.file->path();
  }
  /// Every tensor name, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, slot] : tensors_) out.push_back(name);
    return out;
  }

 private:
  struct Slot {
    const SafetensorsFile* file;
    const SafetensorsEntry* entry;
    std::optional<RawTensor> raw;  // set for float dtypes
  };

  const SafetensorsFile& add_file(const std::string& file) {
    // unique_ptr: slots point at files and their entries, which must not move.
    files_.push_back(std::make_unique<SafetensorsFile>(file));
    const SafetensorsFile& f = *files_.back();
    for (const auto& e : f.entries()) {
      auto [it, inserted] = tensors_.emplace(e.name, Slot{&f, &e, f.as_raw(e)});
      check(inserted, f.path(), ": tensor '", detail::printable_name(e.name), "' is also in ",
            it->second.file->path());
    }
    return f;
  }

  void open_index(const std::string& index_path) {
    namespace fs = std::filesystem;
    const MappedFile m(index_path);
    check(m.size() <= detail::kMaxSafetensorsHeaderBytes, index_path, ": ", m.size(),
          " bytes is too large for an index");
    const std::string_view text(reinterpret_cast<const char*>(m.data()), m.size());
    const auto weight_map = parse_safetensors_index(detail::parse_json_or_fail(text, index_path), index_path);
    check(!weight_map.empty(), index_path, ": weight_map lists no tensors");

    std::map<std::string, const SafetensorsFile*> shards;
    const fs::path dir = fs::path(index_path).parent_path();
    for (const auto& [name, shard] : weight_map) {
      auto it = shards.find(shard);
      if (it == shards.end()) {
        const fs::path shard_path = dir / shard;
        std::error_code ec;
        check(fs::is_regular_file(shard_path, ec), index_path, ": shard '", detail::printable_name(shard),
              "' (listed for tensor '", detail::printable_name(name), "') is missing");
        it = shards.emplace(shard, &add_file(shard_path.string())).first;
      }
      check(it->second->find_entry(name) != nullptr, index_path, ": tensor '", detail::printable_name(name),
            "' is listed in shard '", detail::printable_name(shard), "', which does not contain it");
    }
  }

  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Slot, std::less<>> tensors_;
};

}  // namespace turbine::io
