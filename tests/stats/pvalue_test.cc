#include "tracemark/stats/pvalue.h"

#include <cmath>

#include "gtest/gtest.h"
#include "tracemark/stats/uniformity.h"

namespace tracemark::stats {
namespace {

TEST(PValue, FormatsAnyMagnitudeAndNeverZero) {
  EXPECT_EQ(PValue::FromValue(0.05).ToString(), "0.05");
  EXPECT_EQ(PValue::FromLog(-1000 * std::log(10.0)).ToString(), "1.0e-1000");
  EXPECT_EQ(PValue::FromLog(-1000.00001 * std::log(10.0)).ToString(), "1.0e-1000");
  EXPECT_EQ(PValue().ToString(), "1");
  EXPECT_EQ(PValue::FromLog(NAN).log(), 0.0);  // a numerical failure never claims evidence
  EXPECT_EQ(PValue::FromLog(3.0).log(), 0.0);
}

TEST(PValue, Corrections) {
  const PValue p = PValue::FromValue(1e-9);
  EXPECT_NEAR(Bonferroni(p, 25000).value(), 2.5e-5, 1e-15);
  EXPECT_EQ(Bonferroni(PValue::FromValue(0.1), 100).value(), 1.0);
  EXPECT_LE(Sidak(p, 25000).log(), Bonferroni(p, 25000).log());
  EXPECT_NEAR(Sidak(PValue::FromValue(0.1), 2).value(), 0.19, 1e-12);
  EXPECT_NEAR(Sidak(PValue::FromLog(-800), 1000).log(), -800 + std::log(1000.0), 1e-9);
}

TEST(Uniformity, AcceptsUniformRejectsSkewed) {
  std::vector<double> uniform, skewed;
  for (int i = 0; i < 10000; ++i) {
    const double u = (i + 0.5) / 10000.0;
    uniform.push_back(u);
    skewed.push_back(u * u);
  }
  EXPECT_GT(KolmogorovSmirnovUniform(uniform).p_value, 0.99);
  const KsResult r = KolmogorovSmirnovUniform(skewed);
  EXPECT_LT(r.p_value, 1e-10);
  EXPECT_GT(r.statistic_plus, 0.2);
  EXPECT_DOUBLE_EQ(FractionAtOrBelow(uniform, 0.1), 0.1);
}

}  // namespace
}  // namespace tracemark::stats
