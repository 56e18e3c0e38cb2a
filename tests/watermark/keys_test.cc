#include "tracemark/watermark/keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace tracemark::watermark {
namespace {

std::vector<uint8_t> FromHex(const std::string& hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string ToHex(absl::Span<const uint8_t> b) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

Key TestMaster() {
  std::vector<uint8_t> b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(i);
  return *Key::FromBytes(b);
}

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  return dir + "/tracemark_" + std::to_string(::getpid()) + "_" + name;
}

TEST(Hkdf, Rfc5869TestCases) {
  // RFC 5869 A.1 and A.3 (SHA-256).
  std::vector<uint8_t> out(42);
  ASSERT_TRUE(HkdfSha256(FromHex("000102030405060708090a0b0c"),
                         FromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                         FromHex("f0f1f2f3f4f5f6f7f8f9"), absl::MakeSpan(out))
                  .ok());
  EXPECT_EQ(ToHex(out),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  ASSERT_TRUE(HkdfSha256({}, FromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), {},
                         absl::MakeSpan(out))
                  .ok());
  EXPECT_EQ(ToHex(out),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// Known answers: these pin the derivation. If one changes, every key ever issued changes with it;
// never update them without a new version label. Cross-checked with Python's hmac/hashlib.
TEST(KeyDerivation, KnownAnswers) {
  const Key master = TestMaster();
  EXPECT_EQ(master.Id(), "8d7f6b92b5390f5a");
  EXPECT_EQ(master.Commitment(),
            "246c4301e7f1a33dbab4582b3d3417416258883440a97a097466c7c17b722805");
  const Key epoch = *DeriveEpochKey(master, 0);
  EXPECT_EQ(ToHex(epoch.secret().span()),
            "dc06ef386988964beb6fe40c637a867856d02a19d7d2eb3659b1318e195f4986");
  EXPECT_EQ(ToHex(DeriveEpochKey(master, 7)->secret().span()),
            "e67886f1ac98835170420e2f401228f1fe5d77c499db461ce7c3d0b15c3e3ffb");
  const Key account = *DeriveAccountKey(epoch, 42);
  EXPECT_EQ(ToHex(account.secret().span()),
            "294c5dd9428e13657d8242f484e46bf9f7ebbc46cbb9bb0366c1279d6a1c8b5e");
  EXPECT_EQ(account.Id(), "3245f489359cb2a5");
}

TEST(KeyDerivation, DistinctAndDeterministic) {
  const Key master = TestMaster();
  const Key e0 = *DeriveEpochKey(master, 0), e1 = *DeriveEpochKey(master, 1);
  EXPECT_FALSE(e0.secret().Equals(e1.secret()));
  EXPECT_TRUE(DeriveEpochKey(master, 0)->secret().Equals(e0.secret()));
  EXPECT_FALSE(DeriveAccountKey(e0, 1)->secret().Equals(DeriveAccountKey(e1, 1)->secret()));
  // Purpose and index are length-prefixed / fixed-width: no two contexts collide.
  EXPECT_FALSE(master.Derive("epoch", 1)->secret().Equals(master.Derive("epoc", 1)->secret()));
  EXPECT_NE(e0.Id(), e1.Id());
  EXPECT_EQ(e0.Id().size(), 16u);
  EXPECT_EQ(e0.Commitment().size(), 64u);
}

TEST(KeyFiles, WriteReadRefuseOverwriteAndOpenPermissions) {
  const std::string path = TempPath("master.key");
  ::unlink(path.c_str());
  absl::StatusOr<std::string> id = WriteNewMasterKeyFile(path);
  ASSERT_TRUE(id.ok()) << id.status();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  absl::StatusOr<Key> k = ReadMasterKeyFile(path);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->Id(), *id);
  // Refuses to overwrite.
  absl::StatusOr<std::string> again = WriteNewMasterKeyFile(path);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(ReadMasterKeyFile(path).ok());
  EXPECT_EQ(ReadMasterKeyFile(path)->Id(), *id);
  // Refuses a group-readable key file.
  ::chmod(path.c_str(), 0640);
  EXPECT_EQ(ReadMasterKeyFile(path).status().code(), absl::StatusCode::kFailedPrecondition);
  ::unlink(path.c_str());
  EXPECT_EQ(ReadMasterKeyFile(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(KeyFiles, WrongSizeIsRejected) {
  const std::string path = TempPath("short.key");
  ::unlink(path.c_str());
  { std::ofstream(path) << "too short"; }
  ::chmod(path.c_str(), 0600);
  absl::StatusOr<Key> k = ReadMasterKeyFile(path);
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  // The message never contains the file's bytes.
  EXPECT_EQ(std::string(k.status().message()).find("too short"), std::string::npos);
  ::unlink(path.c_str());
}

TEST(KeyFiles, ADirectoryOrDeviceIsNotAKeyFile) {
  for (const char* path : {"/", "/dev/null"}) {
    absl::StatusOr<Key> k = ReadMasterKeyFile(path);
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_NE(std::string(k.status().message()).find("not a regular file"), std::string::npos)
        << k.status();
  }
}

TEST(KeyFiles, Environment) {
  ::setenv("TRACEMARK_TEST_KEY", std::string(64, 'a').c_str(), 1);
  EXPECT_TRUE(ReadMasterKeyFromEnv("TRACEMARK_TEST_KEY").ok());
  ::setenv("TRACEMARK_TEST_KEY", "abc", 1);
  EXPECT_EQ(ReadMasterKeyFromEnv("TRACEMARK_TEST_KEY").status().code(),
            absl::StatusCode::kInvalidArgument);
  ::setenv("TRACEMARK_TEST_KEY", std::string(64, 'z').c_str(), 1);
  EXPECT_FALSE(ReadMasterKeyFromEnv("TRACEMARK_TEST_KEY").ok());
  ::unsetenv("TRACEMARK_TEST_KEY");
  EXPECT_EQ(ReadMasterKeyFromEnv("TRACEMARK_TEST_KEY").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SecretBytes, ConstantTimeEqualsAndMove) {
  auto a = SecretBytes::Random(32);
  ASSERT_TRUE(a.ok());
  auto b = SecretBytes::CopyFrom(a->span());
  EXPECT_TRUE(a->Equals(*b));
  SecretBytes moved = std::move(*a);
  EXPECT_EQ(a->size(), 0u);
  EXPECT_TRUE(moved.Equals(*b));
}

}  // namespace
}  // namespace tracemark::watermark
