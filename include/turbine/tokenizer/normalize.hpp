#pragma once
// Unicode NFC normalization, for tokenizer.json files whose normalizer is NFC (Qwen2).
//
// Text made only of characters that NFC leaves alone and that never combine with a neighbour
// (all of ASCII, Latin-1, CJK, most of everything) is returned by the quick check untouched; other
// text goes through the textbook algorithm: full canonical decomposition, canonical ordering of
// combining marks, then canonical composition (Unicode 15, section 3.11). Ill-formed UTF-8 bytes
// are copied through unchanged and block composition across them.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unicode.hpp"
#include "unicode_nfc_tables.hpp"

namespace turbine::unicode {

namespace detail {

// Hangul syllables decompose and compose arithmetically (section 3.12).
inline constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
inline constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                          kSCount = kLCount * kNCount;

/// Index of the last pair (first, last) in a flat run table whose `first` (after `shift`) <= cp.
template <size_t N>
inline const uint32_t* find_run(const uint32_t (&table)[N], char32_t cp, int shift) {
  size_t lo = 0, hi = N / 2;  // pairs [lo, hi)
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if ((table[2 * mid] >> shift) <= cp) lo = mid + 1; else hi = mid;
  }
  if (lo == 0) return nullptr;
  const uint32_t* run = &table[2 * (lo - 1)];
  return cp <= run[1] ? run : nullptr;
}

inline uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const uint32_t* run = find_run(kCombiningClass, cp, 8);
  return run ? static_cast<uint8_t>(run[0] & 0xFF) : 0;
}

inline bool nfc_unsafe(char32_t cp) { return cp >= 0x300 && find_run(kNfcUnsafe, cp, 0) != nullptr; }

inline const uint64_t* find_decomposition(char32_t cp) {
  const uint64_t key = uint64_t(cp) << 43;
  const uint64_t* it = std::lower_bound(std::begin(kDecomposition), std::end(kDecomposition), key);
  return it != std::end(kDecomposition) && (*it >> 43) == cp ? it : nullptr;
}

inline void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount) out += kTBase + s % kTCount;
    return;
  }
  const uint64_t* d = cp >= 0xC0 ? find_decomposition(cp) : nullptr;
  if (!d) {
    out += cp;
    return;
  }
  decompose(char32_t((*d >> 22) & 0x1FFFFF), out);
  if (const auto second = char32_t((*d >> 1) & 0x1FFFFF)) decompose(second, out);
}

/// The primary composite of (a, b), or 0.
inline char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  // (first << 21 | second) -> composite, built once from the flagged decompositions.
  static const std::vector<std::pair<uint64_t, char32_t>> table = [] {
    std::vector<std::pair<uint64_t, char32_t>> t;
    for (uint64_t d : kDecomposition)
      if (d & 1) t.emplace_back(((d >> 22) & 0x1FFFFF) << 21 | ((d >> 1) & 0x1FFFFF), char32_t(d >> 43));
    std::sort(t.begin(), t.end());
    return t;
  }();
  const uint64_t key = uint64_t(a) << 21 | b;
  const auto it = std::lower_bound(table.begin(), table.end(), std::pair<uint64_t, char32_t>(key, 0));
  return it != table.end() && it->first == key ? it->second : 0;
}

/// NFC of a run of code points, appended to `out` as UTF-8.
inline void nfc_run(const std::u32string& cps, std::string& out) {
  std::u32string d;
  d.reserve(cps.size() + 8);
  for (char32_t cp : cps) decompose(cp, d);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
    i = j;
  }
  // Composition: a character joins the last starter unless something between them blocks it
  // (after ordering, only the character just before it can: a starter, or one of equal or
  // higher class).
  std::u32string r;
  r.reserve(d.size());
  size_t starter = std::u32string::npos;
  for (char32_t c : d) {
    const uint8_t cc = combining_class(c);
    if (starter != std::u32string::npos) {
      const bool adjacent = r.size() == starter + 1;
      const uint8_t prev = adjacent ? 0 : combining_class(r.back());
      if (adjacent || (prev != 0 && prev < cc)) {
        if (const char32_t comp = compose(r[starter], c)) {
          r[starter] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = r.size();
    r += c;
  }
  for (char32_t c : r) encode_utf8(c, out);
}

}  // namespace detail

/// True if NFC certainly leaves `text` unchanged (no character NFC could touch).
inline bool nfc_quick_check(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0xCC) {  // below U+0300 (lead bytes up to 0xCB)
      i += c < 0x80 ? 1 : decode_utf8(text, i).len;
      continue;
    }
    const DecodedChar d = decode_utf8(text, i);
    if (d.valid && detail::nfc_unsafe(d.cp)) return false;
    i += d.len;
  }
  return true;
}

/// `text` in Normalization Form C.
inline std::string nfc(std::string_view text) {
  if (nfc_quick_check(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  std::u32string run;
  for (size_t i = 0; i < text.size();) {
    const DecodedChar d = decode_utf8(text, i);
    if (d.valid) {
      run += d.cp;
    } else {
      detail::nfc_run(run, out);
      run.clear();
      out.append(text.substr(i, d.len));
    }
    i += d.len;
  }
  detail::nfc_run(run, out);
  return out;
}

}  // namespace turbine::unicode
