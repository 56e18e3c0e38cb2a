#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/ledger_records.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"
#include "tracemark/ledger/writer.h"

namespace tracemark::ledger {
namespace {

namespace fs = std::filesystem;

Record Sample(uint64_t n) {
  Record r;
  if (n % 7 != 3) r.account = n * 1000003 % 25000;
  r.epoch = static_cast<uint32_t>(n % 3);
  r.epoch_key_id = "k1:0123456789abcdef";
  r.time_us = 1764800000000000 + static_cast<int64_t>(n);
  r.tokenizer = "cl100k_base";
  for (uint64_t i = 0; i < 5; ++i)
    r.prompt_ids.push_back(static_cast<int32_t>((n + i) * 37 % 100000));
  for (uint64_t i = 0; i < 20 + n % 50; ++i) {
    r.response_ids.push_back(static_cast<int32_t>((n * 31 + i * 17) % 100256));
  }
  return r;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("ledger_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<Record> ReadAll(const std::string& path, ReadReport* report = nullptr,
                              ReadOptions options = {}) {
    auto records = test_support::ReadRecords(path, report, options);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *std::move(records) : std::vector<Record>();
  }

  std::string dir_;
};

TEST(RecordTest, RoundTripsEveryField) {
  for (uint64_t n = 0; n < 50; ++n) {
    const Record r = Sample(n);
    auto back = DecodeRecord(EncodeRecord(r));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r);
  }
  Record extremes;
  extremes.account = kMaxAccount;
  extremes.epoch = UINT32_MAX;
  extremes.time_us = INT64_MAX;
  extremes.response_ids = {0, INT32_MAX};
  auto back = DecodeRecord(EncodeRecord(extremes));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, extremes);
}

TEST(RecordTest, RefusesWhatNoRecordIs) {
  const std::string good = EncodeRecord(Sample(5));
  EXPECT_FALSE(DecodeRecord("").ok());
  EXPECT_FALSE(DecodeRecord(std::string(1, '\x02') + good.substr(1)).ok());  // unknown version
  EXPECT_FALSE(DecodeRecord(good + "x").ok());                               // trailing bytes
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeRecord(good.substr(0, n)).ok()) << "prefix of " << n << " bytes";
  }
  // An id over 2^31 - 1, and an overlong varint.
  const std::string big("\x01\x00\x00\x00\x00\x00\x00\x01\x80\x80\x80\x80\x08", 13);
  EXPECT_FALSE(DecodeRecord(big).ok());
  EXPECT_FALSE(
      DecodeRecord(std::string("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13)).ok());
  Record negative = Sample(1);
  negative.response_ids[3] = -1;
  EXPECT_FALSE(CheckRecord(negative).ok());
  Record reserved = Sample(1);
  reserved.account = kMaxAccount + 1;  // the window index's mark of an anonymous request
  EXPECT_FALSE(CheckRecord(reserved).ok());
  // Its encoding (flag 1, then 2^64 - 1 as a varint) does not decode either.
  std::string encoded("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
  encoded += EncodeRecord(Sample(1)).substr(1 + 1 + 1);  // the rest of an anonymous record
  EXPECT_FALSE(DecodeRecord(encoded).ok());
}

TEST_F(LedgerTest, WritesAndReadsBackInOrderAcrossSegments) {
  std::vector<Record> written;
  for (int seg = 0; seg < 3; ++seg) {
    auto w = Writer::Open(dir_);
    ASSERT_TRUE(w.ok()) << w.status();
    for (uint64_t n = 0; n < 40; ++n) {
      written.push_back(Sample(static_cast<uint64_t>(seg) * 100 + n));
      ASSERT_TRUE((*w)->Append(written.back()).ok());
    }
    EXPECT_EQ((*w)->stats().records, 40u);
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_FALSE((*w)->Append(Sample(1)).ok());  // closed
  }
  ReadReport report;
  EXPECT_EQ(ReadAll(dir_, &report), written);
  ASSERT_EQ(report.segments.size(), 3u);
  for (const SegmentReport& s : report.segments) {
    EXPECT_TRUE(s.finished);
    EXPECT_EQ(s.records, 40u);
  }
  // One segment file alone.
  EXPECT_EQ(ReadAll(report.segments[1].path).size(), 40u);
}

TEST_F(LedgerTest, EveryPrefixOfASegmentReadsItsWholeRecords) {
  auto w = Writer::Open(dir_);
  ASSERT_TRUE(w.ok());
  std::vector<Record> written;
  for (uint64_t n = 0; n < 12; ++n) {
    written.push_back(Sample(n));
    ASSERT_TRUE((*w)->Append(written.back()).ok());
  }
  ASSERT_TRUE((*w)->Close().ok());
  std::ifstream in((*w)->path(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = dir_ + "/cut.tml";
  size_t last = 0;
  for (size_t n = 8; n <= bytes.size(); ++n) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, n);
    ReadReport report;
    const std::vector<Record> got = ReadAll(cut, &report);
    ASSERT_LE(got.size(), written.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), written.begin())) << n;
    EXPECT_GE(got.size(), last) << "a longer prefix lost records";
    last = got.size();
    EXPECT_EQ(report.segments[0].finished, n == bytes.size()) << n;
  }
  EXPECT_EQ(last, written.size());
  std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, 5);
  EXPECT_EQ(ReadLedger(cut, [](const Record&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerTest, DamageIsDataLossNamingTheSegmentOrSkipped) {
  std::string path;
  {
    auto w = Writer::Open(dir_);
    ASSERT_TRUE(w.ok());
    for (uint64_t n = 0; n < 30; ++n) ASSERT_TRUE((*w)->Append(Sample(n)).ok());
    path = (*w)->path();
  }  // the destructor closes
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
  f.put('\x5a');
  f.close();
  absl::Status st = ReadLedger(dir_, [](const Record&) { return absl::OkStatus(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find(path), std::string::npos) << st;
  ReadReport report;
  const std::vector<Record> got = ReadAll(dir_, &report, {.skip_damaged = true});
  EXPECT_LT(got.size(), 30u);
  EXPECT_FALSE(report.segments[0].damage.empty());
}

TEST_F(LedgerTest, AnImportAppearsOnlyWhenClosedAndAbandonLeavesNothing) {
  auto w = Writer::Open(dir_, {.publish_on_close = true});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Sample(1)).ok());
  EXPECT_TRUE(ReadAll(dir_).empty());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadAll(dir_).size(), 1u);
  auto v = Writer::Open(dir_, {.publish_on_close = true});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->Append(Sample(2)).ok());
  ASSERT_TRUE((*v)->Abandon().ok());
  EXPECT_EQ(ReadAll(dir_).size(), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(LedgerTest, ThreadsAppendWholeRecords) {
  auto w = Writer::Open(dir_);
  ASSERT_TRUE(w.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t n = 0; n < 200; ++n) {
        EXPECT_TRUE((*w)->Append(Sample(static_cast<uint64_t>(t) * 1000 + n)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadAll(dir_).size(), 800u);
}

// kill -9 while a writer appends: every acknowledged record is read back whole.
TEST_F(LedgerTest, KillNineLosesAtMostTheRecordInFlight) {
  int ack[2];
  ASSERT_EQ(pipe(ack), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ack[0]);
    auto w = Writer::Open(dir_);
    if (!w.ok()) _exit(2);
    for (uint64_t n = 0;; ++n) {
      if (!(*w)->Append(Sample(n)).ok()) _exit(3);
      const char c = 1;
      if (write(ack[1], &c, 1) != 1) _exit(4);
    }
  }
  close(ack[1]);
  uint64_t acknowledged = 0;
  char c;
  while (acknowledged < 2000 && read(ack[0], &c, 1) == 1) ++acknowledged;
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  while (read(ack[0], &c, 1) == 1) ++acknowledged;  // acknowledged before the kill
  close(ack[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
  ReadReport report;
  const std::vector<Record> got = ReadAll(dir_, &report);
  ASSERT_GE(got.size(), acknowledged);
  EXPECT_LE(got.size(), acknowledged + 1);
  for (size_t n = 0; n < got.size(); ++n) ASSERT_EQ(got[n], Sample(n));
  EXPECT_FALSE(report.segments[0].finished);
}

TEST_F(LedgerTest, RefusesBadPathsAndLevels) {
  EXPECT_EQ(Writer::Open(dir_, {.compression_level = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Writer::Open(dir_ + "/no/such/parent").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadLedger(dir_ + "/missing", [](const Record&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kNotFound);
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_EQ(Writer::Open(dir_ + "/file").status().code(), absl::StatusCode::kFailedPrecondition);
  std::ofstream(dir_ + "/x.tml") << "not a ledger segment at all";
  EXPECT_EQ(ReadLedger(dir_, [](const Record&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracemark::ledger
