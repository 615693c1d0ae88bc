#pragma once
// The BPE merge loop shared by byte-level and SentencePiece BPE.
//
// Symbols form a doubly linked list over the piece; candidate pairs sit in a min-heap keyed by
// (cost, position of the left symbol), so the best pair, leftmost among equals, merges first, as in
// Hugging Face tokenizers (rank) and llama.cpp (score). Entries made stale by an earlier merge are
// recognized and dropped when popped, so a piece of n symbols costs O(n log n), not O(n^2).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace turbine::detail {

struct BpeSymbol {
  int32_t id;      // token id of the symbol, or -1 while it is not (yet) a token
  uint32_t start;  // byte span of the symbol in the piece
  uint32_t len;    // 0 once merged into its left neighbour
  int32_t prev, next;
};

/// A candidate merge of symbols `left` and `right = left.next`.
struct BpeCandidate {
  double cost;  // lower merges first: the merge rank, or minus the token score
  int32_t left, right;
  uint32_t len;  // left.len + right.len when the candidate was made; a mismatch means stale
  int32_t id;    // token id of the merged symbol

  bool operator>(const BpeCandidate& o) const {
    return cost != o.cost ? cost > o.cost : left > o.left;
  }
};

/// Scratch buffers reused across the pieces of one encode call.
struct BpeWorkspace {
  std::vector<BpeSymbol> symbols;
  std::vector<BpeCandidate> heap;
};

/// Merges `ws.symbols` (built by the caller, linked in order) until no candidate is left.
/// `pair(const BpeSymbol& a, const BpeSymbol& b, double& cost, int32_t& id)` says whether a and b
/// may merge, into which token, and at which cost.
template <typename PairFn>
void bpe_merge(BpeWorkspace& ws, PairFn&& pair) {
  auto& sym = ws.symbols;
  auto& heap = ws.heap;  // std::*_heap with greater<> = min-heap, storage reused across pieces
  heap.clear();
  const auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    double cost;
    int32_t id;
    if (!pair(sym[l], sym[r], cost, id)) return;
    heap.push_back({cost, l, r, sym[l].len + sym[r].len, id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) try_add(static_cast<int32_t>(i), static_cast<int32_t>(i + 1));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const BpeCandidate c = heap.back();
    heap.pop_back();
    BpeSymbol& l = sym[c.left];
    BpeSymbol& r = sym[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;  // stale
    l.len += r.len;
    l.id = c.id;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    r.len = 0;
    try_add(l.prev, c.left);
    try_add(c.left, l.next);
  }
}

/// Appends a symbol to the linked list in `ws`.
inline void bpe_push_symbol(BpeWorkspace& ws, int32_t id, uint32_t start, uint32_t len) {
  const auto n = static_cast<int32_t>(ws.symbols.size());
  ws.symbols.push_back({id, start, len, n - 1, -1});
  if (n > 0) ws.symbols[n - 1].next = n;
}

}  // namespace turbine::detail
