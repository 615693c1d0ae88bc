#pragma once
// What a Spec's weight scheme does to the weights a model is built from, on the CPU:
//   quant::None     the weights as stored (any format, AWQ directories included);
//   quant::Awq<4,G> every Linear must already be 4-bit with group G (an AWQ directory, e.g. from
//                   `turbine quantize --method awq`): anything else is refused with what to run;
//   quant::Rtn<4,G> Linears already 4-bit with group G are kept; the others are rounded to
//                   nearest at load time (quant/int4_groups.hpp, fp16 scales).
// The embedding and LM head are not quantized by a scheme (AutoAWQ keeps them in floating point
// too); quantize_lm_head_int4 rounds the LM head alone, as a load-time choice
// (PipelineOptions::lm_head_int4, `--lm-head-int4` on the command line).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../core/thread_pool.hpp"
#include "../io/ggml_quants.hpp"
#include "../quant/int4_groups.hpp"
#include "../quant/schemes.hpp"
#include "weights.hpp"

namespace turbine {

/// `w` prepared for weight scheme W (see the file comment); errors name the layer and Linear.
template <WeightScheme W>
ModelWeights apply_weight_scheme(ModelWeights w) {
  if constexpr (W::quantized) {
    constexpr bool awq = W::name == std::string_view("awq");
    const StorageType want = int4_groups_type(W::group);
    struct Job {
      size_t layer;
      const char* name;
      WeightMatrix* m;
    };
    std::vector<Job> jobs;
    for (size_t l = 0; l < w.layers.size(); ++l) {
      LayerWeights& L = w.layers[l];
      const std::pair<const char*, WeightMatrix*> linears[] = {{"q_proj", &L.wq},  {"k_proj", &L.wk},  {"v_proj", &L.wv},
                                                              {"o_proj", &L.wo},  {"gate_proj", &L.w_gate},
                                                              {"up_proj", &L.w_up}, {"down_proj", &L.w_down}};
      for (auto [name, m] : linears) {
        if (m->type == want) continue;
        check(!is_int4_groups(m->type), "layer ", l, " ", name, ": 4-bit weights of ", storage_name(m->type),
              " do not match the model type's group size ", W::group, " (use quant::", W::name, "<4, ",
              storage_info(m->type).block_elems, ">)");
        check(!awq, "layer ", l, " ", name, ": weights stored as ", storage_name(m->type),
              " are not AWQ 4-bit: make an AWQ directory with `turbine quantize MODEL --method awq --group-size ",
              W::group, " -o DIR`, or use quant::Rtn<4, ", W::group, "> to round to nearest at load time");
        check(m->cols % W::group == 0, "layer ", l, " ", name, ": ", m->cols, " inputs are not a multiple of the group size ",
              W::group, " (use a smaller group)");
        jobs.push_back({l, name, m});
      }
    }
    // Rounding is per matrix and independent: one matrix per thread (an 8B model has 224).
    // (An error in a worker is kept and thrown here: a worker thread must not throw.)
    std::vector<std::shared_ptr<std::vector<std::byte>>> rows(jobs.size());
    std::vector<std::string> errors(jobs.size());
    default_pool().parallel_for(static_cast<int64_t>(jobs.size()), [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const Job& job = jobs[static_cast<size_t>(j)];
        try {
          const WeightMatrix& m = *job.m;
          std::vector<float> f(static_cast<size_t>(m.rows * m.cols));
          io::dequantize_matrix(m, f.data());
          const quant::Int4Groups g = quant::rtn_quantize_int4(f.data(), m.rows, m.cols, W::group, quant::round_scale_fp16);
          rows[static_cast<size_t>(j)] = std::make_shared<std::vector<std::byte>>(quant::int4_groups_to_rows(g));
        } catch (const std::exception& e) {
          errors[static_cast<size_t>(j)] = "layer " + std::to_string(job.layer) + " " + job.name + ": " + e.what();
        }
      }
    });
    for (const std::string& e : errors) check(e.empty(), e);
    for (size_t j = 0; j < jobs.size(); ++j) {
      WeightMatrix& m = *jobs[j].m;
      m = WeightMatrix{want, m.rows, m.cols, rows[j]->data()};
      w.keep_alive.push_back(rows[j]);
    }
  }
  return w;
}

/// The group quantize_lm_head_int4 takes for a head of `hidden` inputs: the largest of 128, 64 and
/// 32 that divides it (SmolLM2's 576: 64), 0 if none does.
constexpr int64_t lm_head_group(int64_t hidden) {
  for (int64_t g : {128, 64, 32})
    if (hidden % g == 0) return g;
  return 0;
}

/// `w` with its LM head rounded to nearest at 4 bits in groups of `group` inputs (fp16 scales, as
/// quant::Rtn), in rows of 1024 on the thread pool. A head tied to the embedding gets its own copy:
/// the embedding stays as stored. A head already 4-bit with this group is kept; another group, or
/// a width that is not a multiple of the group, is refused with what to use instead.
inline ModelWeights quantize_lm_head_int4(ModelWeights w, int64_t group) {
  check(group == 32 || group == 64 || group == 128, "lm_head: 4-bit groups of ", group,
        " inputs are not supported (32, 64 or 128; the hidden size must be a multiple of one)");
  const StorageType want = int4_groups_type(group);
  WeightMatrix& head = w.lm_head;
  check(!head.empty(), "lm_head: the model has no LM head to quantize");
  if (head.type == want) return w;
  check(!is_int4_groups(head.type), "lm_head: 4-bit weights of ", storage_name(head.type), " do not match group size ",
        group);
  check(head.cols % group == 0, "lm_head: ", head.cols, " inputs are not a multiple of the group size ", group,
        " (use a group of 32 or 64)");
  const int64_t rows = head.rows, cols = head.cols, block = 1024;
  auto out = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(rows) * row_bytes(want, cols));
  const size_t stride = row_bytes(want, cols);
  std::vector<std::string> errors(static_cast<size_t>((rows + block - 1) / block));
  default_pool().parallel_for((rows + block - 1) / block, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      try {
        const int64_t r0 = b * block, n = std::min(block, rows - r0);
        const WeightMatrix part{head.type, n, cols, head.row(r0)};
        std::vector<float> f(static_cast<size_t>(n * cols));
        io::dequantize_matrix(part, f.data());
        const std::vector<std::byte> q =
            quant::int4_groups_to_rows(quant::rtn_quantize_int4(f.data(), n, cols, group, quant::round_scale_fp16));
        std::copy(q.begin(), q.end(), out->begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(r0) * stride));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(b)] = std::string("lm_head: ") + e.what();
      }
    }
  });
  for (const std::string& e : errors) check(e.empty(), e);
  head = WeightMatrix{want, rows, cols, out->data()};
  w.keep_alive.push_back(out);
  return w;
}

}  // namespace turbine
