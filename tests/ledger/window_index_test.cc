// The ledger's window index (ledger/window_index.h): each response position's window names the
// accounts served after it, exclusive and shared windows are told apart, and positions without h
// known ids before them are skipped, not guessed.
#include "tracemark/ledger/window_index.h"

#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tracemark/ledger/writer.h"

namespace tracemark::ledger {
namespace {

Record Served(std::optional<uint64_t> account, std::vector<int32_t> prompt,
              std::vector<int32_t> response) {
  Record r;
  r.account = account;
  r.tokenizer = "cl100k_base";
  r.prompt_ids = std::move(prompt);
  r.response_ids = std::move(response);
  return r;
}

TEST(WindowIndexTest, WindowsNameTheAccountsServedAfterThem) {
  WindowIndex::Builder builder = *WindowIndex::Builder::Create(2);
  builder.Add(Served(1, {10, 11}, {12, 13, 14}));  // windows (10,11) (11,12) (12,13)
  builder.Add(Served(2, {10, 11}, {12, 99}));      // (10,11) (11,12): shared with account 1
  builder.Add(Served(2, {}, {12, 13, 15}));        // (12,13) after position 2; 2 skipped
  builder.Add(Served(std::nullopt, {5, 6}, {7}));  // (5,6): anonymous only
  builder.Add(Served(1, {7}, {8, 9}));             // (7,8); position 0 skipped
  const WindowIndex index = std::move(builder).Finish();
  const std::vector<int32_t> text = {10, 11, 12, 13, 14, 5, 6, 7, 8};
  std::optional<WindowIndex::Served> s = index.Find(text, 2);  // (10,11)
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(std::vector<uint64_t>(s->accounts.begin(), s->accounts.end()),
            std::vector<uint64_t>({1, 2}));
  EXPECT_FALSE(s->exclusive());
  s = index.Find(text, 4);  // (12,13): accounts 1 and 2
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->accounts.size(), 2u);
  EXPECT_FALSE(index.Find(text, 5).has_value());  // (13,14): nothing was served after it
  const std::vector<int32_t> seven_eight = {7, 8};
  s = index.Find(seven_eight, 2);  // (7,8): account 1 alone
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->exclusive());
  EXPECT_EQ(s->accounts[0], 1u);
  s = index.Find(text, 7);  // (5,6): an anonymous request only
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->accounts.empty());
  EXPECT_TRUE(s->anonymous);
  EXPECT_FALSE(s->exclusive());
  EXPECT_FALSE(index.Find(text, 6).has_value());   // (14,5) never served
  EXPECT_FALSE(index.Find(text, 1).has_value());   // fewer than h ids before
  EXPECT_FALSE(index.Find(text, 10).has_value());  // past the end
  const WindowIndex::Stats& st = index.stats();
  EXPECT_EQ(st.records, 5u);
  EXPECT_EQ(st.positions, 3u + 2u + 1u + 1u + 1u);
  EXPECT_EQ(st.positions_skipped, 2u + 1u);
  EXPECT_EQ(st.windows, 5u);            // (10,11) (11,12) (12,13) (5,6) (7,8)
  EXPECT_EQ(st.exclusive_windows, 1u);  // (7,8)
  EXPECT_EQ(st.anonymous_only, 1u);
  EXPECT_EQ(st.pairs, 8u);  // accounts 1 and 2 at three windows, anonymous at one, 1 at one
}

TEST(WindowIndexTest, BuiltFromALedgerAndRefusingBadWidths) {
  EXPECT_EQ(WindowIndex::Builder::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
  char dir_template[] = "/tmp/tracemark_window_index_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  {
    auto writer = *Writer::Open(dir);
    ASSERT_TRUE(writer->Append(Served(4, {1, 2, 3}, {4, 5})).ok());
    ASSERT_TRUE(writer->Append(Served(9, {1, 2, 3}, {4, 6})).ok());
    ASSERT_TRUE(writer->Close().ok());
  }
  auto index = WindowIndex::Build(dir, 3);
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<int32_t> text = {1, 2, 3, 4};
  std::optional<WindowIndex::Served> s = index->Find(text, 3);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->accounts.size(), 2u);
  s = index->Find(text, 4);  // (2,3,4): both accounts too
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->accounts.size(), 2u);
  EXPECT_EQ(index->stats().windows, 2u);
  EXPECT_EQ(WindowIndex::Build(dir + "/missing", 3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WindowIndex::Build(dir, 0).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tracemark::ledger
