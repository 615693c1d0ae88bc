#pragma once
// Writes tensors to .safetensors files that Hugging Face tools (and SafetensorsFile) read: one
// file, or a model directory sharded like save_pretrained (model-00001-of-0000N.safetensors and
// model.safetensors.index.json).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "safetensors.hpp"

namespace turbine::io {

/// Builds a safetensors file (or a sharded set with its index) from tensors: for tests and
/// turbine's quantized models.
class SafetensorsWriter {
 public:
  /// Adds a tensor and copies its bytes. `dtype` is a safetensors name ("F32", "BF16", "I32", ...);
  /// `shape` is outermost first.
  void add(std::string name, std::string_view dtype, std::vector<int64_t> shape,
           std::span<const std::byte> bytes) {
    Tensor& t = push(std::move(name), dtype, std::move(shape), bytes.size());
    t.owned.assign(bytes.begin(), bytes.end());
  }
  /// Adds a tensor without copying: `bytes` must stay alive until the last write (the quantizer
  /// writes weights it already holds).
  void add_view(std::string name, std::string_view dtype, std::vector<int64_t> shape,
                std::span<const std::byte> bytes) {
    push(std::move(name), dtype, std::move(shape), bytes.size()).view = bytes.data();
  }
  /// Adds a tensor from typed values (float for F32, uint16_t bits for F16/BF16, int32_t for I32).
  template <typename T>
  void add_values(std::string name, std::string_view dtype, std::vector<int64_t> shape,
                  const std::vector<T>& values) {
    check(safetensors_dtype_bytes(dtype) == sizeof(T), "safetensors writer: tensor '",
          detail::printable_name(name), "': dtype ", detail::printable_name(dtype), " does not hold ",
          sizeof(T), "-byte values");
    add(std::move(name), dtype, std::move(shape), std::as_bytes(std::span<const T>(values)));
  }
  /// Stored under `__metadata__` in every file written.
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  size_t size() const { return tensors_.size(); }  ///< tensors added

  /// The whole file image in memory (tests and the fuzzer use it).
  std::vector<std::byte> to_bytes() const {
    std::vector<std::byte> out;
    emit(all(), [&](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      out.insert(out.end(), b, b + n);
    });
    return out;
  }

  /// Writes every tensor to one file (through a temporary, so a failed write leaves no half file).
  void write(const std::string& path) const { write_file(path, all()); }

  /// Writes a model directory: `model.safetensors` if the tensors fit in `max_shard_bytes`
  /// (0: no limit), else shards in the order the tensors were added plus the index, as
  /// save_pretrained does. Returns the paths written.
  std::vector<std::string> write_model(const std::string& dir, size_t max_shard_bytes = 0) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    check(!ec, dir, ": cannot create directory (", ec.message(), ")");

    std::vector<std::vector<size_t>> shards(1);
    size_t shard_bytes = 0, total = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const size_t n = tensors_[i].nbytes;
      if (max_shard_bytes && !shards.back().empty() && shard_bytes + n > max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().push_back(i);
      shard_bytes += n;
      total += n;
    }
    if (shards.size() == 1) {
      const std::string path = (fs::path(dir) / "model.safetensors").string();
      write_file(path, shards[0]);
      return {path};
    }

    std::vector<std::string> written;
    nlohmann::json weight_map = nlohmann::json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
      char shard_name[64];
      std::snprintf(shard_name, sizeof shard_name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      written.push_back((fs::path(dir) / shard_name).string());
      write_file(written.back(), shards[s]);
      for (size_t i : shards[s]) weight_map[tensors_[i].name] = shard_name;
    }
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    written.push_back((fs::path(dir) / "model.safetensors.index.json").string());
    const std::string text = dump(index, 2) + "\n";
    write_atomically(written.back(), [&](auto&& sink) { sink(text.data(), text.size()); });
    return written;
  }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    size_t nbytes = 0;
    const std::byte* view = nullptr;
    std::vector<std::byte> owned;
    const std::byte* bytes() const { return view ? view : owned.data(); }
  };

  Tensor& push(std::string name, std::string_view dtype, std::vector<int64_t> shape, size_t nbytes) {
    const std::string where = "safetensors writer: tensor '" + detail::printable_name(name) + "': ";
    check(name != "__metadata__", where, "the name is reserved for metadata");
    check(!index_.contains(name), where, "added twice");
    const size_t elem = safetensors_dtype_bytes(dtype);
    check(elem != 0, where, "unknown dtype '", detail::printable_name(dtype), "'");
    uint64_t expected = elem;
    for (int64_t d : shape) {
      check(d >= 0, where, "negative dimension in shape ", detail::shape_string(shape));
      check(!__builtin_mul_overflow(expected, uint64_t(d), &expected), where, "shape ",
            detail::shape_string(shape), " is too large");
    }
    check(expected == nbytes, where, nbytes, " bytes given but dtype ", dtype, " with shape ",
          detail::shape_string(shape), " needs ", expected);
    index_.emplace(name, tensors_.size());
    tensors_.push_back(Tensor{std::move(name), std::string(dtype), std::move(shape), nbytes, nullptr, {}});
    return tensors_.back();
  }

  std::vector<size_t> all() const {
    std::vector<size_t> v(tensors_.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = i;
    return v;
  }

  static std::string dump(const nlohmann::json& j, int indent = -1) {
    try {
      return j.dump(indent);
    } catch (const nlohmann::json::exception& e) {  // a name that is not valid UTF-8
      fail("safetensors writer: cannot encode header (", e.what(), ")");
    }
  }

  // Streams one file image of the tensors `which` into `sink(ptr, n)`.
  template <typename Sink>
  void emit(std::vector<size_t> which, Sink&& sink) const {
    // Widest elements first keeps every tensor aligned to its element size without padding
    // between tensors (the format forbids holes); this is what the Python writer does.
    std::stable_sort(which.begin(), which.end(), [&](size_t a, size_t b) {
      return safetensors_dtype_bytes(tensors_[a].dtype) > safetensors_dtype_bytes(tensors_[b].dtype);
    });
    nlohmann::json header = nlohmann::json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    size_t offset = 0;
    for (size_t i : which) {
      const Tensor& t = tensors_[i];
      header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
      offset += t.nbytes;
    }
    std::string text = dump(header);
    text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
    sink(len, 8);
    sink(text.data(), text.size());
    for (size_t i : which) sink(tensors_[i].bytes(), tensors_[i].nbytes);
  }

  void write_file(const std::string& path, const std::vector<size_t>& which) const {
    write_atomically(path, [&](auto&& sink) { emit(which, sink); });
  }

  template <typename Body>
  static void write_atomically(const std::string& path, Body&& body) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail(tmp, ": cannot create (", std::strerror(errno), ")");
    bool ok = true;
    body([&](const void* p, size_t n) { ok = ok && (n == 0 || std::fwrite(p, 1, n, f) == n); });
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      fail(path, ": write failed (", std::strerror(err), ")");
    }
  }

  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace turbine::io
