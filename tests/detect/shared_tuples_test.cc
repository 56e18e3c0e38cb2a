// SharedTuples (which tuples more than one document holds) and the family controls of a scan's
// document counts.
#include "tracemark/detect/shared_tuples.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tracemark/detect/family_control.h"

namespace tracemark::detect {
namespace {

TEST(SharedTuplesTest, ATupleInTwoDocumentsIsSharedOneInOneIsNot) {
  SharedTuples s(2);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5}, b = {9, 2, 3, 4, 7};
  s.Add(0, a, 0);
  s.Add(1, b, 0);
  EXPECT_TRUE(s.Shared(a, 3));   // (2, 3) -> 4 is in both
  EXPECT_FALSE(s.Shared(a, 2));  // (1, 2) -> 3 only in a
  EXPECT_FALSE(s.Shared(a, 4));  // (3, 4) -> 5 only in a
  EXPECT_FALSE(s.Shared(b, 4));  // (3, 4) -> 7 only in b
  EXPECT_EQ(s.shared(), 1u);
}

TEST(SharedTuplesTest, RepeatsInsideOneDocumentAreNotShared) {
  SharedTuples s(1);
  const std::vector<int32_t> a = {1, 2, 1, 2, 1, 2};
  s.Add(7, a, 0);
  EXPECT_FALSE(s.Shared(a, 1));
  EXPECT_EQ(s.shared(), 0u);
}

TEST(SharedTuplesTest, PositionsWithoutAFullWindowOrNeverRecordedCountAsShared) {
  SharedTuples s(3);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  s.Add(0, a, 0);
  EXPECT_TRUE(s.Shared(a, 2));  // two ids before it: partly padding
  EXPECT_FALSE(s.Shared(a, 3));
  const std::vector<int32_t> unseen = {8, 8, 8, 8};
  EXPECT_TRUE(s.Shared(unseen, 3));  // not recorded: excluded, never tested by mistake
}

TEST(SharedTuplesTest, OnlyPositionsFromTheScoredStartAreRecorded) {
  SharedTuples s(1);
  const std::vector<int32_t> a = {5, 6, 7}, b = {5, 6, 9};
  s.Add(0, a, 2);  // (5, 6) is context in a
  s.Add(1, b, 0);
  EXPECT_FALSE(s.Shared(b, 1));
}

std::vector<stats::PValue> Ps(std::initializer_list<double> v) {
  std::vector<stats::PValue> out;
  for (double p : v) out.push_back(stats::PValue::FromLog(std::log(p)));
  return out;
}

TEST(FamilyControlTest, NoneBonferroniAndBenjaminiHochberg) {
  const auto p = Ps({0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216});
  auto count = [](const std::vector<bool>& r) { return std::count(r.begin(), r.end(), true); };
  EXPECT_EQ(count(Rejected(p, 0.05, FamilyControl::kNone, true)), 5);
  EXPECT_EQ(count(Rejected(p, 0.05, FamilyControl::kFwer, true)), 1);  // p <= 0.005
  // BH at 0.05 over 10: p_(k) <= k/200: 0.001 <= 0.005, 0.008 <= 0.010, 0.039 > 0.015 ...
  EXPECT_EQ(count(Rejected(p, 0.05, FamilyControl::kFdr, true)), 2);
  // BY divides by 1 + 1/2 + ... + 1/10 = 2.929: 0.001 <= 0.0017 only.
  EXPECT_EQ(count(Rejected(p, 0.05, FamilyControl::kFdr, false)), 1);
  EXPECT_TRUE(Rejected(p, 0.05, FamilyControl::kFdr, true)[1]);
  EXPECT_FALSE(Rejected(p, 0.05, FamilyControl::kFdr, true)[2]);
}

TEST(FamilyControlTest, TinyPValuesBelowDoubleRange) {
  std::vector<stats::PValue> p = {stats::PValue::FromLog(-2000), stats::PValue()};
  EXPECT_TRUE(Rejected(p, 1e-6, FamilyControl::kFwer, false)[0]);
  EXPECT_FALSE(Rejected(p, 1e-6, FamilyControl::kFwer, false)[1]);
}

TEST(FamilyControlTest, Names) {
  EXPECT_EQ(*ParseFamilyControl("fdr"), FamilyControl::kFdr);
  EXPECT_EQ(FamilyControlName(*ParseFamilyControl("fwer")), "fwer");
  EXPECT_FALSE(ParseFamilyControl("bonferroni").ok());
}

}  // namespace
}  // namespace tracemark::detect
