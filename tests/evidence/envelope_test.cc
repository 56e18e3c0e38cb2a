#include "tracemark/evidence/envelope.h"

#include <sodium.h>

#include <cmath>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tracemark/detect/scan_job.h"
#include "tracemark/evidence/report.h"

namespace tracemark::evidence {
namespace {

using nlohmann::json;

watermark::Key SeedFromHex(const char* hex) {
  std::vector<uint8_t> b(32);
  size_t len = 0;
  EXPECT_EQ(sodium_hex2bin(b.data(), b.size(), hex, 64, nullptr, &len, nullptr), 0);
  return *watermark::Key::FromBytes(b);
}

// RFC 8032, section 7.1, TEST 1.
constexpr char kSeed[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr char kPublic[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

TEST(EnvelopeTest, PreAuthEncodingIsDsseV1) {
  EXPECT_EQ(PreAuthEncoding("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  EXPECT_EQ(PreAuthEncoding("", ""), "DSSEv1 0  0 ");
}

TEST(EnvelopeTest, KnownKeyPairAndRoundTrip) {
  auto signer = EnvelopeSigner::FromSeed(SeedFromHex(kSeed));
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(signer->public_key_hex(), kPublic);
  EXPECT_EQ(*KeyIdOfPublicKey(kPublic), signer->key_id());
  const std::string payload = R"({"result": {"p_value": 1e-30}})";
  auto env = signer->Sign(kReportPayloadType, payload);
  ASSERT_TRUE(env.ok());
  auto v = VerifyEnvelope(*env, kPublic);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->payload, payload);
  EXPECT_EQ(v->payload_type, kReportPayloadType);
  EXPECT_EQ(v->key_id, signer->key_id());
  // Ed25519 is deterministic: the same payload signs the same.
  EXPECT_EQ(*signer->Sign(kReportPayloadType, payload), *env);
}

TEST(EnvelopeTest, AnyChangeFailsVerification) {
  auto signer = *EnvelopeSigner::FromSeed(SeedFromHex(kSeed));
  const std::string env = *signer.Sign(kReportPayloadType, "{\"p\": 1e-30}");
  const json e = json::parse(env);
  auto code = [&](const json& changed, const std::string& key = kPublic) {
    return VerifyEnvelope(changed.dump(), key).status().code();
  };
  json payload = e;
  payload["payload"] = "eyJwIjogMWUtMn0=";  // {"p": 1e-2}
  EXPECT_EQ(code(payload), absl::StatusCode::kPermissionDenied);
  json type = e;
  type["payloadType"] = "text/plain";  // the type is covered too
  EXPECT_EQ(code(type), absl::StatusCode::kPermissionDenied);
  json sig = e;
  std::string s = sig["signatures"][0]["sig"];
  s[3] = s[3] == 'A' ? 'B' : 'A';
  sig["signatures"][0]["sig"] = s;
  EXPECT_EQ(code(sig), absl::StatusCode::kPermissionDenied);
  auto other = *EnvelopeSigner::FromSeed(SeedFromHex(kPublic));  // any other key
  EXPECT_EQ(code(e, other.public_key_hex()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyEnvelope(env, "zz").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyEnvelope("{}", kPublic).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyEnvelope("not json", kPublic).status().code(),
            absl::StatusCode::kInvalidArgument);
  json none = e;
  none["signatures"] = json::array();
  EXPECT_EQ(code(none), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyEnvelope(env, kPublic).status().code(), absl::StatusCode::kOk);
}

}  // namespace
}  // namespace tracemark::evidence

// A report signed with fields of the wrong types (a number where a string belongs, a p-value
// missing) is refused by OpenReport with a status; nothing that reads it later can crash.
TEST(ReportTest, MistypedSignedReportIsRefusedNotACrash) {
  auto signer = *tracemark::evidence::EnvelopeSigner::FromSeed(
      *tracemark::watermark::Key::FromBytes(std::vector<uint8_t>(32, 3)));
  for (const char* payload :
       {R"({"format":"tracemark-report/1","inputs":[],"result":{},"keys":{},"tool":{"version":5}})",
        R"({"format":"tracemark-report/1","inputs":[3],"result":{},"keys":{},"tool":{}})",
        R"({"format":"tracemark-report/1","inputs":[],"result":{},"keys":{},"tool":{},
            "options":{"alpha":"x"}})"}) {
    auto opened = tracemark::evidence::OpenReport(
        *signer.Sign(tracemark::evidence::kReportPayloadType, payload), signer.public_key_hex());
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << payload;
  }
  const char* fine =
      R"({"format":"tracemark-report/1","inputs":[],"result":{"provider":{}},"keys":{},"tool":{}})";
  auto opened = tracemark::evidence::OpenReport(
      *signer.Sign(tracemark::evidence::kReportPayloadType, fine), signer.public_key_hex());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_NE(tracemark::evidence::RenderReportHtml(*opened).find("p = n/a"), std::string::npos);
}

// PValueLog10 reads back what PValueJson writes, below double's range too.
TEST(ReportTest, PValueLog10InvertsPValueJson) {
  using tracemark::detect::PValueLog10;
  EXPECT_NEAR(*PValueLog10(nlohmann::json(1e-5)), -5.0, 1e-12);
  EXPECT_NEAR(*PValueLog10(nlohmann::json("3.1e-412")), std::log10(3.1) - 412, 1e-12);
  EXPECT_FALSE(PValueLog10(nlohmann::json(0.0)).has_value());
  EXPECT_FALSE(PValueLog10(nlohmann::json("small")).has_value());
  EXPECT_FALSE(PValueLog10(nlohmann::json()).has_value());
}
