#include "tracemark/base/file_io.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"

namespace tracemark::base {
namespace {

namespace fs = std::filesystem;

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::path(::testing::TempDir()) /
        ("file_io_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
         "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Entries of dir_ (to see that nothing was left beside a file).
  size_t Entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  fs::path dir_;
};

TEST_F(FileIoTest, WritesAndReplacesLeavingNothingBeside) {
  const fs::path p = dir_ / "r.json";
  ASSERT_TRUE(WriteFileAtomically(p.string(), "first").ok());
  EXPECT_EQ(Read(p), "first");
  ASSERT_TRUE(WriteFileAtomically(p.string(), std::string(1 << 20, 'x')).ok());
  EXPECT_EQ(Read(p).size(), 1u << 20);
  EXPECT_EQ(Entries(), 1u);
  EXPECT_TRUE(CheckWritable(p.string()).ok());
  EXPECT_TRUE(CheckWritable((dir_ / "new.json").string()).ok());
}

TEST_F(FileIoTest, FollowsASymbolicLinkAndKeepsIt) {
  const fs::path target = dir_ / "target.txt", link = dir_ / "link.txt";
  ASSERT_TRUE(WriteFileAtomically(target.string(), "old").ok());
  fs::create_symlink(target, link);
  ASSERT_TRUE(WriteFileAtomically(link.string(), "new").ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(Read(target), "new");
}

// A device is written in place, never replaced by a regular file; its errors are reported.
TEST_F(FileIoTest, ADeviceIsWrittenInPlaceAndItsErrorsReported) {
  EXPECT_TRUE(WriteFileAtomically("/dev/null", "into the void").ok());
  struct stat st;
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  if (::access("/dev/full", W_OK) == 0) {
    const absl::Status full = WriteFileAtomically("/dev/full", "no room");
    EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
    EXPECT_NE(full.message().find("/dev/full"), std::string::npos) << full;
    ASSERT_EQ(::stat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
}

TEST_F(FileIoTest, ClearErrorsForBadPaths) {
  const std::string missing = (dir_ / "no" / "such" / "dir" / "r.json").string();
  EXPECT_EQ(WriteFileAtomically(missing, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CheckWritable(missing).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomically(dir_.string(), "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckWritable(dir_.string()).code(), absl::StatusCode::kFailedPrecondition);
  const fs::path file = dir_ / "plain";
  ASSERT_TRUE(WriteFileAtomically(file.string(), "x").ok());
  EXPECT_EQ(CheckWritable((file / "below").string()).code(), absl::StatusCode::kNotFound);
  if (::geteuid() != 0) {  // root writes anywhere
    const fs::path ro = dir_ / "ro";
    fs::create_directories(ro);
    ::chmod(ro.c_str(), 0500);
    EXPECT_EQ(WriteFileAtomically((ro / "r").string(), "x").code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(CheckWritable((ro / "r").string()).code(), absl::StatusCode::kPermissionDenied);
    ::chmod(ro.c_str(), 0700);
  }
}

// A file-size limit stands in for a full disk: the write fails with ResourceExhausted, the old
// contents stay whole, and no partial file is left beside them.
TEST_F(FileIoTest, AFullDiskKeepsTheOldFileWhole) {
  const fs::path p = dir_ / "r.json";
  ASSERT_TRUE(WriteFileAtomically(p.string(), "the old report").ok());
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status s = WriteFileAtomically(p.string(), std::string(100000, 'n'));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(Read(p), "the old report");
  EXPECT_EQ(Entries(), 1u);
}

TEST(ErrnoStatusTest, Codes) {
  EXPECT_EQ(ErrnoStatus(ENOSPC, "w").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(EACCES, "w").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(ENOENT, "w").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EIO, "w").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus(EIO, "cannot write f").message(), "cannot write f: Input/output error");
}

}  // namespace
}  // namespace tracemark::base
