// Stop strings across token boundaries never leak into the output.
#include <doctest/doctest.h>

#include <turbine/engine/stop_checker.hpp>

using namespace turbine;

TEST_CASE("a stop string split over pieces is cut and never emitted") {
  StopChecker s({"<END>", "\n\nUser:"});
  std::string out;
  for (const char* piece : {"Hello", " wor", "ld<E", "N", "D> more"}) out += s.push(piece);
  out += s.flush();
  CHECK(out == "Hello world");
  CHECK(s.stopped());
}

TEST_CASE("a held-back prefix that turns out not to be a stop string is released") {
  StopChecker s({"<END>"});
  std::string out = s.push("a<E");
  CHECK(out == "a");
  out += s.push("X");
  CHECK(out == "a<EX");
  out += s.push("<");
  out += s.flush();
  CHECK(out == "a<EX<");
  CHECK_FALSE(s.stopped());
}

TEST_CASE("without stop strings everything passes through at once") {
  StopChecker s({});
  CHECK(s.push("abc") == "abc");
  CHECK(s.flush().empty());
}

TEST_CASE("the earliest of several stop strings wins") {
  StopChecker s({"yz", "c"});
  CHECK(s.push("abcxyz") == "ab");
}
