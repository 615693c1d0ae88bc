#pragma once
// The Linear weights of an AutoAWQ checkpoint ("gemm" packing: `qweight`, `qzeros`, `scales` per
// layer, see quant/int4_groups.hpp) as the `<name>.weight` tensors the weight assembler asks for,
// repacked once into turbine's I4G rows (storage_type.hpp) in owned memory.
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../quant/int4_groups.hpp"
#include "../io/safetensors.hpp"

namespace turbine {

/// `find("model.layers.0.mlp.up_proj.weight")` builds that weight from the layer's AWQ tensors.
class AwqLinears {
 public:
  /// `group`: the checkpoint's quantization_config.group_size.
  AwqLinears(std::shared_ptr<const io::SafetensorsModel> st, int64_t group) : st_(std::move(st)), group_(group) {}

  /// The weight [out, in] as I4G<group> rows; nullptr when the model has no `<base>.qweight`.
  const RawTensor* find(const std::string& name) {
    if (auto it = made_.find(name); it != made_.end()) return &it->second;
    constexpr std::string_view kSuffix = ".weight";
    if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return nullptr;
    const std::string base = name.substr(0, name.size() - kSuffix.size());
    const io::SafetensorsEntry* qw = st_->find_entry(base + ".qweight");
    if (!qw) return nullptr;
    const io::SafetensorsEntry* qz = st_->find_entry(base + ".qzeros");
    const io::SafetensorsEntry* sc = st_->find_entry(base + ".scales");
    const std::string file = st_->file_of(base + ".qweight");
    check(qz && sc, file, ": AWQ layer '", base, "' has qweight but not qzeros and scales");
    check(qw->dtype == "I32" && qz->dtype == "I32" && sc->dtype == "F16", file, ": AWQ layer '", base,
          "': qweight and qzeros must be I32 and scales F16 (got ", qw->dtype, ", ", qz->dtype, ", ", sc->dtype, ")");
    check(qw->shape.size() == 2 && qz->shape.size() == 2 && sc->shape.size() == 2, file, ": AWQ layer '", base,
          "': qweight, qzeros and scales must be 2-D");
    const int64_t in = qw->shape[0], out = sc->shape[1];
    check(in % group_ == 0 && out % 8 == 0 && qw->shape[1] == out / 8 && sc->shape[0] == in / group_ &&
              qz->shape[0] == in / group_ && qz->shape[1] == out / 8,
          file, ": AWQ layer '", base, "': shapes qweight [", qw->shape[0], ", ", qw->shape[1], "], qzeros [",
          qz->shape[0], ", ", qz->shape[1], "], scales [", sc->shape[0], ", ", sc->shape[1],
          "] do not fit group size ", group_, " (expected [in, out / 8], [in / group, out / 8], [in / group, out])");
    // The mapping gives no alignment guarantee for int32: copy before reading.
    std::vector<int32_t> qweight(static_cast<size_t>(in * out / 8)), qzeros(static_cast<size_t>(in / group_ * out / 8));
    std::vector<uint16_t> scales(static_cast<size_t>(in / group_ * out));
    std::memcpy(qweight.data(), qw->data, qweight.size() * 4);
    std::memcpy(qzeros.data(), qz->data, qzeros.size() * 4);
    std::memcpy(scales.data(), sc->data, scales.size() * 2);
    const quant::Int4Groups g = quant::int4_groups_from_awq(qweight.data(), qzeros.data(), scales.data(), out, in, group_);
    auto rows = std::make_shared<std::vector<std::byte>>(quant::int4_groups_to_rows(g));
    buffers_.push_back(rows);
    RawTensor t;
    t.name = name;
    t.type = int4_groups_type(group_);
    t.shape = {out, in};
    t.data = rows->data();
    t.nbytes = rows->size();
    t.file = file;
    return &made_.emplace(name, std::move(t)).first->second;
  }

  /// Every weight built so far (after assemble_weights: all of them), for listings.
  std::vector<RawTensor> made() const {
    std::vector<RawTensor> v;
    for (const auto& [name, t] : made_) v.push_back(t);
    return v;
  }

 private:
  std::shared_ptr<const io::SafetensorsModel> st_;
  int64_t group_;
  std::map<std::string, RawTensor> made_;  // node-based: the pointers handed out stay valid
  std::vector<std::shared_ptr<std::vector<std::byte>>> buffers_;
};

}  // namespace turbine
