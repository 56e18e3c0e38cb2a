#include "tracemark/detect/scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "segments.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/detect/scan_warnings.h"
#include "tracemark/tokenizer/utf8.h"

namespace tracemark::detect {
namespace {

using stats::Bonferroni;
using stats::PValue;
using watermark::Layer;
using watermark::TextStatistics;

// Bytes of a prompt tokenised for context: its last tokens are all that matters.
constexpr size_t kContextBytes = 512;

// The last `n` bytes of `s`, not starting inside a UTF-8 sequence.
std::string_view Tail(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t start = s.size() - n;
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
  return std::string_view(s).substr(start);
}

absl::Status MergeInto(std::vector<TextStatistics>* into, std::vector<TextStatistics> from) {
  if (into->empty()) {
    *into = std::move(from);
    return absl::OkStatus();
  }
  if (from.empty()) return absl::OkStatus();
  if (from.size() != into->size()) {
    return absl::InvalidArgumentError("scan results from verifiers with different epochs");
  }
  for (size_t i = 0; i < from.size(); ++i) TRACEMARK_RETURN_IF_ERROR((*into)[i].Merge(from[i]));
  return absl::OkStatus();
}

// Projects per-epoch statistics on the provider layer and merges them into `into` (sized to the
// epochs if empty).
absl::Status MergeProvider(const Verifier& verifier, const std::vector<TextStatistics>& stats,
                           std::vector<TextStatistics>* into) {
  if (into->empty()) into->resize(verifier.num_epochs());
  for (size_t i = 0; i < stats.size(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(TextStatistics p,
                               verifier.detector(i).Project(stats[i], Layer::kProvider));
    TRACEMARK_RETURN_IF_ERROR((*into)[i].Merge(p));
  }
  return absl::OkStatus();
}

// The provider test of per-epoch statistics under each epoch: the best epoch, its tuples, and its
// p-value Bonferroni-corrected for the epochs (1 and no tuples when the list is empty).
struct BestEpoch {
  PValue p;
  uint64_t tuples = 0;
  uint32_t epoch = 0;
};
absl::StatusOr<BestEpoch> TestBestEpoch(const Verifier& verifier,
                                        const std::vector<TextStatistics>& per_epoch) {
  BestEpoch b;
  PValue best;
  for (size_t i = 0; i < per_epoch.size(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::ProviderResult r,
                               verifier.detector(i).TestProvider(per_epoch[i]));
    if (i == 0 || r.p_value < best) {
      best = r.p_value;
      b.tuples = r.tuples;
      b.epoch = verifier.epoch(i);
    }
  }
  b.p = Bonferroni(best, verifier.num_epochs());
  return b;
}

// Scores each position i >= max(from, h) of `ids` that `keep(i)` selects, each on its own window
// ids[i - h .. i], into `into`.
template <typename Keep>
absl::Status ScorePositions(const Verifier& verifier, size_t h, const std::vector<int32_t>& ids,
                            size_t from, Keep keep, std::vector<TextStatistics>* into) {
  for (size_t i = std::max(from, h); i < ids.size(); ++i) {
    if (!keep(i)) continue;
    TRACEMARK_RETURN_IF_ERROR(
        verifier.ScoreInto(absl::Span<const int32_t>(ids.data() + i - h, h + 1), h, into));
  }
  return absl::OkStatus();
}

// The sliding-window test of one document (ScanOptions::window_tokens): windows of w scored ids,
// each preceded by (at most) h context ids, sliding by half a window; windows do not span turns.
// Windows are only used in documents longer than two of them: full windows wait here, untested,
// until the document is known to be that long.
class WindowTest {
 public:
  // w == 0: no windows.
  WindowTest(const Verifier& verifier, size_t w, size_t h)
      : verifier_(verifier), w_(w), h_(h), stride_(std::max<size_t>(1, w / 2)) {}

  void NewTurn() { window_.clear(); }
  // Adds ids[from ..] (ids[from - h .. from) are their context), after `scored` ids of the
  // document; each full window is tested, or kept pending while the document is not yet longer
  // than two windows.
  absl::Status Add(const std::vector<int32_t>& ids, size_t from, size_t scored);
  // After the document's `tokens` scored ids: tests the pending windows of a document longer than
  // two windows, and says whether the test applies (such a document, with two windows or more).
  absl::StatusOr<bool> Finish(size_t tokens);
  uint64_t windows() const { return windows_; }  // windows tested
  const PValue& best() const { return best_; }   // uncorrected

 private:
  absl::Status Test(const std::vector<int32_t>& ids, size_t context);
  absl::Status TestPending();

  const Verifier& verifier_;
  const size_t w_, h_, stride_;
  std::vector<int32_t> window_;  // context (h ids) + up to w scored ids
  size_t window_context_ = 0;
  PValue best_;
  uint64_t windows_ = 0;
  std::vector<std::pair<std::vector<int32_t>, size_t>> pending_;  // (ids, context length)
};

absl::Status WindowTest::Add(const std::vector<int32_t>& ids, size_t from, size_t scored) {
  if (w_ == 0) return absl::OkStatus();
  if (window_.empty()) {
    window_.assign(ids.begin() + static_cast<ptrdiff_t>(from - std::min(from, h_)),
                   ids.begin() + static_cast<ptrdiff_t>(from));
    window_context_ = window_.size();
  }
  for (size_t i = from; i < ids.size(); ++i) {
    window_.push_back(ids[i]);
    if (window_.size() - window_context_ != w_) continue;
    if (scored + (i - from + 1) > 2 * w_) {  // scored tokens so far, this one included
      TRACEMARK_RETURN_IF_ERROR(TestPending());
      TRACEMARK_RETURN_IF_ERROR(Test(window_, window_context_));
    } else {
      pending_.emplace_back(window_, window_context_);
    }
    // Slide by `stride`: the new window's context is the h ids before its first scored id.
    const size_t drop = window_context_ + stride_ - std::min(h_, window_context_ + stride_);
    window_.erase(window_.begin(), window_.begin() + static_cast<ptrdiff_t>(drop));
    window_context_ = std::min(h_, window_context_ + stride_);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> WindowTest::Finish(size_t tokens) {
  if (w_ == 0 || tokens <= 2 * w_) return false;
  TRACEMARK_RETURN_IF_ERROR(TestPending());
  return windows_ >= 2;
}

absl::Status WindowTest::Test(const std::vector<int32_t>& ids, size_t context) {
  std::vector<TextStatistics> ws(verifier_.num_epochs());
  TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto(ids, context, &ws));
  for (size_t i = 0; i < ws.size(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::ProviderResult p,
                               verifier_.detector(i).TestProvider(ws[i]));
    if (p.p_value < best_) best_ = p.p_value;
  }
  ++windows_;
  return absl::OkStatus();
}

absl::Status WindowTest::TestPending() {
  for (const auto& [ids, context] : pending_) TRACEMARK_RETURN_IF_ERROR(Test(ids, context));
  pending_.clear();
  return absl::OkStatus();
}

DetectOptions DocumentDetectOptions(const ScanOptions& options) {
  DetectOptions opt;
  opt.account_limit = options.account_limit;
  opt.issued = options.issued;
  opt.confirm_alpha = options.attribution_alpha;
  opt.max_candidates = options.max_candidates;
  return opt;
}

// A record whose log-probabilities could not be used counts as unusable for the white-box test
// (the first reason kept).
void NoteUnusableLogprobs(const dataset::Document& doc, ScanResult* out) {
  ++out->white_box_unusable;
  if (out->white_box_problem.empty()) {
    out->white_box_problem = absl::StrCat(doc.source, ": ", doc.logprobs_error);
  }
}

absl::Status CheckVocabulary(const tokenizer::Tokenizer& tokenizer,
                             const watermark::Config& config) {
  if (tokenizer.vocab_size() != config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer ", std::string(tokenizer.name()), " has ", tokenizer.vocab_size(),
                     " ids but the watermark configuration has ", config.vocab_size));
  }
  return absl::OkStatus();
}

// A bounded queue of documents from the reading thread to the scan threads.
class DocumentQueue {
 public:
  explicit DocumentQueue(size_t capacity) : capacity_(capacity) {}

  // Waits for room, then appends `d`.
  void Push(dataset::Document d) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_full_.wait(lock, [&] { return queue_.size() < capacity_; });
      queue_.push_back(std::move(d));
    }
    not_empty_.notify_one();
  }
  // Waits for a document and moves it to *d; false once the queue is closed and empty.
  bool Pop(dataset::Document* d) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_empty_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return false;
      *d = std::move(queue_.front());
      queue_.pop_front();
    }
    not_full_.notify_one();
    return true;
  }
  // No more documents will come; with `drop`, those still queued are discarded.
  void Close(bool drop) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      if (drop) queue_.clear();
    }
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<dataset::Document> queue_;
  const size_t capacity_;
  bool done_ = false;
};

// Documents and tokens the scan threads have scored so far, for progress reports.
struct ScanCounters {
  std::atomic<uint64_t> documents{0}, tokens{0};
};

// Reads every document into `queue` until the reader ends (OK), fails (its error) or `cancel` is
// set (Cancelled); calls `report` when more than 200 ms have passed since `start` or the last call.
absl::Status ReadInto(dataset::DocumentReader& reader, const std::atomic<bool>* cancel,
                      std::chrono::steady_clock::time_point start,
                      const std::function<void()>& report, DocumentQueue* queue) {
  auto last_report = start;
  for (;;) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("scan cancelled");
    }
    dataset::Document d;
    absl::StatusOr<bool> more = reader.Next(&d);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    queue->Push(std::move(d));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::milliseconds(200)) {
      last_report = now;
      report();
    }
  }
}

// The scan threads' results merged in thread order (the first thread's error instead, if any),
// their documents sorted back into input order, the reader's skipped inputs first.
absl::StatusOr<ScanResult> MergeThreads(std::vector<ScanResult> locals,
                                        const std::vector<absl::Status>& errors,
                                        const dataset::DocumentReader& reader) {
  ScanResult all;
  for (size_t t = 0; t < locals.size(); ++t) {
    TRACEMARK_RETURN_IF_ERROR(errors[t]);
    TRACEMARK_RETURN_IF_ERROR(all.Merge(std::move(locals[t])));
  }
  std::sort(all.documents.begin(), all.documents.end(),
            [](const DocumentResult& a, const DocumentResult& b) { return a.index < b.index; });
  std::vector<dataset::Skipped> skipped = reader.skipped();
  skipped.insert(skipped.end(), all.skipped.begin(), all.skipped.end());
  all.skipped = std::move(skipped);
  return all;
}

// A result from elsewhere (a partition's bytes) must fit this verifier's epochs before its
// per-epoch statistics are tested (groups' epoch indexes are checked by Verifier::Account); each
// detector then refuses statistics of another key or configuration.
absl::Status CheckEpochCounts(const ScanResult& result, size_t n_epochs) {
  for (const auto* per_epoch :
       {&result.provider, &result.white_box, &result.provider_seen, &result.white_box_seen}) {
    if (!per_epoch->empty() && per_epoch->size() != n_epochs) {
      return absl::InvalidArgumentError(absl::StrCat("scan statistics for ", per_epoch->size(),
                                                     " epochs given to a verifier of ", n_epochs));
    }
  }
  return absl::OkStatus();
}

// Counts the documents flagged and attributed (at options.attribution_alpha under
// options.control) into *s; returns how many documents were attributed to each account.
absl::flat_hash_map<uint64_t, uint64_t> CountDocuments(const ScanOptions& options,
                                                       const std::vector<DocumentResult>& documents,
                                                       ScanSummary* s) {
  absl::flat_hash_map<uint64_t, uint64_t> attributed;
  std::vector<PValue> provider_p, account_p;
  for (const DocumentResult& d : documents) {
    provider_p.push_back(d.provider_p_value);
    account_p.push_back(d.account.has_value() ? d.account_p_value : PValue());
  }
  const bool independent = options.shared != nullptr;
  const std::vector<bool> flagged =
      Rejected(provider_p, options.attribution_alpha, options.control, independent);
  const std::vector<bool> confirmed =
      Rejected(account_p, options.attribution_alpha, options.control, independent);
  for (size_t i = 0; i < documents.size(); ++i) {
    const DocumentResult& d = documents[i];
    if (flagged[i]) ++s->documents_flagged;
    if (d.account.has_value() && confirmed[i]) {
      ++s->documents_attributed;
      ++attributed[*d.account];
    }
  }
  return attributed;
}

// The canary test of the group `key` (when it has canary events) for its account `acct`,
// corrected for every group tested.
void TestGroupCanary(const canary::CanaryProcessor& canary, const ScanResult& result,
                     const std::pair<size_t, uint64_t>& key, const watermark::AccountKeys& acct,
                     AccountSummary* a) {
  auto c = result.canary_groups.find(key);
  if (c == result.canary_groups.end()) return;
  const std::vector<canary::Tuple> tuples = c->second.Tuples(canary.lexicon());
  const canary::CanaryResult cr =
      canary::TestAccount(tuples, canary::CanaryKey::FromAccountKeys(acct));
  a->canary_tuples = cr.tuples;
  a->canary_matches = cr.matches;
  a->canary_p_value = Bonferroni(cr.p, result.groups.size());
}

// The combined fingerprint test of one decoded-account group (its pooled `stats`), and with
// `canary` its canary test, each corrected for every group tested.
absl::StatusOr<AccountSummary> TestGroup(
    const Verifier& verifier, const canary::CanaryProcessor* canary, const ScanResult& result,
    const std::pair<size_t, uint64_t>& key, const TextStatistics& stats,
    const absl::flat_hash_map<uint64_t, uint64_t>& attributed) {
  TRACEMARK_ASSIGN_OR_RETURN(auto acct, verifier.Account(key.first, key.second));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::AccountResult r,
                             verifier.detector(key.first).TestAccount(stats, *acct));
  AccountSummary a;
  a.account = key.second;
  a.epoch = verifier.epoch(key.first);
  auto it = result.group_documents.find(key);
  a.documents = it == result.group_documents.end() ? 0 : it->second;
  auto at = attributed.find(key.second);
  a.attributed = at == attributed.end() ? 0 : at->second;
  a.tuples = r.tuples;
  a.combined_p_value = Bonferroni(r.p_value, result.groups.size());
  if (canary != nullptr) TestGroupCanary(*canary, result, key, *acct, &a);
  return a;
}

// Most significant first; ties in (epoch, account) order.
void SortAccounts(std::vector<AccountSummary>* accounts) {
  std::sort(accounts->begin(), accounts->end(),
            [](const AccountSummary& a, const AccountSummary& b) {
              if (a.combined_p_value.log() != b.combined_p_value.log())
                return a.combined_p_value < b.combined_p_value;
              return std::make_pair(a.epoch, a.account) < std::make_pair(b.epoch, b.account);
            });
}

absl::StatusOr<WhiteBoxSummary> SummarizeWhiteBox(const Verifier& verifier,
                                                  const ScanResult& result) {
  WhiteBoxSummary w;
  w.documents = result.white_box_documents;
  w.positions = result.white_box_positions;
  w.unusable = result.white_box_unusable;
  w.problem = result.white_box_problem;
  TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch b, TestBestEpoch(verifier, result.white_box));
  w.p_value = b.p;
  w.tuples = b.tuples;
  w.epoch = b.epoch;
  w.method = absl::StrCat(
      "white-box: at each answer position whose window lies inside the answer and does not "
      "occur in the prompt, the suspect's most likely token (from its reported "
      "log-probabilities) with that window, as unique tuples; provider-layer test under each of ",
      verifier.num_epochs(), " epoch(s), the smallest p-value Bonferroni-corrected for them.");
  return w;
}

absl::StatusOr<SeenSummary> SummarizeSeen(const Verifier& verifier, const SeenWindows& windows,
                                          const ScanResult& result) {
  SeenSummary seen;
  seen.windows = windows.size();
  seen.documents = windows.documents();
  TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch p, TestBestEpoch(verifier, result.provider_seen));
  seen.provider_p_value = p.p;
  seen.provider_tuples = p.tuples;
  if (!result.white_box_seen.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch w, TestBestEpoch(verifier, result.white_box_seen));
    seen.white_box_p_value = w.p;
    seen.white_box_tuples = w.tuples;
  }
  return seen;
}

// ScanSummary::method for a scan with `options` under `n_epochs` epochs, `groups` groups tested.
std::string ScanMethod(const ScanOptions& options, size_t n_epochs, uint64_t groups) {
  const bool independent = options.shared != nullptr;
  return absl::StrCat(
      "unique (context, token) tuples. Per document",
      independent ? " (on the tuples no other document of the scan shares)" : "",
      ": provider test under each of ", n_epochs,
      " epoch(s), the smallest p-value Bonferroni-corrected for them; the account its id payload "
      "decodes to is confirmed by its fingerprint test on disjoint positions, Bonferroni-corrected "
      "over the candidates confirmed, and attributed at p <= ",
      options.attribution_alpha,
      ". Dataset: one provider test over the union of all documents' unique provider tuples "
      "(best epoch, corrected). Accounts: documents grouped by the id their payload decodes to "
      "(a function of the text alone); each group's pooled fingerprint tuples tested for that "
      "account (Chernoff bound), Bonferroni-corrected over the ",
      groups, " group(s) tested.",
      // Unchanged from earlier versions by default, so that their reports still recompute.
      options.control == FamilyControl::kNone
          ? ""
          : absl::StrCat(" Counts: ",
                         DescribeControl(options.control, options.attribution_alpha, independent),
                         "."));
}

}  // namespace

absl::Status ScanResult::Merge(ScanResult other) {
  TRACEMARK_RETURN_IF_ERROR(MergeInto(&provider, std::move(other.provider)));
  for (auto& [key, s] : other.groups) TRACEMARK_RETURN_IF_ERROR(groups[key].Merge(s));
  for (const auto& [key, n] : other.group_documents) group_documents[key] += n;
  canary.Merge(other.canary);
  for (const auto& [key, c] : other.canary_groups) canary_groups[key].Merge(c);
  TRACEMARK_RETURN_IF_ERROR(MergeInto(&white_box, std::move(other.white_box)));
  TRACEMARK_RETURN_IF_ERROR(MergeInto(&provider_seen, std::move(other.provider_seen)));
  TRACEMARK_RETURN_IF_ERROR(MergeInto(&white_box_seen, std::move(other.white_box_seen)));
  white_box_documents += other.white_box_documents;
  white_box_positions += other.white_box_positions;
  white_box_unusable += other.white_box_unusable;
  if (white_box_problem.empty()) white_box_problem = std::move(other.white_box_problem);
  for (DocumentResult& d : other.documents) documents.push_back(std::move(d));
  for (dataset::Skipped& s : other.skipped) skipped.push_back(std::move(s));
  tokens += other.tokens;
  bytes += other.bytes;
  seconds += other.seconds;
  return absl::OkStatus();
}

Scanner::Scanner(const Verifier& verifier, const tokenizer::Tokenizer& tokenizer,
                 ScanOptions options)
    : verifier_(verifier), tokenizer_(tokenizer), options_(options) {
  if (options_.white_box) {
    if (auto s = WhiteBoxScorer::Create(tokenizer_); s.ok()) white_box_.emplace(*std::move(s));
  }
}

// One document's scan: its statistics and state across segments (the pieces of a long text, the
// turns of a conversation), then its tests, its result and its share of the dataset's statistics.
class Scanner::DocumentScan {
 public:
  DocumentScan(const Scanner& scanner, const dataset::Document& doc, ScanResult* out)
      : scanner_(scanner),
        verifier_(scanner.verifier_),
        options_(scanner.options_),
        out_(out),
        h_(static_cast<size_t>(verifier_.config().context_width)),
        stats_(verifier_.num_epochs()),
        windows_(verifier_, options_.shared != nullptr ? 0 : options_.window_tokens, h_),
        repaired_(doc.repaired_utf8) {}

  // Readies the statistics of the unshared tuples (ScanOptions::shared).
  absl::Status Start() {
    if (options_.shared != nullptr) TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto({}, 0, &own_));
    return absl::OkStatus();
  }
  // Scores the next segment of the document from `source`. Text the tokenizer refuses
  // (InvalidArgument: e.g. SentencePiece's space symbol in the text) skips the document with the
  // reason and returns false; the scan goes on.
  absl::StatusOr<bool> ScoreOrSkip(dataset::Segment& seg, const std::string& source) {
    absl::Status st = Score(seg);
    if (absl::IsInvalidArgument(st)) {
      out_->skipped.push_back({source, absl::StrCat(st.message(), " (not scored)")});
      return false;
    }
    TRACEMARK_RETURN_IF_ERROR(st);
    return true;
  }
  // After the last segment: tests the document and adds its result and statistics to the output.
  absl::Status Finish(dataset::Document doc);

  size_t tokens() const { return tokens_; }  // model-written tokens scored so far
  size_t bytes() const { return bytes_; }

 private:
  absl::Status Score(dataset::Segment& seg);
  void AddCanaryEvents(const dataset::Segment& seg);
  absl::StatusOr<DocumentResult> Result(dataset::Document doc, const TextDetection& det);
  // The window test, when it applies: r's best window, and its provider p-value the smaller of
  // the two tests, corrected for taking it.
  absl::Status AddWindowTest(DocumentResult* r);
  // The canary events and tuples, and the attributed account's canary test on them.
  absl::Status AddCanaryTest(DocumentResult* r) const;
  // The document's share of the dataset's statistics: provider, decoded-account groups, canary,
  // seen windows, tokens and bytes.
  absl::Status MergeStatistics(const TextDetection& det) const;

  const Scanner& scanner_;
  const Verifier& verifier_;
  const ScanOptions& options_;
  ScanResult* const out_;
  const size_t h_;
  std::vector<TextStatistics> stats_;
  std::vector<int32_t> tail_;  // the last h ids of the previous segment
  WindowTest windows_;
  size_t tokens_ = 0, bytes_ = 0;
  bool repaired_;
  bool round_trips_ = true;
  std::vector<TextStatistics> seen_stats_;  // positions at seen windows (ScanOptions::seen)
  canary::CanaryStatistics doc_canary_;
  std::string canary_tail_;  // the text before a continuing segment, for its first context word
  std::vector<TextStatistics> own_;  // the unshared tuples only (ScanOptions::shared)
};

absl::Status Scanner::DocumentScan::Score(dataset::Segment& seg) {
  size_t from = 0;
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             scanner_.SegmentIds(seg, tail_, &from, &repaired_));
  if (options_.canary != nullptr) AddCanaryEvents(seg);
  const absl::Span<const int32_t> body = absl::MakeConstSpan(ids).subspan(from);
  if (round_trips_) {
    TRACEMARK_ASSIGN_OR_RETURN(round_trips_, scanner_.RoundTrips(seg, body));
  }
  TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto(ids, from, &stats_));
  if (options_.shared != nullptr) {
    TRACEMARK_RETURN_IF_ERROR(ScorePositions(
        verifier_, h_, ids, from, [&](size_t i) { return !options_.shared->Shared(ids, i); },
        &own_));
  }
  if (options_.seen != nullptr) {
    TRACEMARK_RETURN_IF_ERROR(ScorePositions(
        verifier_, h_, ids, from, [&](size_t i) { return options_.seen->Contains(ids, i); },
        &seen_stats_));
  }
  if (!seg.choices.empty() && scanner_.white_box_.has_value()) {
    TRACEMARK_RETURN_IF_ERROR(scanner_.ScoreWhiteBox(seg, out_));
  }
  if (!seg.continues) windows_.NewTurn();
  TRACEMARK_RETURN_IF_ERROR(windows_.Add(ids, from, tokens_));
  tokens_ += body.size();
  bytes_ += seg.text.size();
  KeepTail(ids, h_, &tail_);
  return absl::OkStatus();
}

void Scanner::DocumentScan::AddCanaryEvents(const dataset::Segment& seg) {
  const std::string_view before =
      seg.continues ? std::string_view(canary_tail_) : Tail(seg.context, kContextBytes);
  doc_canary_.Add(canary::ExtractEvents(seg.text, options_.canary->lexicon(),
                                        options_.canary->active_forms(), before));
  canary_tail_ = std::string(Tail(seg.text, kContextBytes));
}

absl::Status Scanner::DocumentScan::Finish(dataset::Document doc) {
  TRACEMARK_ASSIGN_OR_RETURN(TextDetection det,
                             verifier_.Analyze(options_.shared != nullptr ? own_ : stats_,
                                               DocumentDetectOptions(options_)));
  TRACEMARK_ASSIGN_OR_RETURN(DocumentResult r, Result(std::move(doc), det));
  out_->documents.push_back(std::move(r));
  return MergeStatistics(det);
}

absl::StatusOr<DocumentResult> Scanner::DocumentScan::Result(dataset::Document doc,
                                                             const TextDetection& det) {
  DocumentResult r;
  r.index = doc.index;
  r.id = std::move(doc.id);
  r.source = std::move(doc.source);
  r.tokens_scored = tokens_;
  r.repaired_utf8 = repaired_;
  r.round_trips = round_trips_;
  const EpochDetection& best = det.epochs[det.best_provider_epoch];
  r.provider_tuples = best.provider.tuples;
  r.provider_p_value = det.provider_p_value;
  r.provider_epoch = best.epoch;
  TRACEMARK_RETURN_IF_ERROR(AddWindowTest(&r));
  r.account = det.attributed_account;
  r.account_p_value = det.attributed_p_value;
  r.candidates = det.attribution_tests;
  if (options_.canary != nullptr) TRACEMARK_RETURN_IF_ERROR(AddCanaryTest(&r));
  return r;
}

absl::Status Scanner::DocumentScan::AddWindowTest(DocumentResult* r) {
  TRACEMARK_ASSIGN_OR_RETURN(const bool applies, windows_.Finish(tokens_));
  if (applies) {
    r->windows = windows_.windows();
    r->window_p_value = Bonferroni(windows_.best(), windows_.windows() * verifier_.num_epochs());
    r->provider_p_value = Bonferroni(std::min(r->provider_p_value, r->window_p_value), 2);
  }
  return absl::OkStatus();
}

absl::Status Scanner::DocumentScan::AddCanaryTest(DocumentResult* r) const {
  const std::vector<canary::Tuple> canary_tuples = doc_canary_.Tuples(options_.canary->lexicon());
  r->canary_events = doc_canary_.events();
  r->canary_tuples = canary_tuples.size();
  if (!r->account.has_value() || canary_tuples.empty()) return absl::OkStatus();
  PValue best_canary;
  for (size_t i = 0; i < verifier_.num_epochs(); ++i) {
    TRACEMARK_ASSIGN_OR_RETURN(auto acct, verifier_.Account(i, *r->account));
    best_canary =
        std::min(best_canary,
                 canary::TestAccount(canary_tuples, canary::CanaryKey::FromAccountKeys(*acct)).p);
  }
  r->canary_p_value = Bonferroni(best_canary, verifier_.num_epochs());
  return absl::OkStatus();
}

absl::Status Scanner::DocumentScan::MergeStatistics(const TextDetection& det) const {
  if (out_->provider.empty()) out_->provider.resize(verifier_.num_epochs());
  for (size_t i = 0; i < stats_.size(); ++i) {
    const watermark::Detector& d = verifier_.detector(i);
    TRACEMARK_ASSIGN_OR_RETURN(TextStatistics p, d.Project(stats_[i], Layer::kProvider));
    TRACEMARK_RETURN_IF_ERROR(out_->provider[i].Merge(p));
    const watermark::PayloadResult& pay = det.epochs[i].payload;
    if (pay.decoded) {
      const std::pair<size_t, uint64_t> key{i, pay.candidates.front()};
      TRACEMARK_ASSIGN_OR_RETURN(TextStatistics f,
                                 d.Project(stats_[i], Layer::kAccountFingerprint));
      TRACEMARK_RETURN_IF_ERROR(out_->groups[key].Merge(f));
      ++out_->group_documents[key];
      if (options_.canary != nullptr) out_->canary_groups[key].Merge(doc_canary_);
    }
  }
  if (options_.canary != nullptr) out_->canary.Merge(doc_canary_);
  if (options_.seen != nullptr) {
    TRACEMARK_RETURN_IF_ERROR(MergeProvider(verifier_, seen_stats_, &out_->provider_seen));
  }
  out_->tokens += tokens_;
  out_->bytes += bytes_;
  return absl::OkStatus();
}

absl::Status Scanner::ScanDocument(dataset::Document doc, ScanResult* out) const {
  DocumentScan scan(*this, doc, out);
  TRACEMARK_RETURN_IF_ERROR(scan.Start());
  if (!doc.logprobs_error.empty() && options_.white_box) NoteUnusableLogprobs(doc, out);
  absl::Status read_error;
  TRACEMARK_ASSIGN_OR_RETURN(
      const WalkEnd end,
      WalkSegments(
          doc, [&](dataset::Segment& seg) { return scan.ScoreOrSkip(seg, doc.source); },
          &read_error));
  switch (end) {
    case WalkEnd::kStopped:  // skipped, with the reason
      return absl::OkStatus();
    case WalkEnd::kReadFailed:
      out->skipped.push_back({doc.source, absl::StrCat(read_error.message(), " (after ",
                                                       scan.bytes(), " bytes; not scored)")});
      return absl::OkStatus();
    case WalkEnd::kAll:
      break;
  }
  if (scan.tokens() ==
      0) {  // an empty file: nothing was tested, so it is no document (docs/cli.md)
    out->skipped.push_back({doc.source, "empty: no text to score"});
    return absl::OkStatus();
  }
  return scan.Finish(std::move(doc));
}

absl::StatusOr<std::vector<int32_t>> Scanner::SegmentIds(dataset::Segment& seg,
                                                         const std::vector<int32_t>& tail,
                                                         size_t* from, bool* repaired) const {
  const size_t h = static_cast<size_t>(verifier_.config().context_width);
  if (!tokenizer::IsValidUtf8(seg.text)) {
    seg.text = tokenizer::ReplaceInvalidUtf8(seg.text);
    *repaired = true;
  }
  std::vector<int32_t> ids;
  if (seg.continues) {
    ids = tail;
  } else if (!seg.context.empty()) {
    std::string context(Tail(seg.context, kContextBytes));
    if (!tokenizer::IsValidUtf8(context)) context = tokenizer::ReplaceInvalidUtf8(context);
    TRACEMARK_ASSIGN_OR_RETURN(ids, tokenizer_.Encode(context));
    if (ids.size() > h) ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(h));
  }
  *from = ids.size();
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> body, tokenizer_.Encode(seg.text));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

absl::StatusOr<bool> Scanner::RoundTrips(const dataset::Segment& seg,
                                         absl::Span<const int32_t> body) const {
  if (seg.choices.empty()) {  // the common case: one decode, on the scan's hot path
    TRACEMARK_ASSIGN_OR_RETURN(const std::string back, tokenizer_.Decode(body));
    return back == seg.text;
  }
  // Token start offsets in the text: the tokenizer's, then the suspect's own tokens'.
  std::vector<size_t> ours;
  std::string back;
  for (int32_t id : body) {
    ours.push_back(back.size());
    TRACEMARK_ASSIGN_OR_RETURN(const std::string bytes, tokenizer_.TokenBytes(id));
    back += bytes;
  }
  if (back != seg.text) return false;
  std::string theirs_text;  // the suspect's tokens so far, joined
  size_t agree = 0;
  for (const dataset::TokenChoice& c : seg.choices) {
    agree += std::binary_search(ours.begin(), ours.end(), theirs_text.size()) ? 1 : 0;
    theirs_text += c.sampled;
  }
  // Sampling now and then writes a token sequence the tokenizer would not (" t" + "he" for
  // " the"), so a few disagreements are normal; a tokenizer that is not the suspect's splits the
  // text elsewhere at most positions.
  return 10 * agree >= 9 * seg.choices.size();
}

absl::StatusOr<SharedTuples> Scanner::CollectShared(dataset::DocumentReader& reader) const {
  const size_t h = static_cast<size_t>(verifier_.config().context_width);
  SharedTuples shared(h);
  dataset::Document doc;
  for (;;) {
    if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
      return absl::CancelledError("scan cancelled");
    }
    TRACEMARK_ASSIGN_OR_RETURN(const bool more, reader.Next(&doc));
    if (!more) break;
    std::vector<int32_t> tail;
    bool repaired = false;
    // As ScanDocument reads it; text the tokenizer refuses is not scored there either, and a
    // segment that cannot be read ends the document's tuples (ScanDocument scores none of it).
    auto add = [&](dataset::Segment& seg) -> absl::StatusOr<bool> {
      size_t from = 0;
      absl::StatusOr<std::vector<int32_t>> ids = SegmentIds(seg, tail, &from, &repaired);
      if (!ids.ok()) return false;
      shared.Add(doc.index, *ids, from);
      KeepTail(*ids, h, &tail);
      return true;
    };
    absl::Status read_error;
    TRACEMARK_RETURN_IF_ERROR(WalkSegments(doc, add, &read_error).status());
  }
  return shared;
}

absl::Status Scanner::ScoreWhiteBox(const dataset::Segment& seg, ScanResult* out) const {
  // Scores into per-epoch statistics: a window probe's one tuple, or the answer's positions.
  std::vector<int32_t> prompt_ids;
  if (seg.window.empty()) {
    std::string context(seg.context);
    if (!tokenizer::IsValidUtf8(context)) context = tokenizer::ReplaceInvalidUtf8(context);
    TRACEMARK_ASSIGN_OR_RETURN(prompt_ids, tokenizer_.Encode(context));
  }
  auto score = [&](std::vector<TextStatistics>* stats,
                   const SeenWindows* only) -> absl::StatusOr<uint64_t> {
    return seg.window.empty()
               ? white_box_->Score(verifier_, seg.choices, prompt_ids, stats, only)
               : white_box_->ScoreWindow(verifier_, seg.window, seg.choices.front(), stats, only);
  };
  std::vector<TextStatistics> stats(verifier_.num_epochs());
  absl::StatusOr<uint64_t> n = score(&stats, nullptr);
  if (!n.ok()) {
    ++out->white_box_unusable;
    if (out->white_box_problem.empty()) out->white_box_problem = std::string(n.status().message());
    return absl::OkStatus();
  }
  TRACEMARK_RETURN_IF_ERROR(MergeProvider(verifier_, stats, &out->white_box));
  ++out->white_box_documents;
  out->white_box_positions += *n;
  if (options_.seen != nullptr) {
    std::vector<TextStatistics> seen_stats(verifier_.num_epochs());
    TRACEMARK_RETURN_IF_ERROR(score(&seen_stats, options_.seen).status());
    TRACEMARK_RETURN_IF_ERROR(MergeProvider(verifier_, seen_stats, &out->white_box_seen));
  }
  return absl::OkStatus();
}

absl::StatusOr<ScanResult> Scanner::Scan(dataset::DocumentReader& reader,
                                         const std::function<void(const ScanProgress&)>& progress) {
  TRACEMARK_RETURN_IF_ERROR(CheckVocabulary(tokenizer_, verifier_.config()));
  const int threads = Threads();
  DocumentQueue queue(64 * static_cast<size_t>(threads));
  ScanCounters done;
  std::vector<ScanResult> locals(threads);
  std::vector<absl::Status> errors(threads);  // each thread's first error; it scores no more
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (;;) {
        dataset::Document d;
        if (!queue.Pop(&d)) return;
        const uint64_t before = locals[t].tokens;
        if (errors[t].ok()) errors[t] = ScanDocument(std::move(d), &locals[t]);
        done.tokens.fetch_add(locals[t].tokens - before, std::memory_order_relaxed);
        done.documents.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  auto report = [&] {
    if (!progress) return;
    ScanProgress p;
    p.documents = done.documents.load();
    p.tokens = done.tokens.load();
    p.bytes_read = reader.bytes_read();
    p.total_bytes = reader.total_bytes();
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress(p);
  };
  const absl::Status read_status = ReadInto(reader, options_.cancel, start, report, &queue);
  queue.Close(/*drop=*/!read_status.ok());  // after a read error, nothing more to score
  for (std::thread& th : pool) th.join();
  report();
  TRACEMARK_RETURN_IF_ERROR(read_status);
  TRACEMARK_ASSIGN_OR_RETURN(ScanResult all, MergeThreads(std::move(locals), errors, reader));
  if (all.provider.empty()) all.provider.resize(verifier_.num_epochs());
  all.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return all;
}

absl::StatusOr<ScanSummary> Scanner::Summarize(const ScanResult& result) const {
  ScanSummary s;
  const size_t n_epochs = verifier_.num_epochs();
  TRACEMARK_RETURN_IF_ERROR(CheckEpochCounts(result, n_epochs));
  TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch provider, TestBestEpoch(verifier_, result.provider));
  s.provider_p_value = provider.p;
  s.provider_tuples = provider.tuples;
  s.provider_epoch = provider.epoch;
  const absl::flat_hash_map<uint64_t, uint64_t> attributed =
      CountDocuments(options_, result.documents, &s);
  for (const auto& [key, stats] : result.groups) {
    TRACEMARK_ASSIGN_OR_RETURN(
        AccountSummary a, TestGroup(verifier_, options_.canary, result, key, stats, attributed));
    s.accounts.push_back(a);
  }
  SortAccounts(&s.accounts);
  if (options_.canary != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(s.canary, SummarizeCanary(result));
  }
  if (result.white_box_documents + result.white_box_unusable > 0) {
    TRACEMARK_ASSIGN_OR_RETURN(s.white_box, SummarizeWhiteBox(verifier_, result));
  }
  if (options_.seen != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(s.seen, SummarizeSeen(verifier_, *options_.seen, result));
  }
  s.warnings = ScanWarnings(result, s, tokenizer_.name());
  s.method = ScanMethod(options_, n_epochs, result.groups.size());
  return s;
}

int Scanner::Threads() const {
  return options_.threads > 0 ? options_.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

absl::StatusOr<CanarySummary> Scanner::SummarizeCanary(const ScanResult& result) const {
  const canary::Lexicon& lexicon = options_.canary->lexicon();
  CanarySummary c;
  c.lexicon = lexicon.version();
  c.lexicon_digest = lexicon.digest();
  c.active_sets = options_.canary->active_count();
  c.events = result.canary.events();
  const std::vector<canary::Tuple> tuples = result.canary.Tuples(lexicon);
  c.tuples = tuples.size();
  // The accounts issued, in ascending order (empty when unknown).
  std::vector<uint64_t> accounts;
  if (options_.issued != nullptr) {
    accounts.assign(options_.issued->ids().begin(), options_.issued->ids().end());
    std::sort(accounts.begin(), accounts.end());
  } else {
    for (uint64_t a = 0; a < options_.account_limit; ++a) accounts.push_back(a);
  }
  const size_t epochs = verifier_.num_epochs();
  const int threads = Threads();
  auto keys_of =
      [&](size_t i,
          const std::vector<uint64_t>& ids) -> absl::StatusOr<std::vector<canary::CanaryKey>> {
    std::vector<canary::CanaryKey> keys;
    keys.reserve(ids.size());
    for (uint64_t a : ids) {
      TRACEMARK_ASSIGN_OR_RETURN(auto acct, verifier_.Account(i, a));
      keys.push_back(canary::CanaryKey::FromAccountKeys(*acct));
    }
    return keys;
  };
  if (!accounts.empty()) {
    for (size_t i = 0; i < epochs; ++i) {
      TRACEMARK_ASSIGN_OR_RETURN(std::vector<canary::CanaryKey> keys, keys_of(i, accounts));
      canary::CanaryAttribution a = canary::AttributeAmong(tuples, keys, 5, threads);
      if (i == 0 || a.top.front().p < c.attribution.top.front().p) {
        c.attribution = std::move(a);
        c.attribution_epochs.assign(c.attribution.top.size(), verifier_.epoch(i));
      }
    }
    c.attribution.accounts_tried = accounts.size() * epochs;
    c.attribution.corrected = Bonferroni(c.attribution.top.front().p, c.attribution.accounts_tried);
  }
  if (!options_.cohort.empty()) {
    for (size_t i = 0; i < epochs; ++i) {
      TRACEMARK_ASSIGN_OR_RETURN(std::vector<canary::CanaryKey> keys, keys_of(i, options_.cohort));
      canary::CohortResult r = canary::TestCohort(tuples, keys);
      if (!c.cohort.has_value() || r.combined_p < c.cohort->combined_p) c.cohort = r;
    }
    c.cohort->p = Bonferroni(c.cohort->p, epochs);
    c.cohort->best_member_p = Bonferroni(c.cohort->best_member_p, epochs);
    c.cohort->combined_p = Bonferroni(c.cohort->combined_p, epochs);
  }
  c.method = absl::StrCat(
      "canary phrasings (lexicon ", c.lexicon, ", ", c.active_sets,
      " sets active for the tokenizer): events reduced to distinct (set, previous word) tuples, "
      "the text's majority member standing for each; an account's matches with its keyed choices "
      "are tested against the exact sum of Binomial(n_k, 1/k) over set sizes k. Attribution: "
      "every issued account under each epoch tested on the pooled tuples, the best "
      "Bonferroni-corrected over all ",
      accounts.size() * epochs,
      " (account, epoch) pairs. Cohort: the cohort's summed matches against the sum of "
      "Binomial(|C| n_k, 1/k), and its heaviest contributor (the member with the smallest exact "
      "p-value, Bonferroni-corrected over the members); the cohort p-value is the smaller of the "
      "two, doubled; best epoch, corrected for the epochs.");
  return c;
}

}  // namespace tracemark::detect
