// libFuzzer target for io/safetensors.hpp: any bytes either parse into tensors whose views lie
// inside the input, or raise turbine::Error. Inputs that parse are written back through
// SafetensorsWriter and must read back identically. Inputs starting with '{' also go through the
// model.safetensors.index.json parser. See docs/FUZZING.md.
#include <cstdlib>
#include <cstring>
#include <span>

#include <turbine/io/safetensors.hpp>
#include <turbine/io/safetensors_writer.hpp>

namespace {

void check_same(const turbine::io::SafetensorsFile& a, const turbine::io::SafetensorsFile& b) {
  if (a.entries().size() != b.entries().size() || a.metadata() != b.metadata()) std::abort();
  for (size_t i = 0; i < a.entries().size(); ++i) {
    const auto& x = a.entries()[i];
    const auto& y = b.entries()[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.nbytes != y.nbytes) std::abort();
    if (x.nbytes && std::memcmp(x.data, y.data, x.nbytes) != 0) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == '{') {
    try {
      const std::string_view text(reinterpret_cast<const char*>(data), size);
      turbine::io::parse_safetensors_index(turbine::io::detail::parse_json_or_fail(text, "fuzz.index.json"),
                                       "fuzz.index.json");
    } catch (const turbine::Error&) {
    }
    return 0;
  }

  std::vector<std::byte> bytes(size);
  if (size) std::memcpy(bytes.data(), data, size);
  std::optional<turbine::io::SafetensorsFile> file;
  try {
    file.emplace(turbine::io::SafetensorsFile::from_bytes(std::move(bytes), "fuzz.safetensors"));
  } catch (const turbine::Error&) {
    return 0;
  }

  // Read every byte of every view so ASan flags one that points outside the input.
  unsigned sum = 0;
  for (const auto& e : file->entries()) {
    for (size_t i = 0; i < e.nbytes; ++i) sum += std::to_integer<unsigned>(e.data[i]);
    if (auto raw = file->as_raw(e)) {
      if (raw->nbytes != e.nbytes) std::abort();
    } else {
      try {
        file->tensor(e.name);
        std::abort();  // a non-float tensor must not load as float weights
      } catch (const turbine::Error&) {
      }
    }
  }
  volatile unsigned sink = sum;
  (void)sink;

  // What the reader accepts, the writer must reproduce; an Error here is a bug, so it escapes.
  turbine::io::SafetensorsWriter w;
  for (const auto& e : file->entries()) w.add_view(e.name, e.dtype, e.shape, std::span(e.data, e.nbytes));
  for (const auto& [k, v] : file->metadata()) w.set_metadata(k, v);
  check_same(*file, turbine::io::SafetensorsFile::from_bytes(w.to_bytes(), "roundtrip.safetensors"));
  return 0;
}
