#pragma once
// The serving engine's knobs (docs/SERVING.md says what each trades).
#include <cstdint>

namespace turbine {

/// The scheduler's and the KV cache's knobs.
struct EngineOptions {
  int64_t max_concurrent = 16;       ///< sequences running at once; more requests wait
  int64_t max_prefill_tokens = 512;  ///< prompt tokens fed per step, across sequences
  int64_t max_queued = 4096;         ///< waiting requests beyond this are refused (EngineBusy)
  int64_t ctx_size = 0;              ///< tokens per sequence (prompt + output); 0: the model's context
  bool batched_decode = true;        ///< decode up to kExactDecodeBatch sequences per weight pass (CPU model)
  /// Blocks of the paged KV cache, shared by every sequence; 0: enough for max_concurrent
  /// sequences of ctx_size tokens. When they run out, the newest sequences are preempted.
  int64_t cache_blocks = 0;
  int64_t cache_block_size = 64;  ///< positions per KV block
  bool prefix_caching = false;    ///< reuse full KV blocks of earlier prompts with the same start
};

}  // namespace turbine
