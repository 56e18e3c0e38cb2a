// End to end: a dataset of watermarked answers from several accounts, plain text and bad records,
// in every input shape, scanned and attributed; shards merged give the single scan's summary.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "reference_fixture.h"
#include "tracemark/canary/suite.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/detect/scan_result_io.h"
#include "tracemark/detect/scanner.h"
#include "tracemark/evidence/report.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::reference {
namespace {

namespace fs = std::filesystem;
using detect::DocumentResult;

class ScanTest : public ReferenceTest {
 protected:
  void SetUp() override {
    ReferenceTest::SetUp();
    if (IsSkipped()) return;
    config_.vocab_size = tok_->vocab_size();
    wm_ = *watermark::Watermarker::Create(*watermark::DeriveEpochKey(Master(), 1), config_);
    dir_ = fs::temp_directory_path() / ("tracemark_scan_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Answer(uint64_t account, uint64_t seed, const std::string& prompt, int tokens = 700) {
    auto acct = *wm_->ForAccount(account == kPlain ? 0 : account);
    GenerateOptions opt;
    opt.max_tokens = tokens;
    opt.seed = seed;
    ReferenceGenerator gen(model_, tok_);
    auto g = gen.Generate(prompt, account == kPlain ? nullptr : wm_.get(), &acct, opt);
    EXPECT_TRUE(g.ok()) << g.status();
    return g->text;
  }

  static constexpr uint64_t kPlain = ~0ull;
  watermark::Config config_;
  std::unique_ptr<watermark::Watermarker> wm_;
  fs::path dir_;
};

TEST_F(ScanTest, AttributesEveryAnswerInEveryShapeAndReportsWhatItSkipped) {
  const std::string q = "Fellow citizens of the Senate and House of Representatives:";
  using nlohmann::json;
  std::ofstream chat(dir_ / "chat.jsonl");
  chat << json{{"id", "a"},
               {"messages",
                {{{"role", "user"}, {"content", q}},
                 {{"role", "assistant"}, {"content", Answer(11, 1, q)}}}}}
              .dump()
       << "\n";
  chat << "{not json\n";
  chat << json{{"conversations",
                {{{"from", "human"}, {"value", q}},
                 {{"from", "gpt"}, {"value", Answer(222, 2, q)}}}}}
              .dump()
       << "\n";
  chat << json{{"instruction", q}, {"input", ""}, {"output", Answer(11, 3, q)}}.dump() << "\n";
  chat << json{{"prompt", q}, {"completion", Answer(kPlain, 4, q)}}.dump() << "\n";
  chat.close();
  std::ofstream(dir_ / "z_answer.txt") << Answer(3333, 5, q);

  auto v = *detect::Verifier::Create(Master(), config_, {0, 1});
  detect::ScanOptions opt;
  opt.account_limit = 5000;
  opt.threads = 2;
  opt.attribution_alpha = 1e-4;
  detect::Scanner scanner(*v, *tok_, opt);
  auto reader = *dataset::DocumentReader::Open({dir_.string()});
  int progress_calls = 0;
  auto r = scanner.Scan(*reader, [&](const detect::ScanProgress&) { ++progress_calls; });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(progress_calls, 1);
  ASSERT_EQ(r->documents.size(), 5u);
  const std::vector<std::optional<uint64_t>> want = {11, 222, 11, std::nullopt, 3333};
  for (size_t i = 0; i < want.size(); ++i) {
    const DocumentResult& d = r->documents[i];
    EXPECT_EQ(d.index, i);
    EXPECT_EQ(d.account, want[i]) << d.source << " p=" << d.account_p_value.ToString();
    if (want[i].has_value()) {
      EXPECT_LT(d.provider_p_value.log10(), -10) << d.source;
      EXPECT_EQ(d.provider_epoch, 1u);
    } else {
      EXPECT_GT(d.provider_p_value.value(), 1e-4) << d.source;
    }
    EXPECT_GT(d.tokens_scored, 600u);
  }
  EXPECT_EQ(r->documents[0].id, "a");
  EXPECT_EQ(fs::path(r->documents[2].source).filename().string(), "chat.jsonl:4");
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_EQ(fs::path(r->skipped[0].source).filename().string(), "chat.jsonl:2");

  auto s = scanner.Summarize(*r);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_LT(s->provider_p_value.log10(), -50);
  EXPECT_EQ(s->provider_epoch, 1u);
  EXPECT_EQ(s->documents_attributed, 4u);
  ASSERT_FALSE(s->accounts.empty());
  EXPECT_EQ(s->accounts[0].account, 11u);  // two documents pooled: the strongest evidence
  EXPECT_EQ(s->accounts[0].documents, 2u);
  EXPECT_EQ(s->accounts[0].attributed, 2u);
}

TEST_F(ScanTest, ShardsMergedGiveExactlyTheSingleScan) {
  std::vector<dataset::Document> docs;
  for (int i = 0; i < 6; ++i) {
    dataset::Document d;
    d.index = static_cast<uint64_t>(i);
    d.id = d.source = "doc" + std::to_string(i);
    const std::string q = "The state of the Union";
    d.segments.push_back({q, Answer(static_cast<uint64_t>(i % 3), 40 + i, q, 300)});
    docs.push_back(std::move(d));
  }
  docs.emplace_back();
  docs.back().id = docs.back().source = "duplicate of doc0";
  docs.back().index = 6;
  docs.back().segments = docs[0].segments;  // repeated text must not count twice
  auto v = *detect::Verifier::Create(Master(), config_, {1});
  detect::ScanOptions opt;
  opt.account_limit = 100;
  detect::Scanner scanner(*v, *tok_, opt);
  auto copy = [](const dataset::Document& d) {
    dataset::Document c;
    c.index = d.index;
    c.id = d.id;
    c.source = d.source;
    c.segments = d.segments;
    return c;
  };
  detect::ScanResult whole, a, b;
  for (const auto& d : docs) ASSERT_TRUE(scanner.ScanDocument(copy(d), &whole).ok());
  for (size_t i = 0; i < docs.size(); ++i) {
    ASSERT_TRUE(scanner.ScanDocument(copy(docs[i]), i < 3 ? &a : &b).ok());
  }
  ASSERT_TRUE(b.Merge(std::move(a)).ok());  // merge order does not matter
  auto sw = *scanner.Summarize(whole);
  auto sm = *scanner.Summarize(b);
  EXPECT_EQ(sm.provider_p_value.log(), sw.provider_p_value.log());
  EXPECT_EQ(sm.provider_tuples, sw.provider_tuples);
  ASSERT_EQ(sm.accounts.size(), sw.accounts.size());
  for (size_t i = 0; i < sw.accounts.size(); ++i) {
    EXPECT_EQ(sm.accounts[i].account, sw.accounts[i].account);
    EXPECT_EQ(sm.accounts[i].documents, sw.accounts[i].documents);
    EXPECT_EQ(sm.accounts[i].tuples, sw.accounts[i].tuples);
    EXPECT_EQ(sm.accounts[i].combined_p_value.log(), sw.accounts[i].combined_p_value.log());
  }
  EXPECT_EQ(b.tokens, whole.tokens);
  // The duplicate adds tokens but no tuple: the dataset statistic is over unique tuples.
  detect::ScanResult without_dup;
  for (size_t i = 0; i + 1 < docs.size(); ++i) {
    ASSERT_TRUE(scanner.ScanDocument(copy(docs[i]), &without_dup).ok());
  }
  EXPECT_EQ(scanner.Summarize(without_dup)->provider_tuples, sw.provider_tuples);
}

// A scan split into partitions of its input files, each partition's result carried as bytes
// (what a Dask worker returns), merged in input order: exactly the single scan's JSON result, wall
// time aside. The bytes are canonical, and damaged bytes are refused, never half-read.
TEST_F(ScanTest, PartitionsCarriedAsBytesGiveExactlyTheSingleScan) {
  using nlohmann::json;
  const std::string q = "To the Congress of the United States:";
  fs::create_directories(dir_ / "in");
  std::vector<std::string> files;
  for (int f = 0; f < 5; ++f) {
    const fs::path path = dir_ / "in" / ("part-" + std::to_string(f) + ".jsonl");
    std::ofstream out(path);
    for (int i = 0; i < 2; ++i) {
      const uint64_t account = f == 4 && i == 1 ? kPlain : static_cast<uint64_t>(7 + (f + i) % 3);
      out << json{{"prompt", q}, {"completion", Answer(account, 100 + 2 * f + i, q, 250)}}.dump()
          << "\n";
    }
    if (f == 2) out << "{not json\n";  // a skipped record travels too
    files.push_back(path.string());
  }
  detect::ScanJobSpec spec;
  spec.inputs = files;
  spec.data_dir = TRACEMARK_DATA_DIR;
  spec.epochs = {0, 1};
  spec.account_limit = 50;
  spec.alpha = 1e-4;
  spec.threads = 2;
  auto whole = detect::RunScanJob(spec, Master());
  ASSERT_TRUE(whole.ok()) << whole.status();

  std::vector<detect::ScanPartitionOutput> parts;
  std::string first_bytes;
  for (const auto& slice : std::vector<std::vector<std::string>>{
           {files[0], files[1]}, {files[2]}, {files[3], files[4]}}) {
    detect::ScanJobSpec part = spec;
    part.inputs = slice;
    part.threads = 1;
    auto p = detect::ScanPartition(part, Master());
    ASSERT_TRUE(p.ok()) << p.status();
    const std::string bytes = detect::SerializeScanResult(p->scan);
    auto back = detect::ParseScanResult(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(detect::SerializeScanResult(*back), bytes);  // canonical
    if (first_bytes.empty()) first_bytes = bytes;
    parts.push_back({*std::move(back), p->input_files});
  }
  auto merged = detect::MergeScanPartitions(spec, Master(), parts);
  ASSERT_TRUE(merged.ok()) << merged.status();
  json a = whole->result, b = merged->result;
  a["totals"].erase("seconds");
  b["totals"].erase("seconds");
  EXPECT_EQ(a, b) << a.dump().substr(0, 2000) << "\n" << b.dump().substr(0, 2000);
  EXPECT_EQ(merged->input_files, whole->input_files);
  EXPECT_EQ(a["accounts"].size(), whole->result["accounts"].size());
  EXPECT_FALSE(a["accounts"].empty());

  // Damaged bytes: every truncation and a sample of single-byte changes parse or are refused.
  for (size_t n = 0; n < first_bytes.size(); n += 1 + n / 64) {
    auto cut = detect::ParseScanResult(std::string_view(first_bytes).substr(0, n));
    EXPECT_FALSE(cut.ok()) << n;
  }
  EXPECT_FALSE(detect::ParseScanResult(first_bytes + "x").ok());
  for (size_t i = 0; i < first_bytes.size(); i += 7) {
    std::string changed = first_bytes;
    changed[i] = static_cast<char>(changed[i] ^ 0x5a);
    (void)detect::ParseScanResult(changed);  // a status either way; ASan watches the reads
  }
  // A partition scored under another master key is refused, not summarised.
  const watermark::Key other = *watermark::Key::FromBytes(std::vector<uint8_t>(32, 77));
  detect::ScanJobSpec part = spec;
  part.inputs = {files[0]};
  auto foreign = detect::ScanPartition(part, other);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  std::vector<detect::ScanPartitionOutput> mixed = {parts[1], *foreign};
  auto refused = detect::MergeScanPartitions(spec, Master(), std::move(mixed));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  refused = detect::MergeScanPartitions(spec, Master(), {*std::move(foreign)});  // alone too
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  // A partition scored under more epochs than the merge's: refused, not read out of range.
  part.epochs = {0, 1, 2};
  auto wider = detect::ScanPartition(part, Master());
  ASSERT_TRUE(wider.ok()) << wider.status();
  refused = detect::MergeScanPartitions(spec, Master(), {*std::move(wider)});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
}

TEST_F(ScanTest, SlidingWindowsFindAWatermarkedPassageInsideLongerText) {
  const std::string q = "The state of the Union";
  const std::string human = Answer(kPlain, 71, q, 1500) + Answer(kPlain, 72, q, 1500);
  const std::string passage = Answer(42, 73, q, 300);
  auto v = *detect::Verifier::Create(Master(), config_, {1});
  auto scan = [&](size_t window) {
    detect::ScanOptions opt;
    opt.window_tokens = window;
    detect::Scanner scanner(*v, *tok_, opt);
    dataset::Document d;
    d.id = d.source = "mixed";
    d.segments.push_back(
        {"", human.substr(0, human.size() / 2) + passage + human.substr(human.size() / 2)});
    detect::ScanResult r;
    EXPECT_TRUE(scanner.ScanDocument(std::move(d), &r).ok());
    return r.documents.at(0);
  };
  const DocumentResult whole = scan(0), windowed = scan(128);
  EXPECT_EQ(whole.windows, 0u);
  EXPECT_GT(windowed.windows, 40u);
  EXPECT_LT(windowed.window_p_value.log10(), -6)
      << windowed.window_p_value.ToString() << " whole " << whole.provider_p_value.ToString();
  EXPECT_LT(windowed.provider_p_value.log10(), whole.provider_p_value.log10() - 2)
      << whole.provider_p_value.ToString();
  // The corrections: the window p-value counts every window, the document's both tests.
  EXPECT_LE(windowed.provider_p_value.log(), std::log(2.0) + windowed.window_p_value.log() + 1e-9);
  // Plain text alone: windows flag nothing.
  detect::ScanOptions opt;
  opt.window_tokens = 128;
  detect::Scanner scanner(*v, *tok_, opt);
  dataset::Document d;
  d.segments.push_back({"", human});
  detect::ScanResult r;
  ASSERT_TRUE(scanner.ScanDocument(std::move(d), &r).ok());
  EXPECT_GT(r.documents[0].provider_p_value.value(), 1e-3);
}

TEST_F(ScanTest, AMismatchedTokenizerIsRefused) {
  watermark::Config other = config_;
  other.vocab_size = 50257;
  auto v = *detect::Verifier::Create(Master(), other, {0});
  detect::Scanner scanner(*v, *tok_, {});
  std::ofstream(dir_ / "t.txt") << "text";
  auto reader = *dataset::DocumentReader::Open({dir_.string()});
  EXPECT_EQ(scanner.Scan(*reader).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ScanTest, SeenWindowsRestrictTheDatasetTests) {
  // The suspected training data: watermarked answers. The suspect's text: copies of half of them
  // (every window seen) and as many plain answers (few windows seen). At the seen windows the
  // watermark is found on fewer tuples; a clean suspect stays null there.
  const std::string q = "Fellow citizens of the Senate and House of Representatives:";
  using nlohmann::json;
  std::vector<std::string> served;
  {
    std::ofstream out(dir_ / "served.jsonl");
    for (int i = 0; i < 6; ++i) {
      served.push_back(Answer(5, 100 + static_cast<uint64_t>(i), q, 300));
      out << json{{"prompt", q}, {"completion", served.back()}}.dump() << "\n";
    }
  }
  {
    std::ofstream suspect(dir_ / "suspect.jsonl"), clean(dir_ / "clean.jsonl");
    for (int i = 0; i < 3; ++i)
      suspect << json{{"text", served[static_cast<size_t>(i)]}}.dump() << "\n";
    for (int i = 0; i < 3; ++i) {
      const std::string plain = Answer(kPlain, 200 + static_cast<uint64_t>(i), q, 300);
      suspect << json{{"text", plain}}.dump() << "\n";
      clean << json{{"text", plain}}.dump() << "\n";
    }
  }
  auto training = *dataset::DocumentReader::Open({(dir_ / "served.jsonl").string()});
  auto seen = detect::SeenWindows::Collect(*training, *tok_, config_.context_width);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->documents(), 6u);
  EXPECT_GT(seen->size(), 1000u);
  const std::vector<int32_t> ids = *tok_->Encode(served[0]);
  EXPECT_TRUE(seen->Contains(ids, 10));
  EXPECT_FALSE(seen->Contains(ids, 1));  // shorter than a window
  auto v = *detect::Verifier::Create(Master(), config_, {1});
  detect::ScanOptions opt;
  opt.seen = &*seen;
  detect::Scanner scanner(*v, *tok_, opt);
  auto scan = [&](const std::string& file) {
    auto reader = *dataset::DocumentReader::Open({(dir_ / file).string()});
    auto r = scanner.Scan(*reader);
    EXPECT_TRUE(r.ok()) << r.status();
    return *scanner.Summarize(*r);
  };
  const detect::ScanSummary s = scan("suspect.jsonl");
  ASSERT_TRUE(s.seen.has_value());
  EXPECT_LT(s.seen->provider_tuples, s.provider_tuples);
  EXPECT_GT(s.seen->provider_tuples, s.provider_tuples / 3);
  EXPECT_LT(s.seen->provider_p_value.log10(), -20);
  EXPECT_FALSE(s.seen->white_box_p_value.has_value());  // no log-probabilities in the input
  const detect::ScanSummary c = scan("clean.jsonl");
  ASSERT_TRUE(c.seen.has_value());
  EXPECT_LT(c.seen->provider_tuples, c.provider_tuples / 4);
  EXPECT_GT(c.seen->provider_p_value.value(), 1e-3);
}

}  // namespace
}  // namespace tracemark::reference

namespace tracemark::reference {
namespace {

// Canary evidence through the scanner: answers served with canaries to one account, pooled with
// a second account's, are attributed to both by their canary choices, the cohort test finds them,
// and an innocent cohort is not accused.
class CanaryScanTest : public ScanTest {};

TEST_F(CanaryScanTest, CanaryEvidenceAttributesAccountsAndCohorts) {
  auto proc = *canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), *tok_);
  auto suite = *canary::ParseSuite(canary::BuiltInSuiteText());
  const watermark::Key epoch = *watermark::DeriveEpochKey(Master(), 1);
  auto answer = [&](uint64_t account, uint64_t seed) {
    auto acct = *wm_->ForAccount(account);
    GenerateOptions opt;
    opt.max_tokens = 300;
    opt.seed = seed;
    opt.canary = proc.get();
    ReferenceGenerator gen(model_, tok_);
    const std::string& prefix = suite[seed % suite.size()].prefix;
    auto g = gen.Generate(prefix, wm_.get(), &acct, opt);
    EXPECT_TRUE(g.ok()) << g.status();
    return std::make_pair(prefix, g->text);
  };
  {
    std::ofstream out(dir_ / "harvest.jsonl");
    for (uint64_t i = 0; i < 120; ++i) {
      const auto [prompt, text] = answer(i % 2 == 0 ? 41 : 97, i);
      out << nlohmann::json{{"prompt", prompt}, {"completion", text}}.dump() << "\n";
    }
  }
  std::ofstream(dir_ / "cohort.txt") << "41\n97\n";
  auto v = *detect::Verifier::Create(Master(), config_, {1});
  detect::ScanOptions opt;
  opt.account_limit = 200;
  opt.threads = 2;
  opt.canary = proc.get();
  opt.cohort = {41, 97};
  detect::Scanner scanner(*v, *tok_, opt);
  auto reader = *dataset::DocumentReader::Open({dir_.string() + "/harvest.jsonl"});
  auto r = scanner.Scan(*reader);
  ASSERT_TRUE(r.ok()) << r.status();
  auto s = scanner.Summarize(*r);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->canary.has_value());
  const detect::CanarySummary& c = *s->canary;
  EXPECT_GT(c.tuples, 60u);
  EXPECT_EQ(c.attribution.accounts_tried, 200u);
  ASSERT_GE(c.attribution.top.size(), 2u);
  const std::set<uint64_t> top2 = {c.attribution.top[0].account, c.attribution.top[1].account};
  EXPECT_EQ(top2, (std::set<uint64_t>{41, 97}));
  EXPECT_LT(c.attribution.corrected.log10(), -3);
  EXPECT_GT(c.attribution.top[2].p.log10(), -3);  // the best innocent account
  ASSERT_TRUE(c.cohort.has_value());
  EXPECT_EQ(c.cohort->accounts, 2u);
  EXPECT_LT(c.cohort->p.log10(), -10);
  // Documents attributed by their payload carry their account's canary test.
  int with_canary = 0;
  for (const DocumentResult& d : r->documents) with_canary += d.canary_p_value.log10() < 0;
  EXPECT_GT(with_canary, 0);
  // An innocent cohort of the same size.
  detect::ScanOptions innocent = opt;
  innocent.cohort = {5, 6};
  detect::Scanner scanner2(*v, *tok_, innocent);
  auto s2 = scanner2.Summarize(*r);
  ASSERT_TRUE(s2.ok());
  EXPECT_GT(s2->canary->cohort->p.log10(), -3);
}

// Text a tokenizer refuses skips that document, with the reason, and the scan goes on (a literal
// U+2581 under SentencePiece, found by fuzz_tokenizer, used to fail the whole scan).
TEST_F(ScanTest, ATokenizerRefusalSkipsTheDocumentNotTheScan) {
  detect::ScanJobSpec spec;
  spec.encoding = "spm:sotu-bpe8k";
  spec.data_dir = TRACEMARK_DATA_DIR;
  spec.account_limit = 10;
  spec.canary = false;
  std::ofstream(dir_ / "mixed.jsonl")
      << nlohmann::json{{"prompt", "q"}, {"completion", "Fellow citizens of the Senate."}}.dump()
      << "\n"
      << nlohmann::json{{"prompt", "q"}, {"completion", "a\u2581b and more words here"}}.dump()
      << "\n"
      << nlohmann::json{{"prompt", "q"}, {"completion", "And of the House."}}.dump() << "\n";
  spec.inputs = {(dir_ / "mixed.jsonl").string()};
  auto run = detect::RunScanJob(spec, Master());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->scan.documents.size(), 2u);
  ASSERT_EQ(run->scan.skipped.size(), 1u);
  EXPECT_NE(run->scan.skipped[0].source.find("mixed.jsonl:2"), std::string::npos);
  EXPECT_NE(run->scan.skipped[0].reason.find("U+2581"), std::string::npos);
}

// A signed report of a scan recomputes identically from a copy of its inputs with the watermark
// key; a report whose result or options were changed before signing does not, and says where.
TEST_F(ScanTest, ReportRecomputesIdenticallyAndCatchesAChangedResult) {
  const std::string q = "To the Congress of the United States:";
  using nlohmann::json;
  fs::create_directories(dir_ / "in");
  std::ofstream out(dir_ / "in" / "harvest.jsonl");
  for (uint64_t i = 0; i < 4; ++i) {
    out << json{{"prompt", q}, {"completion", Answer(i < 3 ? 11 : 222, 10 + i, q, 500)}}.dump()
        << "\n";
  }
  out << json{{"prompt", q}, {"completion", Answer(kPlain, 20, q, 500)}}.dump() << "\n";
  out.close();
  detect::ScanJobSpec spec;
  spec.inputs = {(dir_ / "in").string()};
  spec.data_dir = TRACEMARK_DATA_DIR;
  spec.epochs = {0, 1};
  spec.account_limit = 500;
  spec.alpha = 1e-4;
  spec.threads = 2;
  auto run = detect::RunScanJob(spec, Master());
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->result["accounts"][0]["account"], 11);
  auto report = evidence::BuildReport(spec, *run, "scan");
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ((*report)["inputs"].size(), 1u);
  const watermark::Key seed = *watermark::Key::FromBytes(std::vector<uint8_t>(32, 5));
  const auto signer = *evidence::EnvelopeSigner::FromSeed(seed);

  fs::copy(dir_ / "in", dir_ / "copy");
  auto recompute = [&](const json& r, const watermark::Key& key) {
    auto opened = evidence::OpenReport(*evidence::SignReport(r, signer), signer.public_key_hex());
    EXPECT_TRUE(opened.ok()) << opened.status();
    auto match = evidence::MatchInputs(opened->report, {(dir_ / "copy").string()});
    EXPECT_TRUE(match.ok()) << match.status();
    EXPECT_TRUE(match->missing.empty());
    return evidence::Recompute(opened->report, *match, key, TRACEMARK_DATA_DIR, 1);
  };
  auto same = recompute(*report, Master());
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->identical) << same->first_difference;

  json changed = *report;
  changed["result"]["accounts"][0]["documents"] = 2;
  auto diff = recompute(changed, Master());
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_FALSE(diff->identical);
  EXPECT_EQ(diff->first_difference, "/accounts/0/documents");

  json other_options = *report;
  other_options["options"]["account_limit"] = 100;  // account 222 is then not issued
  diff = recompute(other_options, Master());
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_FALSE(diff->identical);

  const watermark::Key other = *watermark::Key::FromBytes(std::vector<uint8_t>(32, 8));
  EXPECT_EQ(recompute(*report, other).status().code(), absl::StatusCode::kFailedPrecondition);

  auto opened =
      evidence::OpenReport(*evidence::SignReport(*report, signer), signer.public_key_hex());
  ASSERT_TRUE(opened.ok());
  const std::string html = evidence::RenderReportHtml(*opened);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<td>11</td>"), std::string::npos);
  EXPECT_NE(evidence::RenderReportMarkdown(*opened).find("| 11 |"), std::string::npos);
}

}  // namespace
}  // namespace tracemark::reference
