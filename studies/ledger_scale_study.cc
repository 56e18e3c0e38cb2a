// The serving ledger at scale, in one process (issue 16; docs/ledger.md): --records responses of
// --tokens ids each, to accounts drawn uniformly from --accounts, appended to one ledger writer;
// then the ledger read back whole, and its window index built. Prints the time of each step, the
// bytes on disk, the index's size (16 bytes per distinct window and account) and the memory its
// build took at its peak (the resident set's peak before and after), and
// projects them to --project-tokens served tokens.
//
// The ids are drawn independently from the corpus's unigram distribution (cl100k_base): almost
// every window is then distinct, the worst case for the index's memory, and the text compresses
// about as well as served answers (1.5-1.9 bytes per id; ledger_store_study measures real
// answers). Generating 10^8 ids with the reference model would take hours on two cores.
//
//   build/studies/ledger_scale_study --records 333334 --tokens 300 --accounts 25000
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_format.h"
#include "study_common.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/window_index.h"
#include "tracemark/ledger/writer.h"

namespace tmk = tracemark;
namespace fs = std::filesystem;

namespace {

struct Flags {
  uint64_t records = 333334;
  int tokens = 300;
  uint64_t accounts = 25000;
  int h = 3;
  double project_tokens = 2.88e10;  // 28.8 M interactions of ~1,000 tokens
  std::string dir = "/tmp/tracemark_ledger_scale_study";
  std::string out;
  std::string data_dir = TRACEMARK_DATA_DIR;
  std::string model;  // empty: the reference model scripts/demo.sh trains
};

double PeakRssGiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

// Draws ids with the corpus's unigram frequencies.
class UnigramSampler {
 public:
  explicit UnigramSampler(const std::vector<int32_t>& corpus) : ids_(corpus) {}
  int32_t operator()(std::mt19937_64& rng) const { return ids_[rng() % ids_.size()]; }

 private:
  const std::vector<int32_t>& ids_;
};

struct Written {
  uint64_t records = 0, response_ids = 0, bytes = 0;
  double seconds = 0;
};

absl::StatusOr<Written> WriteLedger(const Flags& f, const UnigramSampler& draw) {
  std::mt19937_64 rng(16);
  auto writer = tmk::ledger::Writer::Open(f.dir);
  if (!writer.ok()) return writer.status();
  tmk::ledger::Record r;
  r.epoch_key_id = "0123456789abcdef";
  r.tokenizer = "cl100k_base";
  r.prompt_ids.resize(static_cast<size_t>(f.h));
  r.response_ids.resize(static_cast<size_t>(f.tokens));
  double seconds = 0;  // the appends only, not the drawing of ids
  for (uint64_t i = 0; i < f.records; ++i) {
    r.account = rng() % f.accounts;
    r.time_us = 1796392800000000 + static_cast<int64_t>(i) * 100000;
    for (int32_t& id : r.prompt_ids) id = draw(rng);
    for (int32_t& id : r.response_ids) id = draw(rng);
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s = (*writer)->Append(r); !s.ok()) return s;
    seconds += tmk::study::SecondsSince(start);
    if ((i + 1) % 50000 == 0) std::cerr << "  " << i + 1 << " records written\n";
  }
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status s = (*writer)->Close(); !s.ok()) return s;
  const tmk::ledger::WriterStats st = (*writer)->stats();
  return Written{st.records, st.response_ids, st.bytes, seconds + tmk::study::SecondsSince(start)};
}

int Fail(const absl::Status& s) {
  std::cerr << s << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--records", &f.records)
      .Add("--tokens", &f.tokens)
      .Add("--accounts", &f.accounts)
      .Add("--h", &f.h)
      .Add("--project-tokens", &f.project_tokens)
      .Add("--dir", &f.dir)
      .Add("--out", &f.out)
      .Add("--data-dir", &f.data_dir)
      .Add("--model", &f.model);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  if (f.records < 1 || f.tokens < 1 || f.accounts < 1 || f.h < 1) {
    std::cerr << "--records, --tokens, --accounts and --h must be positive\n";
    return 2;
  }
  auto data = tmk::study::LoadStudyData(f.data_dir, f.model);
  if (!data.ok()) return Fail(data.status());
  const UnigramSampler draw(data->corpus.ids);
  fs::remove_all(f.dir);
  std::cerr << "writing " << f.records << " records of " << f.tokens << " ids...\n";
  auto written = WriteLedger(f, draw);
  if (!written.ok()) return Fail(written.status());

  auto start = std::chrono::steady_clock::now();
  uint64_t read_ids = 0;
  absl::Status read = tmk::ledger::ReadLedger(f.dir, [&](const tmk::ledger::Record& r) {
    read_ids += r.response_ids.size();
    return absl::OkStatus();
  });
  if (!read.ok()) return Fail(read);
  const double read_seconds = tmk::study::SecondsSince(start);

  const double rss_before = PeakRssGiB();
  start = std::chrono::steady_clock::now();
  auto index = tmk::ledger::WindowIndex::Build(f.dir, f.h);
  if (!index.ok()) return Fail(index.status());
  const double index_seconds = tmk::study::SecondsSince(start);
  const double rss_after = PeakRssGiB();
  const tmk::ledger::WindowIndex::Stats& w = index->stats();
  fs::remove_all(f.dir);

  const auto tokens = static_cast<double>(written->response_ids);
  const double scale = f.project_tokens / tokens;
  const double index_gib = 16.0 * static_cast<double>(w.pairs) / 1073741824.0;  // two arrays
  const double build_peak_gib = rss_after - rss_before;
  const nlohmann::json j = {{"records", written->records},
                            {"response_ids", written->response_ids},
                            {"accounts", f.accounts},
                            {"bytes", written->bytes},
                            {"bytes_per_response_id", static_cast<double>(written->bytes) / tokens},
                            {"write_seconds", written->seconds},
                            {"read_seconds", read_seconds},
                            {"index_seconds", index_seconds},
                            {"windows", w.windows},
                            {"exclusive_windows", w.exclusive_windows},
                            {"pairs", w.pairs},
                            {"index_gib", index_gib},
                            {"index_build_peak_gib", build_peak_gib},
                            {"peak_rss_gib", rss_after},
                            {"projected_tokens", f.project_tokens},
                            {"projected_bytes", static_cast<double>(written->bytes) * scale},
                            {"projected_write_cpu_hours", written->seconds * scale / 3600},
                            {"projected_index_gib", index_gib * scale}};
  std::cout << absl::StrFormat(
      "| records | served ids | accounts | bytes per id | write | read | index build | windows "
      "(exclusive) | index | peak while building |\n|---|---|---|---|---|---|---|---|---|---|\n"
      "| %d | %d | %d | %.2f | %.1f s (%.0f ns/id) | %.1f s | %.1f s | %d (%.1f %%) | %.2f GiB "
      "(%d pairs) | %.2f GiB |\n\n",
      written->records, written->response_ids, f.accounts, j["bytes_per_response_id"].get<double>(),
      written->seconds, 1e9 * written->seconds / tokens, read_seconds, index_seconds, w.windows,
      100.0 * static_cast<double>(w.exclusive_windows) / static_cast<double>(w.windows), index_gib,
      w.pairs, build_peak_gib);
  std::cout << absl::StrFormat(
      "projected to %.3g served tokens: %.0f GB on disk, %.1f CPU-hours of appends (spread over "
      "the serving fleet), %.0f GiB of window index in one process\n",
      f.project_tokens, j["projected_bytes"].get<double>() / 1e9,
      j["projected_write_cpu_hours"].get<double>(), j["projected_index_gib"].get<double>());
  if (!f.out.empty()) std::ofstream(f.out) << j.dump(2) << "\n";
  return 0;
}
