#include "tracemark/detect/scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
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

absl::Status Scanner::ScanDocument(dataset::Document doc, ScanResult* out) const {
  const size_t h = static_cast<size_t>(verifier_.config().context_width);
  std::vector<TextStatistics> stats(verifier_.num_epochs());
  std::vector<int32_t> tail;  // the last h ids of the previous segment
  // Sliding windows: the scored ids of the current window, preceded by h context ids.
  const size_t w = options_.shared != nullptr ? 0 : options_.window_tokens;
  const size_t stride = std::max<size_t>(1, w / 2);
  std::vector<int32_t> window;  // context (h ids) + up to w scored ids
  size_t window_context = 0;
  PValue best_window;
  uint64_t windows = 0;
  size_t tokens = 0, bytes = 0;
  // Windows are only used in documents longer than two of them: full windows wait here, untested,
  // until the document is known to be that long.
  std::vector<std::pair<std::vector<int32_t>, size_t>> pending;  // (ids, context length)
  auto test_window = [&](const std::vector<int32_t>& ids, size_t context) -> absl::Status {
    std::vector<TextStatistics> ws(verifier_.num_epochs());
    TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto(ids, context, &ws));
    for (size_t i = 0; i < ws.size(); ++i) {
      TRACEMARK_ASSIGN_OR_RETURN(watermark::ProviderResult p,
                                 verifier_.detector(i).TestProvider(ws[i]));
      if (p.p_value < best_window) best_window = p.p_value;
    }
    ++windows;
    return absl::OkStatus();
  };
  auto test_pending = [&]() -> absl::Status {
    for (const auto& [ids, context] : pending) TRACEMARK_RETURN_IF_ERROR(test_window(ids, context));
    pending.clear();
    return absl::OkStatus();
  };
  // Adds ids[from ..] (ids[from - h .. from) are their context) to the window; each full window
  // is tested, or kept in `pending` while the document is not yet longer than two windows.
  auto add_to_window = [&](const std::vector<int32_t>& ids, size_t from) -> absl::Status {
    if (w == 0) return absl::OkStatus();
    if (window.empty()) {
      window.assign(ids.begin() + static_cast<ptrdiff_t>(from - std::min(from, h)),
                    ids.begin() + static_cast<ptrdiff_t>(from));
      window_context = window.size();
    }
    for (size_t i = from; i < ids.size(); ++i) {
      window.push_back(ids[i]);
      if (window.size() - window_context == w) {
        if (tokens + (i - from + 1) > 2 * w) {  // scored tokens so far, this one included
          TRACEMARK_RETURN_IF_ERROR(test_pending());
          TRACEMARK_RETURN_IF_ERROR(test_window(window, window_context));
        } else {
          pending.emplace_back(window, window_context);
        }
        // Slide by `stride`: the new window's context is the h ids before its first scored id.
        const size_t drop = window_context + stride - std::min(h, window_context + stride);
        window.erase(window.begin(), window.begin() + static_cast<ptrdiff_t>(drop));
        window_context = std::min(h, window_context + stride);
      }
    }
    return absl::OkStatus();
  };
  bool repaired = doc.repaired_utf8;
  bool round_trips = true;
  std::vector<TextStatistics> seen_stats;  // positions at seen windows (ScanOptions::seen)
  canary::CanaryStatistics doc_canary;
  std::string canary_tail;  // the text before a continuing segment, for its first context word
  std::vector<TextStatistics> own;  // the unshared tuples only (ScanOptions::shared)
  if (options_.shared != nullptr) TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto({}, 0, &own));
  auto score = [&](dataset::Segment& seg) -> absl::Status {
    size_t from = 0;
    TRACEMARK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, SegmentIds(seg, tail, &from, &repaired));
    if (options_.canary != nullptr) {
      const std::string_view before =
          seg.continues ? std::string_view(canary_tail) : Tail(seg.context, kContextBytes);
      doc_canary.Add(canary::ExtractEvents(seg.text, options_.canary->lexicon(),
                                           options_.canary->active_forms(), before));
      canary_tail = std::string(Tail(seg.text, kContextBytes));
    }
    const absl::Span<const int32_t> body = absl::MakeConstSpan(ids).subspan(from);
    if (round_trips) {
      TRACEMARK_ASSIGN_OR_RETURN(round_trips, RoundTrips(seg, body));
    }
    TRACEMARK_RETURN_IF_ERROR(verifier_.ScoreInto(ids, from, &stats));
    // The positions (with a full window) that `keep` selects, each scored on its own window.
    auto score_positions = [&](auto keep, std::vector<TextStatistics>* into) -> absl::Status {
      for (size_t i = std::max(from, h); i < ids.size(); ++i) {
        if (!keep(i)) continue;
        TRACEMARK_RETURN_IF_ERROR(
            verifier_.ScoreInto(absl::Span<const int32_t>(ids.data() + i - h, h + 1), h, into));
      }
      return absl::OkStatus();
    };
    if (options_.shared != nullptr) {
      TRACEMARK_RETURN_IF_ERROR(
          score_positions([&](size_t i) { return !options_.shared->Shared(ids, i); }, &own));
    }
    if (options_.seen != nullptr) {
      TRACEMARK_RETURN_IF_ERROR(
          score_positions([&](size_t i) { return options_.seen->Contains(ids, i); }, &seen_stats));
    }
    if (!seg.choices.empty() && white_box_.has_value()) {
      TRACEMARK_RETURN_IF_ERROR(ScoreWhiteBox(seg, out));
    }
    if (!seg.continues) {  // a new turn: windows do not span turns
      window.clear();
    }
    TRACEMARK_RETURN_IF_ERROR(add_to_window(ids, from));
    tokens += body.size();
    bytes += seg.text.size();
    tail.assign(ids.end() - static_cast<ptrdiff_t>(std::min(h, ids.size())), ids.end());
    return absl::OkStatus();
  };
  if (!doc.logprobs_error.empty() && options_.white_box) {
    ++out->white_box_unusable;
    if (out->white_box_problem.empty()) {
      out->white_box_problem = absl::StrCat(doc.source, ": ", doc.logprobs_error);
    }
  }
  // Text the tokenizer refuses (InvalidArgument: e.g. SentencePiece's space symbol in the text)
  // skips this document with the reason; the scan goes on.
  auto score_or_skip = [&](dataset::Segment& seg) -> absl::StatusOr<bool> {
    absl::Status st = score(seg);
    if (absl::IsInvalidArgument(st)) {
      out->skipped.push_back({doc.source, absl::StrCat(st.message(), " (not scored)")});
      return false;
    }
    TRACEMARK_RETURN_IF_ERROR(st);
    return true;
  };
  for (dataset::Segment& seg : doc.segments) {
    TRACEMARK_ASSIGN_OR_RETURN(const bool scored, score_or_skip(seg));
    if (!scored) return absl::OkStatus();
  }
  if (doc.more != nullptr) {
    dataset::Segment seg;
    for (;;) {
      absl::StatusOr<bool> more = doc.more->Next(&seg);
      if (!more.ok()) {
        out->skipped.push_back({doc.source, absl::StrCat(more.status().message(), " (after ", bytes,
                                                         " bytes; not scored)")});
        return absl::OkStatus();
      }
      if (!*more) break;
      TRACEMARK_ASSIGN_OR_RETURN(const bool scored, score_or_skip(seg));
      if (!scored) return absl::OkStatus();
    }
  }
  if (tokens == 0) {  // an empty file: nothing was tested, so it is no document (docs/cli.md)
    out->skipped.push_back({doc.source, "empty: no text to score"});
    return absl::OkStatus();
  }
  DetectOptions opt;
  opt.account_limit = options_.account_limit;
  opt.issued = options_.issued;
  opt.confirm_alpha = options_.attribution_alpha;
  opt.max_candidates = options_.max_candidates;
  TRACEMARK_ASSIGN_OR_RETURN(TextDetection det,
                             verifier_.Analyze(options_.shared != nullptr ? own : stats, opt));

  DocumentResult r;
  r.index = doc.index;
  r.id = std::move(doc.id);
  r.source = std::move(doc.source);
  r.tokens_scored = tokens;
  r.repaired_utf8 = repaired;
  r.round_trips = round_trips;
  const EpochDetection& best = det.epochs[det.best_provider_epoch];
  r.provider_tuples = best.provider.tuples;
  r.provider_p_value = det.provider_p_value;
  r.provider_epoch = best.epoch;
  if (w > 0 && tokens > 2 * w) TRACEMARK_RETURN_IF_ERROR(test_pending());
  if (w > 0 && tokens > 2 * w && windows >= 2) {
    r.windows = windows;
    r.window_p_value = Bonferroni(best_window, windows * verifier_.num_epochs());
    r.provider_p_value = Bonferroni(std::min(r.provider_p_value, r.window_p_value), 2);
  }
  r.account = det.attributed_account;
  r.account_p_value = det.attributed_p_value;
  r.candidates = det.attribution_tests;
  std::vector<canary::Tuple> canary_tuples;
  if (options_.canary != nullptr) {
    canary_tuples = doc_canary.Tuples(options_.canary->lexicon());
    r.canary_events = doc_canary.events();
    r.canary_tuples = canary_tuples.size();
    if (r.account.has_value() && !canary_tuples.empty()) {
      PValue best_canary;
      for (size_t i = 0; i < verifier_.num_epochs(); ++i) {
        TRACEMARK_ASSIGN_OR_RETURN(auto acct, verifier_.Account(i, *r.account));
        best_canary = std::min(
            best_canary,
            canary::TestAccount(canary_tuples, canary::CanaryKey::FromAccountKeys(*acct)).p);
      }
      r.canary_p_value = Bonferroni(best_canary, verifier_.num_epochs());
    }
  }
  out->documents.push_back(std::move(r));

  if (out->provider.empty()) out->provider.resize(verifier_.num_epochs());
  for (size_t i = 0; i < stats.size(); ++i) {
    const watermark::Detector& d = verifier_.detector(i);
    TRACEMARK_ASSIGN_OR_RETURN(TextStatistics p, d.Project(stats[i], Layer::kProvider));
    TRACEMARK_RETURN_IF_ERROR(out->provider[i].Merge(p));
    const watermark::PayloadResult& pay = det.epochs[i].payload;
    if (pay.decoded) {
      const std::pair<size_t, uint64_t> key{i, pay.candidates.front()};
      TRACEMARK_ASSIGN_OR_RETURN(TextStatistics f, d.Project(stats[i], Layer::kAccountFingerprint));
      TRACEMARK_RETURN_IF_ERROR(out->groups[key].Merge(f));
      ++out->group_documents[key];
      if (options_.canary != nullptr) out->canary_groups[key].Merge(doc_canary);
    }
  }
  if (options_.canary != nullptr) out->canary.Merge(doc_canary);
  if (options_.seen != nullptr) {
    TRACEMARK_RETURN_IF_ERROR(MergeProvider(verifier_, seen_stats, &out->provider_seen));
  }
  out->tokens += tokens;
  out->bytes += bytes;
  return absl::OkStatus();
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
    // As ScanDocument reads it; text the tokenizer refuses is not scored there either.
    auto add = [&](dataset::Segment& seg) -> bool {
      size_t from = 0;
      absl::StatusOr<std::vector<int32_t>> ids = SegmentIds(seg, tail, &from, &repaired);
      if (!ids.ok()) return false;
      shared.Add(doc.index, *ids, from);
      tail.assign(ids->end() - static_cast<ptrdiff_t>(std::min(h, ids->size())), ids->end());
      return true;
    };
    bool ok = true;
    for (dataset::Segment& seg : doc.segments) ok = ok && add(seg);
    if (doc.more != nullptr) {
      dataset::Segment seg;
      while (ok) {
        absl::StatusOr<bool> next = doc.more->Next(&seg);
        if (!next.ok() || !*next) break;
        ok = add(seg);
      }
    }
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
  if (tokenizer_.vocab_size() != verifier_.config().vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer ", std::string(tokenizer_.name()), " has ", tokenizer_.vocab_size(),
                     " ids but the watermark configuration has ", verifier_.config().vocab_size));
  }
  const int threads = Threads();
  std::mutex mu;
  std::condition_variable not_empty, not_full;
  std::deque<dataset::Document> queue;
  bool done = false;
  const size_t capacity = 64 * static_cast<size_t>(threads);
  std::atomic<uint64_t> docs_done{0}, tokens_done{0};
  std::vector<ScanResult> locals(threads);
  std::vector<absl::Status> errors(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (;;) {
        dataset::Document d;
        {
          std::unique_lock<std::mutex> lock(mu);
          not_empty.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          d = std::move(queue.front());
          queue.pop_front();
        }
        not_full.notify_one();
        const uint64_t before = locals[t].tokens;
        if (errors[t].ok()) errors[t] = ScanDocument(std::move(d), &locals[t]);
        tokens_done.fetch_add(locals[t].tokens - before, std::memory_order_relaxed);
        docs_done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  auto report = [&] {
    if (!progress) return;
    ScanProgress p;
    p.documents = docs_done.load();
    p.tokens = tokens_done.load();
    p.bytes_read = reader.bytes_read();
    p.total_bytes = reader.total_bytes();
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress(p);
  };
  absl::Status read_status;
  for (;;) {
    if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
      read_status = absl::CancelledError("scan cancelled");
      break;
    }
    dataset::Document d;
    absl::StatusOr<bool> more = reader.Next(&d);
    if (!more.ok()) {
      read_status = more.status();
      break;
    }
    if (!*more) break;
    {
      std::unique_lock<std::mutex> lock(mu);
      not_full.wait(lock, [&] { return queue.size() < capacity; });
      queue.push_back(std::move(d));
    }
    not_empty.notify_one();
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::milliseconds(200)) {
      last_report = now;
      report();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    if (!read_status.ok()) queue.clear();  // nothing more to score
  }
  not_empty.notify_all();
  for (std::thread& th : pool) th.join();
  report();
  TRACEMARK_RETURN_IF_ERROR(read_status);
  ScanResult all;
  for (int t = 0; t < threads; ++t) {
    TRACEMARK_RETURN_IF_ERROR(errors[t]);
    TRACEMARK_RETURN_IF_ERROR(all.Merge(std::move(locals[t])));
  }
  std::sort(all.documents.begin(), all.documents.end(),
            [](const DocumentResult& a, const DocumentResult& b) { return a.index < b.index; });
  std::vector<dataset::Skipped> skipped = reader.skipped();
  skipped.insert(skipped.end(), all.skipped.begin(), all.skipped.end());
  all.skipped = std::move(skipped);
  if (all.provider.empty()) all.provider.resize(verifier_.num_epochs());
  all.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return all;
}

absl::StatusOr<ScanSummary> Scanner::Summarize(const ScanResult& result) const {
  ScanSummary s;
  const size_t n_epochs = verifier_.num_epochs();
  // A result from elsewhere (a partition's bytes) must fit this verifier's epochs before its
  // per-epoch statistics are tested (groups' epoch indexes are checked by Verifier::Account); each
  // detector then refuses statistics of another key or configuration.
  for (const auto* per_epoch :
       {&result.provider, &result.white_box, &result.provider_seen, &result.white_box_seen}) {
    if (!per_epoch->empty() && per_epoch->size() != n_epochs) {
      return absl::InvalidArgumentError(absl::StrCat("scan statistics for ", per_epoch->size(),
                                                     " epochs given to a verifier of ", n_epochs));
    }
  }
  TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch provider, TestBestEpoch(verifier_, result.provider));
  s.provider_p_value = provider.p;
  s.provider_tuples = provider.tuples;
  s.provider_epoch = provider.epoch;
  absl::flat_hash_map<uint64_t, uint64_t> attributed;
  std::vector<PValue> provider_p, account_p;
  for (const DocumentResult& d : result.documents) {
    provider_p.push_back(d.provider_p_value);
    account_p.push_back(d.account.has_value() ? d.account_p_value : PValue());
  }
  const bool independent = options_.shared != nullptr;
  const std::vector<bool> flagged =
      Rejected(provider_p, options_.attribution_alpha, options_.control, independent);
  const std::vector<bool> confirmed =
      Rejected(account_p, options_.attribution_alpha, options_.control, independent);
  for (size_t i = 0; i < result.documents.size(); ++i) {
    const DocumentResult& d = result.documents[i];
    if (flagged[i]) ++s.documents_flagged;
    if (d.account.has_value() && confirmed[i]) {
      ++s.documents_attributed;
      ++attributed[*d.account];
    }
  }
  const uint64_t groups = result.groups.size();
  for (const auto& [key, stats] : result.groups) {
    TRACEMARK_ASSIGN_OR_RETURN(auto acct, verifier_.Account(key.first, key.second));
    TRACEMARK_ASSIGN_OR_RETURN(watermark::AccountResult r,
                               verifier_.detector(key.first).TestAccount(stats, *acct));
    AccountSummary a;
    a.account = key.second;
    a.epoch = verifier_.epoch(key.first);
    auto it = result.group_documents.find(key);
    a.documents = it == result.group_documents.end() ? 0 : it->second;
    auto at = attributed.find(key.second);
    a.attributed = at == attributed.end() ? 0 : at->second;
    a.tuples = r.tuples;
    a.combined_p_value = Bonferroni(r.p_value, groups);
    if (options_.canary != nullptr) {
      auto c = result.canary_groups.find(key);
      if (c != result.canary_groups.end()) {
        const std::vector<canary::Tuple> tuples = c->second.Tuples(options_.canary->lexicon());
        const canary::CanaryResult cr =
            canary::TestAccount(tuples, canary::CanaryKey::FromAccountKeys(*acct));
        a.canary_tuples = cr.tuples;
        a.canary_matches = cr.matches;
        a.canary_p_value = Bonferroni(cr.p, groups);
      }
    }
    s.accounts.push_back(a);
  }
  std::sort(s.accounts.begin(), s.accounts.end(),
            [](const AccountSummary& a, const AccountSummary& b) {
              if (a.combined_p_value.log() != b.combined_p_value.log())
                return a.combined_p_value < b.combined_p_value;
              return std::make_pair(a.epoch, a.account) < std::make_pair(b.epoch, b.account);
            });
  if (options_.canary != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(s.canary, SummarizeCanary(result));
  }
  if (result.white_box_documents + result.white_box_unusable > 0) {
    WhiteBoxSummary w;
    w.documents = result.white_box_documents;
    w.positions = result.white_box_positions;
    w.unusable = result.white_box_unusable;
    w.problem = result.white_box_problem;
    TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch b, TestBestEpoch(verifier_, result.white_box));
    w.p_value = b.p;
    w.tuples = b.tuples;
    w.epoch = b.epoch;
    w.method = absl::StrCat(
        "white-box: at each answer position whose window lies inside the answer and does not "
        "occur in the prompt, the suspect's most likely token (from its reported "
        "log-probabilities) with that window, as unique tuples; provider-layer test under each of ",
        n_epochs, " epoch(s), the smallest p-value Bonferroni-corrected for them.");
    s.white_box = std::move(w);
  }
  if (options_.seen != nullptr) {
    SeenSummary seen;
    seen.windows = options_.seen->size();
    seen.documents = options_.seen->documents();
    TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch p, TestBestEpoch(verifier_, result.provider_seen));
    seen.provider_p_value = p.p;
    seen.provider_tuples = p.tuples;
    if (!result.white_box_seen.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(const BestEpoch w,
                                 TestBestEpoch(verifier_, result.white_box_seen));
      seen.white_box_p_value = w.p;
      seen.white_box_tuples = w.tuples;
    }
    s.seen = seen;
  }
  s.warnings = ScanWarnings(result, s, tokenizer_.name());
  s.method = absl::StrCat(
      "unique (context, token) tuples. Per document",
      independent ? " (on the tuples no other document of the scan shares)" : "",
      ": provider test under each of ", n_epochs,
      " epoch(s), the smallest p-value Bonferroni-corrected for them; the account its id payload "
      "decodes to is confirmed by its fingerprint test on disjoint positions, Bonferroni-corrected "
      "over the candidates confirmed, and attributed at p <= ",
      options_.attribution_alpha,
      ". Dataset: one provider test over the union of all documents' unique provider tuples "
      "(best epoch, corrected). Accounts: documents grouped by the id their payload decodes to "
      "(a function of the text alone); each group's pooled fingerprint tuples tested for that "
      "account (Chernoff bound), Bonferroni-corrected over the ",
      groups, " group(s) tested.",
      // Unchanged from earlier versions by default, so that their reports still recompute.
      options_.control == FamilyControl::kNone
          ? ""
          : absl::StrCat(" Counts: ",
                         DescribeControl(options_.control, options_.attribution_alpha, independent),
                         "."));
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
