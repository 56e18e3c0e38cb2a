// For tests that need what scripts/setup.sh fetches (tokenizer files, the corpus): on a
// developer's machine without it they skip, saying how to get it; under CI (CI=true in the
// environment, as .ci/run has it) a missing file means a set-up step broke, so the test fails
// instead of passing quietly skipped.
//
//   TRACEMARK_REQUIRE_DATA(tok_ != nullptr, "the cl100k_base tokenizer data");
#ifndef TRACEMARK_TESTS_TESTING_DATA_REQUIRED_H_
#define TRACEMARK_TESTS_TESTING_DATA_REQUIRED_H_

#include <cstdlib>
#include <string_view>

#include "gtest/gtest.h"

namespace tracemark::test_support {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace tracemark::test_support

// Returns from the calling test (or SetUp) when `present` is false: GTEST_FAIL under CI,
// GTEST_SKIP elsewhere; `what` (streamable) names the missing data.
#define TRACEMARK_REQUIRE_DATA(present, what)                                   \
  do {                                                                          \
    if (!(present)) {                                                           \
      if (::tracemark::test_support::InCi()) {                                  \
        GTEST_FAIL() << what << " missing under CI=true: a set-up step failed"; \
      }                                                                         \
      GTEST_SKIP() << what << " missing: run scripts/setup.sh";                 \
    }                                                                           \
  } while (0)

#endif  // TRACEMARK_TESTS_TESTING_DATA_REQUIRED_H_
