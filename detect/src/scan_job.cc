#include "tracemark/detect/scan_job.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/dataset/input.h"
#include "tracemark/detect/seen_windows.h"
#include "tracemark/detect/verifier.h"
#include "tracemark/tokenizer/load.h"

namespace tracemark::detect {
namespace {

using nlohmann::json;

json DocumentJson(const DocumentResult& d, bool with_canary) {
  json e = {{"id", d.id},
            {"source", d.source},
            {"account", d.account ? json(*d.account) : json()},
            {"p_value", PValueJson(d.provider_p_value)},
            {"account_p_value", PValueJson(d.account_p_value)},
            {"candidates", d.candidates},
            {"tokens_scored", d.tokens_scored},
            {"tuples_scored", d.provider_tuples},
            {"epoch", d.provider_epoch}};
  if (d.repaired_utf8) e["repaired_utf8"] = true;
  if (!d.round_trips) e["round_trips"] = false;
  if (with_canary) {
    e["canary"] = {{"events", d.canary_events},
                   {"tuples", d.canary_tuples},
                   {"account_p_value", PValueJson(d.canary_p_value)}};
  }
  if (d.windows > 0) {
    e["windows"] = d.windows;
    e["window_p_value"] = PValueJson(d.window_p_value);
  }
  return e;
}

json AccountJson(const AccountSummary& a) {
  return {{"account", a.account},
          {"epoch", a.epoch},
          {"documents", a.documents},
          {"attributed", a.attributed},
          {"tuples_scored", a.tuples},
          {"combined_p_value", PValueJson(a.combined_p_value)},
          {"canary_tuples", a.canary_tuples},
          {"canary_matches", a.canary_matches},
          {"canary_p_value", PValueJson(a.canary_p_value)}};
}

json CohortJson(const canary::CohortResult& c) {
  return {{"accounts", c.accounts},
          {"matches", c.matches},
          {"expected", c.expected},
          {"sum_p_value", PValueJson(c.p)},
          {"heaviest_account", c.best_account},
          {"heaviest_matches", c.best_matches},
          {"heaviest_p_value", PValueJson(c.best_member_p)},
          {"p_value", PValueJson(c.combined_p)}};
}

json CanaryJson(const CanarySummary& c) {
  json top = json::array();
  for (size_t i = 0; i < c.attribution.top.size(); ++i) {
    const canary::CanaryResult& t = c.attribution.top[i];
    top.push_back({{"account", t.account},
                   {"epoch", c.attribution_epochs[i]},
                   {"matches", t.matches},
                   {"expected", t.expected},
                   {"p_value", PValueJson(t.p)}});
  }
  json j = {{"lexicon", c.lexicon},
            {"lexicon_digest", c.lexicon_digest},
            {"active_sets", c.active_sets},
            {"events", c.events},
            {"tuples", c.tuples},
            {"attribution",
             {{"accounts_tried", c.attribution.accounts_tried},
              {"corrected_p_value", PValueJson(c.attribution.corrected)},
              {"exact", c.attribution.exact},
              {"top", top}}},
            {"method", c.method}};
  if (c.cohort.has_value()) j["cohort"] = CohortJson(*c.cohort);
  return j;
}

json SeenJson(const SeenSummary& z) {
  json j = {{"windows", z.windows},
            {"documents", z.documents},
            {"provider_p_value", PValueJson(z.provider_p_value)},
            {"provider_tuples", z.provider_tuples}};
  if (z.white_box_p_value.has_value()) {
    j["white_box_p_value"] = PValueJson(*z.white_box_p_value);
    j["white_box_tuples"] = z.white_box_tuples;
  }
  return j;
}

json WhiteBoxJson(const WhiteBoxSummary& w) {
  return {{"p_value", PValueJson(w.p_value)},
          {"tuples", w.tuples},
          {"epoch", w.epoch},
          {"documents", w.documents},
          {"positions", w.positions},
          {"unusable_documents", w.unusable},
          {"problem", w.problem},
          {"method", w.method}};
}

// The result as `tracemark scan --json` prints it (docs/scan.md), from the typed result.
json ScanJson(const ScanResult& r, const ScanSummary& s, const watermark::Config& config) {
  json j;
  j["provider"] = {{"p_value", PValueJson(s.provider_p_value)},
                   {"tokens_scored", r.tokens},
                   {"tuples_scored", s.provider_tuples},
                   {"epoch", s.provider_epoch}};
  j["documents"] = json::array();
  for (const DocumentResult& d : r.documents) {
    j["documents"].push_back(DocumentJson(d, s.canary.has_value()));
  }
  j["accounts"] = json::array();
  for (const AccountSummary& a : s.accounts) j["accounts"].push_back(AccountJson(a));
  if (s.canary.has_value()) j["canary"] = CanaryJson(*s.canary);
  if (s.seen.has_value()) j["seen_windows"] = SeenJson(*s.seen);
  if (s.white_box.has_value()) j["white_box"] = WhiteBoxJson(*s.white_box);
  j["skipped"] = json::array();
  for (const dataset::Skipped& k : r.skipped) {
    j["skipped"].push_back({{"source", k.source}, {"reason", k.reason}});
  }
  AddLog10PValues(&j);
  j["warnings"] = s.warnings;
  j["method"] = s.method;
  j["parameters"] = config.Describe();
  j["totals"] = {{"documents", r.documents.size()},
                 {"documents_flagged", s.documents_flagged},
                 {"documents_attributed", s.documents_attributed},
                 {"skipped", r.skipped.size()},
                 {"bytes", r.bytes},
                 {"tokens", r.tokens},
                 {"seconds", r.seconds}};
  return j;
}

// Reads `key` of `options` into `out` when present; InvalidArgument naming it when mistyped.
template <typename T>
absl::Status Field(const json& options, const char* key, T* out) {
  const auto it = options.find(key);
  if (it == options.end() || it->is_null()) return absl::OkStatus();
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(absl::StrCat("scan option '", key, "' has the wrong type"));
  }
  return absl::OkStatus();
}

bool SortedUnique(const std::vector<uint64_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<uint64_t>()) == v.end();
}

}  // namespace

json ScanJobSpec::Options() const {
  return {{"inputs", inputs},
          {"seen_in", seen_in},
          {"encoding", encoding},
          {"scheme", scheme},
          {"watermark", watermark},
          {"account_limit", account_limit},
          {"account_ids", account_ids},
          {"epochs", epochs},
          {"alpha", alpha},
          {"max_candidates", max_candidates},
          {"canary", canary},
          {"lexicon", lexicon},
          {"cohort", cohort},
          {"independent_documents", independent_documents},
          {"family_control", family_control}};
}

absl::StatusOr<ScanJobSpec> ScanJobSpec::FromOptions(const json& options) {
  if (!options.is_object()) return absl::InvalidArgumentError("scan options are not an object");
  ScanJobSpec s;
  // A mistyped or foreign key (the CLI's "accounts" for "account_limit") would otherwise be
  // ignored and the scan run under defaults the caller did not ask for.
  const json known = s.Options();
  for (const auto& [key, value] : options.items()) {
    if (!known.contains(key)) {
      std::vector<std::string> names;
      for (const auto& [k, v] : known.items()) names.push_back(k);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown scan option '", key, "' (known: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  TRACEMARK_RETURN_IF_ERROR(Field(options, "inputs", &s.inputs));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "seen_in", &s.seen_in));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "encoding", &s.encoding));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "scheme", &s.scheme));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "watermark", &s.watermark));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "account_limit", &s.account_limit));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "account_ids", &s.account_ids));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "epochs", &s.epochs));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "alpha", &s.alpha));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "max_candidates", &s.max_candidates));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "canary", &s.canary));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "lexicon", &s.lexicon));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "cohort", &s.cohort));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "independent_documents", &s.independent_documents));
  TRACEMARK_RETURN_IF_ERROR(Field(options, "family_control", &s.family_control));
  return s;
}

absl::Status ScanJobSpec::Validate() const {
  if (inputs.empty()) return absl::InvalidArgumentError("a scan needs at least one input");
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError("alpha must be in (0, 1)");
  if (max_candidates == 0) return absl::InvalidArgumentError("max_candidates must be >= 1");
  if (threads < 0) return absl::InvalidArgumentError("threads must be >= 0 (0: one per core)");
  if (epochs.empty()) return absl::InvalidArgumentError("empty epoch list");
  if (account_limit > 0 && !account_ids.empty()) {
    return absl::InvalidArgumentError("give a number of accounts or a list of ids, not both");
  }
  if (!SortedUnique(account_ids) || !SortedUnique(cohort)) {
    return absl::InvalidArgumentError("account and cohort ids must be sorted and unique");
  }
  TRACEMARK_RETURN_IF_ERROR(ParseFamilyControl(family_control).status());
  if (!canary && !cohort.empty()) {
    return absl::InvalidArgumentError("a cohort is a canary test: it needs canary on");
  }
  return absl::OkStatus();
}

namespace {

// What scoring and summarising a scan both need, built from its spec.
struct ScanSetup {
  std::unique_ptr<tokenizer::Tokenizer> own_tok;
  const tokenizer::Tokenizer* tok = nullptr;
  watermark::Config config;
  std::unique_ptr<Verifier> verifier;
  std::optional<watermark::IssuedAccounts> issued;
  std::optional<canary::Lexicon> lexicon_holder;
  std::unique_ptr<canary::CanaryProcessor> canary_proc;
  std::optional<SeenWindows> seen;
  std::vector<std::string> seen_in_files;
  std::optional<SharedTuples> shared;  // with spec.independent_documents, once Score has run
  ScanOptions options;
};

// The spec's tokenizer: from the control's cache when it has one, else loaded into *own.
absl::StatusOr<const tokenizer::Tokenizer*> GetTokenizer(
    const ScanJobSpec& spec, const ScanJobControl& control,
    std::unique_ptr<tokenizer::Tokenizer>* own) {
  if (control.tokenizers != nullptr) {
    return control.tokenizers->Get(spec.encoding, spec.data_dir);
  }
  TRACEMARK_ASSIGN_OR_RETURN(*own, tokenizer::LoadTokenizer(spec.encoding, spec.data_dir));
  return own->get();
}

absl::StatusOr<std::unique_ptr<ScanSetup>> PrepareScan(const ScanJobSpec& spec,
                                                       const watermark::Key& master,
                                                       const ScanJobControl& control) {
  TRACEMARK_RETURN_IF_ERROR(spec.Validate());
  auto s = std::make_unique<ScanSetup>();
  TRACEMARK_ASSIGN_OR_RETURN(s->tok, GetTokenizer(spec, control, &s->own_tok));
  TRACEMARK_ASSIGN_OR_RETURN(s->config,
                             WatermarkConfig(spec.scheme, spec.watermark, s->tok->vocab_size()));
  TRACEMARK_ASSIGN_OR_RETURN(s->verifier, Verifier::Create(master, s->config, spec.epochs));
  ScanOptions& opt = s->options;
  opt.account_limit = spec.account_limit;
  if (!spec.account_ids.empty()) {
    opt.issued = &s->issued.emplace(
        absl::flat_hash_set<uint64_t>(spec.account_ids.begin(), spec.account_ids.end()));
  }
  opt.attribution_alpha = spec.alpha;
  opt.max_candidates = spec.max_candidates;
  TRACEMARK_ASSIGN_OR_RETURN(opt.control, ParseFamilyControl(spec.family_control));
  opt.threads = spec.threads;
  opt.cancel = control.cancel;
  if (spec.canary) {
    TRACEMARK_ASSIGN_OR_RETURN(s->canary_proc,
                               LoadCanaryProcessor(spec.lexicon, *s->tok, &s->lexicon_holder));
    opt.canary = s->canary_proc.get();
    opt.cohort = spec.cohort;
  }
  if (!spec.seen_in.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::DocumentReader> training,
                               dataset::DocumentReader::Open(spec.seen_in));
    s->seen_in_files = training->paths();
    TRACEMARK_ASSIGN_OR_RETURN(s->seen,
                               SeenWindows::Collect(*training, *s->tok, s->config.context_width));
    if (s->seen->size() == 0) {
      return absl::InvalidArgumentError("seen-in: no windows in the suspected training data");
    }
    opt.seen = &*s->seen;
  }
  return s;
}

}  // namespace

absl::Status CheckScanParameters(const ScanJobSpec& spec, const ScanJobControl& control) {
  ScanJobSpec check = spec;
  if (check.inputs.empty()) check.inputs.push_back("(inputs still to come)");
  TRACEMARK_RETURN_IF_ERROR(check.Validate());
  std::unique_ptr<tokenizer::Tokenizer> own;
  TRACEMARK_ASSIGN_OR_RETURN(const tokenizer::Tokenizer* tok, GetTokenizer(spec, control, &own));
  TRACEMARK_RETURN_IF_ERROR(
      WatermarkConfig(spec.scheme, spec.watermark, tok->vocab_size()).status());
  if (spec.canary) {
    std::optional<canary::Lexicon> holder;
    TRACEMARK_RETURN_IF_ERROR(LoadCanaryProcessor(spec.lexicon, *tok, &holder).status());
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<ScanResult> Score(ScanSetup& setup, const ScanJobSpec& spec,
                                 const ScanJobControl& control,
                                 std::vector<std::string>* input_files) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::DocumentReader> reader,
                             dataset::DocumentReader::Open(spec.inputs));
  *input_files = reader->paths();
  if (spec.independent_documents) {  // the first pass: which tuples documents share
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::DocumentReader> first,
                               dataset::DocumentReader::Open(spec.inputs));
    TRACEMARK_ASSIGN_OR_RETURN(
        setup.shared, Scanner(*setup.verifier, *setup.tok, setup.options).CollectShared(*first));
    setup.options.shared = &*setup.shared;
  }
  Scanner scanner(*setup.verifier, *setup.tok, setup.options);
  return scanner.Scan(*reader, control.progress);
}

absl::StatusOr<ScanJobOutput> Finish(const ScanSetup& setup, const watermark::Key& master,
                                     ScanResult scan, std::vector<std::string> input_files) {
  if (scan.documents.empty()) {  // a wrong path or format, not evidence of absence
    if (scan.skipped.empty()) {
      return absl::InvalidArgumentError("the inputs hold no documents: nothing was tested");
    }
    const dataset::Skipped& first = scan.skipped.front();
    return absl::InvalidArgumentError(
        absl::StrCat("no usable document in the inputs: nothing was tested (", scan.skipped.size(),
                     " skipped; the first, ", first.source, ": ", first.reason, ")"));
  }
  ScanJobOutput out;
  out.master_key_id = master.Id();
  out.master_key_commitment = master.Commitment();
  out.input_files = std::move(input_files);
  out.seen_in_files = setup.seen_in_files;
  out.scan = std::move(scan);
  Scanner scanner(*setup.verifier, *setup.tok, setup.options);
  TRACEMARK_ASSIGN_OR_RETURN(out.summary, scanner.Summarize(out.scan));
  out.result = ScanJson(out.scan, out.summary, setup.config);
  out.result["epochs"] = json::array();
  const Verifier& v = *setup.verifier;
  for (size_t i = 0; i < v.num_epochs(); ++i) {
    out.result["epochs"].push_back({{"epoch", v.epoch(i)}, {"key_id", v.detector(i).key_id()}});
  }
  return out;
}

}  // namespace

absl::StatusOr<ScanJobOutput> RunScanJob(const ScanJobSpec& spec, const watermark::Key& master,
                                         const ScanJobControl& control) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ScanSetup> setup, PrepareScan(spec, master, control));
  std::vector<std::string> input_files;
  TRACEMARK_ASSIGN_OR_RETURN(ScanResult scan, Score(*setup, spec, control, &input_files));
  return Finish(*setup, master, std::move(scan), std::move(input_files));
}

absl::StatusOr<ScanPartitionOutput> ScanPartition(const ScanJobSpec& spec,
                                                  const watermark::Key& master,
                                                  const ScanJobControl& control) {
  if (spec.independent_documents) {
    return absl::InvalidArgumentError(
        "independent_documents needs every document of the scan in one process (its first pass "
        "finds the tuples documents share); run it without partitions");
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ScanSetup> setup, PrepareScan(spec, master, control));
  ScanPartitionOutput out;
  TRACEMARK_ASSIGN_OR_RETURN(out.scan, Score(*setup, spec, control, &out.input_files));
  return out;
}

absl::StatusOr<ScanJobOutput> MergeScanPartitions(const ScanJobSpec& spec,
                                                  const watermark::Key& master,
                                                  std::vector<ScanPartitionOutput> partitions,
                                                  const ScanJobControl& control) {
  if (spec.independent_documents) {
    return absl::InvalidArgumentError(
        "independent_documents needs every document of the scan in one process; partitions "
        "cannot be merged under it");
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<ScanSetup> setup, PrepareScan(spec, master, control));
  ScanResult merged;
  std::vector<std::string> input_files;
  for (ScanPartitionOutput& p : partitions) {
    TRACEMARK_RETURN_IF_ERROR(merged.Merge(std::move(p.scan)));
    for (std::string& f : p.input_files) input_files.push_back(std::move(f));
  }
  return Finish(*setup, master, std::move(merged), std::move(input_files));
}

absl::StatusOr<const tokenizer::Tokenizer*> TokenizerCache::Get(const std::string& encoding,
                                                                const std::string& data_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = loaded_[{encoding, data_dir}];
  if (slot == nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(slot, tokenizer::LoadTokenizer(encoding, data_dir));
  }
  return slot.get();
}

json CanonicalResult(const json& result, const std::vector<std::string>& input_files) {
  json c = result;
  if (c.contains("totals") && c["totals"].is_object()) c["totals"].erase("seconds");
  // Longest paths first, so that "a/b.jsonl" is not taken for a prefix of "a/b.jsonl.gz".
  std::vector<size_t> order(input_files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return input_files[a].size() > input_files[b].size(); });
  auto rename = [&](json& field) {
    if (!field.is_string()) return;
    const std::string s = field.get<std::string>();
    for (size_t i : order) {
      const std::string& p = input_files[i];
      if (s.compare(0, p.size(), p) == 0 &&
          (s.size() == p.size() || s[p.size()] == ':' || s[p.size()] == '#')) {
        field = absl::StrCat("input:", i, s.substr(p.size()));
        return;
      }
    }
  };
  for (const char* list : {"documents", "skipped"}) {
    if (!c.contains(list) || !c[list].is_array()) continue;
    for (json& e : c[list]) {
      if (e.contains("source")) rename(e["source"]);
      if (e.contains("id")) rename(e["id"]);
    }
  }
  if (c.contains("skipped") && c["skipped"].is_array()) {
    std::sort(c["skipped"].begin(), c["skipped"].end(),
              [](const json& a, const json& b) { return a.dump() < b.dump(); });
  }
  return c;
}

absl::StatusOr<watermark::Config> WatermarkConfig(const std::string& scheme,
                                                  const std::string& extra, int32_t vocab_size) {
  watermark::Config base;
  base.vocab_size = vocab_size;
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Config c,
                             watermark::ParseConfig(absl::StrCat("scheme=", scheme), base));
  TRACEMARK_ASSIGN_OR_RETURN(c, watermark::ParseConfig(extra, c));
  TRACEMARK_RETURN_IF_ERROR(c.Validate());
  return c;
}

absl::StatusOr<std::unique_ptr<canary::CanaryProcessor>> LoadCanaryProcessor(
    const std::string& path, const tokenizer::Tokenizer& tok,
    std::optional<canary::Lexicon>* holder) {
  const canary::Lexicon* lexicon = &canary::Lexicon::BuiltIn();
  if (!path.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(canary::Lexicon lex, canary::Lexicon::ReadFile(path));
    lexicon = &holder->emplace(std::move(lex));
  }
  return canary::CanaryProcessor::Create(lexicon, tok);
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> ReadAccountIds(const std::string& path,
                                                             const std::string& flag) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", path, "'"));
  absl::flat_hash_set<uint64_t> ids;
  std::string line;
  for (uint64_t no = 1; std::getline(in, line); ++no) {
    absl::string_view v = line;
    if (size_t hash = v.find('#'); hash != absl::string_view::npos) v = v.substr(0, hash);
    v = absl::StripAsciiWhitespace(v);
    if (v.empty()) continue;
    uint64_t id = 0;
    if (!absl::SimpleAtoi(v, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", no, ": '", v, "' is not an account id"));
    }
    ids.insert(id);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(flag, ": error reading '", path, "'"));
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no account id"));
  return ids;
}

absl::StatusOr<std::vector<uint32_t>> ParseEpochs(const std::string& spec) {
  std::vector<uint32_t> out;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> range =
        absl::StrSplit(part, absl::MaxSplits('-', 1));
    uint32_t lo = 0, hi = 0;
    if (!absl::SimpleAtoi(range.first, &lo) ||
        !absl::SimpleAtoi(range.second.empty() ? range.first : range.second, &hi) || hi < lo ||
        hi - lo > 10000) {
      return absl::InvalidArgumentError(absl::StrCat("bad epoch list '", spec, "'"));
    }
    for (uint32_t e = lo; e <= hi; ++e) out.push_back(e);
  }
  if (out.empty()) return absl::InvalidArgumentError("empty epoch list");
  return out;
}

json PValueJson(stats::PValue p) {
  if (p.log10() > -300.0) return p.value();
  return p.ToString(3);
}

std::string PValueText(const json& p) {
  if (p.is_string()) return p.get<std::string>();
  if (!p.is_number()) return "?";
  return absl::StrFormat("%.3g", p.get<double>());
}

void AddLog10PValues(json* j) {
  if (j->is_array()) {
    for (json& e : *j) AddLog10PValues(&e);
    return;
  }
  if (!j->is_object()) return;
  std::vector<std::pair<std::string, double>> add;
  for (auto& [key, value] : j->items()) {
    if (value.is_structured()) {
      AddLog10PValues(&value);
    } else if (absl::EndsWith(key, "p_value") && !absl::StartsWith(key, "log10_") &&
               !j->contains("log10_" + key)) {  // one the caller wrote from the PValue is exact
      if (const std::optional<double> l = PValueLog10(value)) add.emplace_back("log10_" + key, *l);
    }
  }
  for (auto& [key, l] : add) (*j)[key] = l;
}

std::optional<double> PValueLog10(const json& p) {
  if (p.is_number()) {
    const double v = p.get<double>();
    if (!(v > 0)) return std::nullopt;
    return std::log10(v);
  }
  if (!p.is_string()) return std::nullopt;
  const std::string s = p.get<std::string>();
  const size_t e = s.find_first_of("eE");
  double mantissa = 1;
  int exponent = 0;
  if (e == std::string::npos || !absl::SimpleAtod(s.substr(0, e), &mantissa) ||
      !absl::SimpleAtoi(s.substr(e + 1), &exponent) || !(mantissa > 0)) {
    return std::nullopt;
  }
  return std::log10(mantissa) + exponent;
}

}  // namespace tracemark::detect
