#pragma once
// What a Spec's weight scheme does to the weights a model is built from, on the CPU:
//   quant::None     the weights as stored (any format, AWQ directories included);
//   quant::Awq<4,G> every Linear must already be 4-bit with group G (an AWQ directory, e.g. from
//                   `turbine quantize --method awq`): anything else is refused with what to run;
//   quant::Rtn<4,G> Linears already 4-bit with group G are kept; the others are rounded to
//                   nearest at load time (quant/int4_groups.hpp, fp16 scales).
// The embedding and LM head are never quantized (AutoAWQ keeps them in floating point too).
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

}  // namespace turbine
