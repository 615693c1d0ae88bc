#pragma once
// Embedding gather: out[t, :] = table[ids[t], :], with 16-byte loads and stores, into the fp32
// residual stream (or a T buffer).
//
// Token ids are checked on the host before they are copied to the device (check_token_ids): the
// sampler and the tokenizer produce them there, and a kernel cannot report an error. Clamping an id
// would give a silent wrong answer, so as a last line of defence an id outside [0, vocab) makes the
// kernel fill that row with NaN (never an out-of-bounds read): the error shows in the logits.
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

namespace detail {

inline constexpr int kEmbeddingThreads = 128;

// table: [vocab, hidden], ids: [tokens], out: [tokens, hidden]. grid = (vector blocks, tokens).
template <HalfElement T, VecElement O>
__global__ static void __launch_bounds__(kEmbeddingThreads)
    embedding_kernel(const T* __restrict__ table, const int32_t* __restrict__ ids, O* __restrict__ out, int hidden,
                     int vocab) {
  pdl_launch_dependents();  // a following GEMV may start streaming its weights
  const int64_t t = blockIdx.y;
  const int idx = (static_cast<int>(blockIdx.x) * kEmbeddingThreads + static_cast<int>(threadIdx.x)) * 8;
  if (idx >= hidden) return;
  const int32_t id = ids[t];
  O* dst = out + t * hidden + idx;
  if (id < 0 || id >= vocab) {
    float nan8[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) nan8[e] = __int_as_float(0x7fc00000);
    vec::store8(dst, nan8);
    return;
  }
  const uint4 raw = vec::load_stream(table + static_cast<int64_t>(id) * hidden + idx);
  if constexpr (std::same_as<O, T>) {
    *reinterpret_cast<uint4*>(dst) = raw;
  } else {
    float v[8];
    vec::unpack8<T>(raw, v);
    vec::store8(dst, v);
  }
}

}  // namespace detail

/// Fails with a one-line error naming the first id outside [0, vocab). ids: host memory [n].
inline void check_token_ids(const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i)
    check(ids[i] >= 0 && ids[i] < vocab, "token id ", ids[i], " at position ", i, " is outside the vocabulary of ",
          vocab);
}

/// out[t, :] = table[ids[t], :] for t < tokens.
/// table: [vocab, hidden] T (device), ids: [tokens] int32 (device, checked on the host beforehand),
/// out: [tokens, hidden] float (the residual stream) or T. hidden: a multiple of 8.
template <HalfElement T, VecElement O>
void embedding(const T* table, const int32_t* ids, O* out, int tokens, int hidden, int vocab,
               cudaStream_t stream = nullptr) {
  check(tokens >= 0 && vocab > 0, "embedding: bad sizes (tokens ", tokens, ", vocab ", vocab, ")");
  check(hidden > 0 && hidden % 8 == 0, "embedding: hidden size ", hidden,
        " is not supported (supported: multiples of 8)");
  check(tokens <= 65535, "embedding: ", tokens, " tokens in one call (supported: up to 65535)");
  check(aligned16(table) && aligned16(out), "embedding: table and output must be 16-byte aligned");
  if (tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(hidden / 8, detail::kEmbeddingThreads)),
                  static_cast<unsigned>(tokens));
  detail::embedding_kernel<T, O><<<grid, detail::kEmbeddingThreads, 0, stream>>>(table, ids, out, hidden, vocab);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
