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

/// The weights of one decoder layer. Bias vectors are empty when the model has none.
struct LayerWeights {
  std::vector<float> attn_norm;  ///< [hidden]
  WeightMatrix wq;               ///< [q_size, hidden]
  WeightMatrix wk;               ///< [kv_size, hidden]
  WeightMatrix wv;               ///< [kv_size, hidden]
  WeightMatrix wo;               ///< [hidden, q_size]
  std::vector<float> bq;         ///< [q_size] or empty
  std::vector<float> bk;         ///< [kv_size] or empty
  std::vector<float> bv;         ///< [kv_size] or empty
  std::vector<float> mlp_norm;   ///< [hidden]
  WeightMatrix w_gate;           ///< [intermediate, hidden]
  WeightMatrix w_up;             ///< [intermediate, hidden]
  WeightMatrix w_down;           ///< [hidden, intermediate]
};

/// Every weight of a model and the config they belong to (what load_model and load_weights return).
struct ModelWeights {
  ModelConfig config;                  ///< the model's sizes and options
  WeightMatrix embed;                  ///< [vocab, hidden]
  WeightMatrix lm_head;                ///< [vocab, hidden]; the same memory as embed when tied
  std::vector<float> final_norm;       ///< [hidden]
  std::vector<LayerWeights> layers;    ///< [num_layers]
  /// Mapped files and owned row buffers the matrices point into: copies share them.
  std::vector<std::shared_ptr<const void>> keep_alive;

  /// Bytes of every matrix (a tied LM head counted once).
  size_t matrix_bytes() const {
    size_t n = embed.nbytes() + (lm_head.data == embed.data ? 0 : lm_head.nbytes());
    for (const auto& l : layers)
      for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) n += m->nbytes();
    return n;
  }
};

}  // namespace turbine
