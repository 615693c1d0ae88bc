// NFC normalization against Python's unicodedata.normalize("NFC", s) (tests/data/tokenizer/nfc.json).
#include <doctest/doctest.h>

#include <string>

#include "tokenizer/tokenizer_test_util.hpp"
#include <turbine/tokenizer/normalize.hpp>

using namespace turbine;

TEST_CASE("nfc: equals Python's unicodedata on the goldens") {
  const auto j = test::load_json("tokenizer/nfc.json");
  int changed = 0;
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"], want = c["nfc"];
    CAPTURE(text);
    CHECK(unicode::nfc(text) == want);
    CHECK(unicode::nfc(want) == want);  // idempotent
    if (unicode::nfc_quick_check(text)) CHECK(text == want);
    changed += text != want;
  }
  CHECK(changed > 100);
}

TEST_CASE("nfc: quick check passes common text, ill-formed bytes pass through") {
  CHECK(unicode::nfc_quick_check("plain ASCII, Latin-1 caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, \xF0\x9F\x98\x80"));
  CHECK_FALSE(unicode::nfc_quick_check("cafe\xCC\x81"));
  CHECK(unicode::nfc("e\xCC\x81\xFF" "e\xCC\x81") == "\xC3\xA9\xFF\xC3\xA9");
  CHECK(unicode::nfc("\xFF\xCC\x81") == "\xFF\xCC\x81");  // a mark after a bad byte has nothing to join
}
