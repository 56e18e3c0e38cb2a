#include "tracemark/probe/window_probes.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/tokenizer/load.h"

namespace tracemark::probe {
namespace {

namespace fs = std::filesystem;

class WindowProbesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = tokenizer::LoadTokenizer("tiktoken:cl100k_base", TRACEMARK_DATA_DIR);
    TRACEMARK_REQUIRE_DATA(tok.ok(), "the cl100k_base tokenizer data");
    tok_ = std::move(*tok);
    dir_ = fs::temp_directory_path() / absl::StrCat("window_probes_", getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  absl::StatusOr<WindowProbeSample> Sample(const std::string& path, int h, size_t n) {
    auto reader = dataset::DocumentReader::Open({path});
    if (!reader.ok()) return reader.status();
    return WindowProbes(**reader, *tok_, h, n);
  }

  std::unique_ptr<tokenizer::Tokenizer> tok_;
  fs::path dir_;
};

TEST_F(WindowProbesTest, SamplesDistinctWindowsOfTheAnswersTheSameWayEachRun) {
  const std::string data = Write(
      "harvest.jsonl",
      "{\"prompt\": \"never a window\", \"completion\": \"the union is strong and the union is "
      "strong again, said the clerk\"}\n");
  auto all = Sample(data, 3, 1000);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_FALSE(all->prompts.empty());
  EXPECT_EQ(all->prompts.size(), all->distinct_windows);
  std::set<std::vector<int32_t>> seen;
  for (const ProbePrompt& p : all->prompts) {
    ASSERT_EQ(p.window.size(), 3u);
    EXPECT_TRUE(seen.insert(p.window).second) << "a window probed twice";
    EXPECT_EQ(*tok_->Decode(p.window), p.text);
    EXPECT_EQ(p.id.size(), 17u);
    EXPECT_EQ(p.text.find("never"), std::string::npos) << "a prompt window was sampled";
  }
  auto two = Sample(data, 3, 2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->prompts.size(), 2u);
  EXPECT_EQ(two->distinct_windows, all->distinct_windows);
  EXPECT_EQ(two->prompts[0].id, all->prompts[0].id);  // the smallest keys, on every run
  EXPECT_EQ(two->prompts[1].id, all->prompts[1].id);
}

TEST_F(WindowProbesTest, DataWithoutAWindowIsRefused) {
  const std::string data = Write("short.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  EXPECT_EQ(Sample(data, 3, 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sample(data, 0, 10).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracemark::probe
