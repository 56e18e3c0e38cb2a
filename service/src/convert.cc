#include "convert.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/service/scan_parameters.h"

namespace tracemark::service {
namespace {

using nlohmann::json;

// A p-value as the result JSON holds it: a number, or a decimal string below double's range.
v1::PValue PValueOf(const json& p) {
  v1::PValue out;
  if (p.is_number()) {
    const double v = p.get<double>();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    out.set_text(buf);
    out.set_log10(detect::PValueLog10(p).value_or(-400));
  } else if (p.is_string()) {
    out.set_text(p.get<std::string>());
    if (std::optional<double> l = detect::PValueLog10(p)) out.set_log10(*l);
  } else {
    out.set_text("1");
  }
  return out;
}

SummaryCache::Entry Summarize(const std::string& result) {
  SummaryCache::Entry e;
  v1::ScanSummary& s = e.summary;
  const json r = json::parse(result, nullptr, false);
  if (!r.is_object()) return e;
  if (r.contains("provider")) {
    *s.mutable_provider_p_value() = PValueOf(r["provider"].value("p_value", json()));
    s.set_provider_tuples(r["provider"].value("tuples_scored", uint64_t{0}));
  }
  if (r.contains("totals")) {
    const json& t = r["totals"];
    s.set_documents(t.value("documents", uint64_t{0}));
    s.set_documents_flagged(t.value("documents_flagged", uint64_t{0}));
    s.set_documents_attributed(t.value("documents_attributed", uint64_t{0}));
    s.set_skipped(t.value("skipped", uint64_t{0}));
    e.progress.set_documents(t.value("documents", uint64_t{0}));
    e.progress.set_tokens(t.value("tokens", uint64_t{0}));
    e.progress.set_bytes_read(t.value("bytes", uint64_t{0}));
    e.progress.set_total_bytes(t.value("bytes", uint64_t{0}));
    e.progress.set_seconds(t.value("seconds", 0.0));
  }
  if (r.contains("accounts") && r["accounts"].is_array()) {
    for (const json& a : r["accounts"]) {
      if (s.accounts_size() == 20) break;
      v1::AccountFinding* f = s.add_accounts();
      f->set_account(a.value("account", uint64_t{0}));
      f->set_epoch(a.value("epoch", uint32_t{0}));
      f->set_documents(a.value("documents", uint64_t{0}));
      f->set_attributed(a.value("attributed", uint64_t{0}));
      *f->mutable_combined_p_value() = PValueOf(a.value("combined_p_value", json()));
    }
  }
  if (r.contains("canary")) {
    const json& at = r["canary"].value("attribution", json::object());
    if (at.value("accounts_tried", 0) > 0 && at.contains("top") && !at["top"].empty()) {
      *s.mutable_canary_p_value() = PValueOf(at.value("corrected_p_value", json()));
      s.set_canary_best_account(at["top"][0].value("account", uint64_t{0}));
    }
    if (r["canary"].contains("cohort")) {
      *s.mutable_cohort_p_value() = PValueOf(r["canary"]["cohort"].value("p_value", json()));
    }
  }
  if (r.contains("white_box")) {
    *s.mutable_white_box_p_value() = PValueOf(r["white_box"].value("p_value", json()));
  }
  return e;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

absl::StatusOr<detect::ScanJobSpec> SpecOf(const JobRecord& job) {
  const json spec = json::parse(job.spec, nullptr, false);
  if (!spec.is_object() || !spec.contains("options")) {
    return absl::DataLossError(absl::StrCat("scan ", job.id, " has an unreadable spec"));
  }
  return detect::ScanJobSpec::FromOptions(spec["options"]);
}

SummaryCache::Entry SummaryCache::Get(const JobRecord& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = index_.find(job.id);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  Entry s = Summarize(job.result);
  std::lock_guard<std::mutex> lock(mu_);
  if (!index_.contains(job.id)) {
    lru_.emplace_front(job.id, s);
    index_[job.id] = lru_.begin();
    if (lru_.size() > 1000) {
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }
  return s;
}

void SetProgress(const detect::ScanProgress& p, v1::Progress* out) {
  out->set_documents(p.documents);
  out->set_tokens(p.tokens);
  out->set_bytes_read(p.bytes_read);
  out->set_total_bytes(p.total_bytes);
  out->set_seconds(p.seconds);
}

v1::Scan ToProto(const JobRecord& job, SummaryCache* summaries) {
  v1::Scan s;
  s.set_id(job.id);
  s.set_label(job.label);
  s.set_owner(job.owner);
  s.set_state(static_cast<v1::ScanState>(job.state));
  s.set_request_id(job.request_id);
  s.set_created_unix_ms(job.created_ms);
  s.set_started_unix_ms(job.started_ms);
  s.set_finished_unix_ms(job.finished_ms);
  s.set_attempts(job.attempts);
  s.set_cancel_requested(job.cancel_requested);
  s.set_error(job.error);
  const json spec = json::parse(job.spec, nullptr, false);
  if (spec.is_object()) {
    absl::StatusOr<detect::ScanJobSpec> o =
        detect::ScanJobSpec::FromOptions(spec.value("options", json::object()));
    if (o.ok()) {
      absl::StatusOr<v1::ScanParameters> p = ToScanParameters(*o);
      if (p.ok()) *s.mutable_parameters() = *std::move(p);
    }
    for (const json& f : spec.value("files", json::array())) {
      v1::InputFile* in = s.add_inputs();
      in->set_name(f.value("name", ""));
      in->set_bytes(f.value("bytes", uint64_t{0}));
      in->set_sha256(f.value("sha256", ""));
      in->set_seen_in(f.value("seen_in", false));
    }
  }
  if (job.state == JobState::kSucceeded) {
    SummaryCache::Entry e = summaries->Get(job);
    *s.mutable_summary() = std::move(e.summary);
    *s.mutable_progress() = std::move(e.progress);
    s.set_has_report(!job.report.empty());
  }
  return s;
}

absl::StatusOr<KeysInfo> DescribeKeys(const watermark::Key& master,
                                      const std::vector<uint32_t>& epochs,
                                      const evidence::EnvelopeSigner* signer) {
  KeysInfo k;
  k.master_key_id = master.Id();
  k.master_key_commitment = master.Commitment();
  for (uint32_t e : epochs) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key, watermark::DeriveEpochKey(master, e));
    k.epochs.emplace_back(e, epoch_key.Id());
  }
  if (signer != nullptr) {
    k.signing_key_id = signer->key_id();
    k.signing_public_key = signer->public_key_hex();
  }
  return k;
}

v1::Keys ToProto(const KeysInfo& k) {
  v1::Keys out;
  out.set_master_key_id(k.master_key_id);
  out.set_master_key_commitment(k.master_key_commitment);
  for (const auto& [epoch, id] : k.epochs) {
    v1::EpochKey* e = out.add_epochs();
    e->set_epoch(epoch);
    e->set_key_id(id);
  }
  out.set_signing_key_id(k.signing_key_id);
  out.set_signing_public_key(k.signing_public_key);
  return out;
}

}  // namespace tracemark::service
