#pragma once
// The merge list "a b" (rank = position) as a hash map (id_a, id_b) -> (rank, id of "ab").
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/error.hpp"
#include "vocab.hpp"

namespace turbine::detail {

struct MergeInfo {
  int32_t rank;
  int32_t id;
};

class MergeTable {
 public:
  MergeTable() = default;

  /// `source` names the file for errors. Every part and result must be in the vocabulary
  /// (Hugging Face refuses such files too); a repeated pair keeps its first (best) rank.
  MergeTable(const std::vector<std::string>& merges, const VocabMap& vocab, std::string_view source) {
    map_.reserve(merges.size());
    std::string joined;
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const size_t sp = m.find(' ');
      check(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
            source, ": merges[", i, "] '", m, "' is not two tokens separated by one space");
      const std::string_view a(m.data(), sp), b(m.data() + sp + 1, m.size() - sp - 1);
      joined.assign(a).append(b);
      const int32_t ia = vocab_find(vocab, a), ib = vocab_find(vocab, b), ij = vocab_find(vocab, joined);
      check(ia >= 0 && ib >= 0 && ij >= 0, source, ": merges[", i, "] '", m, "': '",
            ia < 0 ? a : ib < 0 ? b : std::string_view(joined), "' is not in the vocabulary");
      map_.emplace(key(ia, ib), MergeInfo{static_cast<int32_t>(i), ij});
    }
  }

  const MergeInfo* find(int32_t a, int32_t b) const {
    if (a < 0 || b < 0) return nullptr;
    const auto it = map_.find(key(a, b));
    return it == map_.end() ? nullptr : &it->second;
  }
  bool empty() const { return map_.empty(); }

 private:
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  std::unordered_map<uint64_t, MergeInfo> map_;
};

}  // namespace turbine::detail
