// libFuzzer target for the GGUF reader: parse, read every metadata value through the typed
// getters, and dequantize the first row of every tensor. turbine::Error is the only acceptable
// way to reject input; anything else (crash, sanitizer report, other exception, hang) is a bug.
// See docs/FUZZING.md for how to build, seed and run it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <turbine/io/ggml_quants.hpp>
#include <turbine/io/gguf.hpp>

namespace {

template <typename F>
void ignore_error(F&& f) {
  try {
    f();
  } catch (const turbine::Error&) {
  }
}

volatile double g_sink;  // keeps results alive so the reads are not optimized away

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using turbine::io::GgufFile;
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    const GgufFile f = GgufFile::from_bytes(std::move(bytes), "fuzz.gguf");
    double acc = f.version() + double(f.alignment()) + double(f.data_offset());
    for (const std::string& key : f.keys()) {
      const auto* v = f.find(key);
      if (!v) __builtin_trap();  // every listed key must be found
      acc += double(v->size()) + double(v->type_string().size());
      ignore_error([&] { acc += double(f.get_int(key)); });
      ignore_error([&] { acc += f.get_float(key); });
      ignore_error([&] { acc += double(f.get_string(key).size()); });
      ignore_error([&] { acc += f.get_bool(key); });
      ignore_error([&] { acc += double(f.get_string_array(key).size()); });
      ignore_error([&] { acc += double(f.get_float_array(key).size()); });
      ignore_error([&] { acc += double(f.get_int_array(key).size()); });
      ignore_error([&] { acc += double(f.find_int(key).value_or(0)); });
    }
    std::vector<float> row;
    for (const auto& t : f.tensors()) {
      if (f.find_tensor(t.name) != &t) __builtin_trap();  // names are unique and indexed
      row.assign(size_t(t.cols()), 0.0f);
      turbine::io::dequantize_row(t, 0, row.data());
      for (const float x : row) acc += double(x);
    }
    g_sink = acc;
  } catch (const turbine::Error&) {
  }
  return 0;
}
