#include "tracemark/detect/scan_result_io.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tracemark::detect {
namespace {

using canary::CanaryStatistics;
using stats::PValue;
using watermark::TextStatistics;

constexpr char kMagic[8] = {'T', 'M', 'S', 'C', 'A', 'N', '\0', '\2'};  // name, version 2

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Raw(v); }
  void U64(uint64_t v) { Raw(v); }
  void F64(double v) { Raw(v); }
  void Str(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  void P(PValue p) { F64(p.log()); }
  void Stats(const TextStatistics& s) {
    U64(s.layout_id());
    std::vector<std::pair<uint64_t, uint64_t>> t(s.tuples().begin(), s.tuples().end());
    std::sort(t.begin(), t.end());
    U64(t.size());
    for (const auto& [k, v] : t) {
      U64(k);
      U64(v);
    }
  }
  void StatsList(const std::vector<TextStatistics>& list) {
    U64(list.size());
    for (const TextStatistics& s : list) Stats(s);
  }
  void Canary(const CanaryStatistics& c) {
    U64(c.events());
    const std::vector<CanaryStatistics::Entry> entries = c.Entries();
    U64(entries.size());
    for (const auto& e : entries) {
      U32(e.set);
      U64(e.context);
      for (uint32_t n : e.counts) U32(n);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  template <typename T>
  void Raw(T v) {  // little-endian on the hosts tracemark builds for (x86-64, aarch64)
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  std::string out_;
};

// Every read checks what is left; the first failure sticks and names what was being read.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t left() const { return in_.size(); }

  uint8_t U8(const char* what) { return Raw<uint8_t>(what); }
  uint32_t U32(const char* what) { return Raw<uint32_t>(what); }
  uint64_t U64(const char* what) { return Raw<uint64_t>(what); }
  double F64(const char* what) { return Raw<double>(what); }
  bool Bool(const char* what) {
    const uint8_t v = U8(what);
    if (v > 1) Fail(what, "is not 0 or 1");
    return v == 1;
  }
  // A count of items of at least `min_size` bytes each, checked against the bytes left.
  uint64_t Count(const char* what, size_t min_size) {
    const uint64_t n = U64(what);
    if (ok() && n > in_.size() / min_size) Fail(what, "counts more items than the bytes left");
    return ok() ? n : 0;
  }
  std::string Str(const char* what) {
    const uint64_t n = Count(what, 1);
    if (!ok()) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  PValue P(const char* what) {
    const double log_p = F64(what);
    if (ok() && !(log_p <= 0)) Fail(what, "is not a p-value");  // also NaN
    return ok() ? PValue::FromLog(log_p) : PValue();
  }
  TextStatistics Stats(const char* what) {
    const uint64_t layout = U64(what);
    const uint64_t n = Count(what, 16);
    absl::flat_hash_map<uint64_t, uint64_t> tuples;
    tuples.reserve(n);
    for (uint64_t i = 0; i < n && ok(); ++i) {
      const uint64_t k = U64(what);
      tuples.emplace(k, U64(what));
    }
    if (ok() && tuples.size() != n) Fail(what, "repeats a tuple");
    if (ok() && layout == 0 && n != 0) Fail(what, "has tuples but no layout");
    return TextStatistics(layout, std::move(tuples));
  }
  std::vector<TextStatistics> StatsList(const char* what) {
    std::vector<TextStatistics> out(Count(what, 16));
    for (TextStatistics& s : out) {
      if (!ok()) break;
      s = Stats(what);
    }
    return out;
  }
  CanaryStatistics Canary(const char* what) {
    CanaryStatistics c;
    c.AddEvents(U64(what));
    const uint64_t n = Count(what, 4 + 8 + 4 * canary::kMaxSetSize);
    for (uint64_t i = 0; i < n && ok(); ++i) {
      CanaryStatistics::Entry e;
      e.set = U32(what);
      e.context = U64(what);
      for (uint32_t& x : e.counts) x = U32(what);
      c.AddEntry(e);
    }
    if (ok() && c.tuple_count() != n) Fail(what, "repeats a tuple");
    return c;
  }
  void Fail(const char* what, const char* why) {
    if (error_.empty()) error_ = absl::StrCat(what, " ", why);
  }

 private:
  template <typename T>
  T Raw(const char* what) {
    T v{};
    if (!ok()) return v;
    if (in_.size() < sizeof(T)) {
      Fail(what, "is cut short");
      return v;
    }
    std::memcpy(&v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return v;
  }
  std::string_view in_;
  std::string error_;
};

// Per (epoch index, account) maps, written sorted by key: the key, then the value.
template <typename Map, typename WriteValue>
void WriteGroups(Writer& w, const Map& m, WriteValue write_value) {
  std::vector<typename Map::key_type> keys;
  keys.reserve(m.size());
  for (const auto& [k, v] : m) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  w.U64(keys.size());
  for (const auto& key : keys) {
    w.U64(key.first);
    w.U64(key.second);
    write_value(w, m.at(key));
  }
}

// The inverse; `value_size` is the least bytes a value takes (for the count check).
template <typename Map, typename ReadValue>
void ReadGroups(Reader& in, const char* what, size_t value_size, Map* out, ReadValue read_value) {
  const uint64_t n = in.Count(what, 16 + value_size);
  for (uint64_t i = 0; i < n && in.ok(); ++i) {
    const uint64_t epoch = in.U64(what);
    const uint64_t account = in.U64(what);
    if (!out->emplace(std::make_pair(epoch, account), read_value(in)).second) {
      in.Fail(what, "repeat a group");
    }
  }
}

}  // namespace

std::string SerializeScanResult(const ScanResult& r) {
  Writer w;
  for (char c : kMagic) w.U8(static_cast<uint8_t>(c));
  w.U64(r.documents.size());
  for (const DocumentResult& d : r.documents) {
    w.U64(d.index);
    w.Str(d.id);
    w.Str(d.source);
    w.U64(d.tokens_scored);
    w.U64(d.provider_tuples);
    w.P(d.provider_p_value);
    w.U32(d.provider_epoch);
    w.P(d.window_p_value);
    w.U64(d.windows);
    w.U8(d.account.has_value());
    w.U64(d.account.value_or(0));
    w.P(d.account_p_value);
    w.U64(d.candidates);
    w.U8(d.repaired_utf8);
    w.U8(d.round_trips);
    w.U64(d.canary_events);
    w.U64(d.canary_tuples);
    w.P(d.canary_p_value);
  }
  w.U64(r.skipped.size());
  for (const dataset::Skipped& s : r.skipped) {
    w.Str(s.source);
    w.Str(s.reason);
  }
  w.StatsList(r.provider);
  WriteGroups(w, r.groups, [](Writer& wr, const TextStatistics& v) { wr.Stats(v); });
  WriteGroups(w, r.group_documents, [](Writer& wr, uint64_t v) { wr.U64(v); });
  w.Canary(r.canary);
  WriteGroups(w, r.canary_groups, [](Writer& wr, const CanaryStatistics& v) { wr.Canary(v); });
  w.StatsList(r.white_box);
  w.U64(r.white_box_documents);
  w.U64(r.white_box_positions);
  w.U64(r.white_box_unusable);
  w.StatsList(r.provider_seen);
  w.StatsList(r.white_box_seen);
  w.Str(r.white_box_problem);
  w.U64(r.tokens);
  w.U64(r.bytes);
  w.F64(r.seconds);
  return w.Take();
}

absl::StatusOr<ScanResult> ParseScanResult(std::string_view bytes) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError(
        "not a serialized tracemark scan result (or one of another version)");
  }
  Reader in(bytes.substr(sizeof(kMagic)));
  ScanResult r;
  r.documents.resize(in.Count("documents", 8 * 12));
  for (DocumentResult& d : r.documents) {
    if (!in.ok()) break;
    d.index = in.U64("document index");
    d.id = in.Str("document id");
    d.source = in.Str("document source");
    d.tokens_scored = in.U64("document tokens");
    d.provider_tuples = in.U64("document tuples");
    d.provider_p_value = in.P("document p-value");
    d.provider_epoch = in.U32("document epoch");
    d.window_p_value = in.P("document window p-value");
    d.windows = in.U64("document windows");
    const bool has_account = in.Bool("document account flag");
    const uint64_t account = in.U64("document account");
    if (has_account) d.account = account;
    d.account_p_value = in.P("document account p-value");
    d.candidates = in.U64("document candidates");
    d.repaired_utf8 = in.Bool("document repair flag");
    d.round_trips = in.Bool("document round-trip flag");
    d.canary_events = in.U64("document canary events");
    d.canary_tuples = in.U64("document canary tuples");
    d.canary_p_value = in.P("document canary p-value");
  }
  r.skipped.resize(in.Count("skipped", 16));
  for (dataset::Skipped& s : r.skipped) {
    if (!in.ok()) break;
    s.source = in.Str("skipped source");
    s.reason = in.Str("skipped reason");
  }
  r.provider = in.StatsList("provider statistics");
  ReadGroups(in, "groups", 16, &r.groups, [](Reader& rd) { return rd.Stats("group statistics"); });
  ReadGroups(in, "group documents", 8, &r.group_documents,
             [](Reader& rd) { return rd.U64("group documents"); });
  r.canary = in.Canary("canary statistics");
  ReadGroups(in, "canary groups", 16, &r.canary_groups,
             [](Reader& rd) { return rd.Canary("canary group"); });
  r.white_box = in.StatsList("white-box statistics");
  r.white_box_documents = in.U64("white-box documents");
  r.white_box_positions = in.U64("white-box positions");
  r.white_box_unusable = in.U64("white-box unusable");
  r.provider_seen = in.StatsList("seen provider statistics");
  r.white_box_seen = in.StatsList("seen white-box statistics");
  r.white_box_problem = in.Str("white-box problem");
  r.tokens = in.U64("tokens");
  r.bytes = in.U64("bytes");
  r.seconds = in.F64("seconds");
  if (in.ok() && in.left() != 0) in.Fail("the result", "is followed by stray bytes");
  if (in.ok() && !(r.seconds >= 0)) in.Fail("seconds", "is negative");
  if (!in.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed serialized scan result: ", in.error()));
  }
  return r;
}

}  // namespace tracemark::detect
