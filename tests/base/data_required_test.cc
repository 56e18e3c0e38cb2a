// TRACEMARK_REQUIRE_DATA (tests/testing/data_required.h): missing set-up data fails a test under
// CI=true instead of skipping it.
#include "testing/data_required.h"

#include <cstdlib>
#include <optional>
#include <string>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace {

class ScopedCi {
 public:
  explicit ScopedCi(const char* value) {
    if (const char* old = std::getenv("CI")) old_ = old;
    setenv("CI", value, 1);
  }
  ~ScopedCi() {
    if (old_.has_value()) {
      setenv("CI", old_->c_str(), 1);
    } else {
      unsetenv("CI");
    }
  }

 private:
  std::optional<std::string> old_;
};

void RequireAbsentData() { TRACEMARK_REQUIRE_DATA(false, "the test's data"); }
void RequirePresentData() { TRACEMARK_REQUIRE_DATA(true, "the test's data"); }

TEST(DataRequiredTest, MissingDataFailsUnderCi) {
  ScopedCi ci("true");
  EXPECT_TRUE(tracemark::test_support::InCi());
  EXPECT_FATAL_FAILURE(RequireAbsentData(), "the test's data missing under CI=true");
}

TEST(DataRequiredTest, PresentDataNeitherFailsNorSkips) {
  ScopedCi ci("true");
  RequirePresentData();
  EXPECT_FALSE(::testing::Test::IsSkipped());
}

TEST(DataRequiredTest, OnlyTheValueTrueMeansCi) {
  ScopedCi ci("1");
  EXPECT_FALSE(tracemark::test_support::InCi());
}

}  // namespace
