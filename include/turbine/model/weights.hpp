#pragma once
// ModelWeights: every weight of a decoder in canonical slots, whatever file and architecture they
// came from, as host views in their stored format. Matrices point into the mapped file where they
// can be used as stored, or into `owned` buffers where loading had to rearrange rows.
#include <memory>
#include <string>
#include <vector>

#include "../core/weight_matrix.hpp"
#include "config.hpp"

namespace turbine {

struct LayerWeights {
  std::vector<float> attn_norm;            // [hidden]
  WeightMatrix wq, wk, wv, wo;             // [q_size, hidden], [kv_size, hidden] x2, [hidden, q_size]
  std::vector<float> bq, bk, bv;           // [q_size], [kv_size] x2; empty without attention bias
  std::vector<float> mlp_norm;             // [hidden]
  WeightMatrix w_gate, w_up, w_down;       // [inter, hidden] x2, [hidden, inter]
};

struct ModelWeights {
  ModelConfig config;
  WeightMatrix embed;                      // [vocab, hidden]
  WeightMatrix lm_head;                    // [vocab, hidden]; the same memory as embed when tied
  std::vector<float> final_norm;           // [hidden]
  std::vector<LayerWeights> layers;
  std::vector<std::shared_ptr<const void>> keep_alive;  // mapped files and owned row buffers

  size_t matrix_bytes() const {
    size_t n = embed.nbytes() + (lm_head.data == embed.data ? 0 : lm_head.nbytes());
    for (const auto& l : layers)
      for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) n += m->nbytes();
    return n;
  }
};

}  // namespace turbine
