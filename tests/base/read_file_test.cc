// base::ReadFile: whole files, and errors that name the file, its kind and the system's reason.
#include "tracemark/base/read_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace tracemark::base {
namespace {

namespace fs = std::filesystem;

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("read_file_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

TEST_F(ReadFileTest, ReadsEveryByte) {
  std::string bytes(200000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  const absl::StatusOr<std::string> got = ReadFile(Write("b.bin", bytes), "test file");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  EXPECT_EQ(*ReadFile(Write("empty", ""), "test file"), "");
}

TEST_F(ReadFileTest, MissingFileIsNotFoundNamingWhatAndPath) {
  const std::string p = (dir_ / "absent.json").string();
  const absl::Status s = ReadFile(p, "tokenizer file").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "cannot open tokenizer file " + p + ": No such file or directory");
}

TEST_F(ReadFileTest, DirectoryIsFailedPrecondition) {
  EXPECT_EQ(ReadFile(dir_.string(), "lexicon").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tracemark::base
