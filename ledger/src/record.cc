#include "tracemark/ledger/record.h"

#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "tracemark/base/status_macros.h"
#include "varint.h"

namespace tracemark::ledger {
namespace {

using internal::GetVarint;
using internal::PutVarint;

constexpr size_t kMaxString = 64 * 1024;

void PutString(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

void PutIds(const std::vector<int32_t>& ids, std::string* out) {
  PutVarint(ids.size(), out);
  for (const int32_t id : ids) PutVarint(static_cast<uint64_t>(id), out);
}

// Reads the fields of one record in order; the first failure names its field.
class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}

  absl::Status Integer(std::string_view field, uint64_t max, uint64_t* v) {
    if (!GetVarint(&in_, v)) return Error(field, "truncated or overlong varint");
    if (*v > max) return Error(field, absl::StrCat("value ", *v, " is over ", max));
    return absl::OkStatus();
  }

  absl::Status String(std::string_view field, std::string* s) {
    uint64_t n = 0;
    if (absl::Status st = Integer(field, kMaxString, &n); !st.ok()) return st;
    if (n > in_.size()) return Error(field, "truncated");
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return absl::OkStatus();
  }

  absl::Status Ids(std::string_view field, std::vector<int32_t>* ids) {
    uint64_t n = 0;
    // Every id takes at least one byte, so a count over the bytes left is a damaged record.
    if (absl::Status st = Integer(field, in_.size(), &n); !st.ok()) return st;
    ids->resize(n);
    for (int32_t& id : *ids) {
      uint64_t v = 0;
      if (absl::Status st = Integer(field, std::numeric_limits<int32_t>::max(), &v); !st.ok()) {
        return st;
      }
      id = static_cast<int32_t>(v);
    }
    return absl::OkStatus();
  }

  bool done() const { return in_.empty(); }

 private:
  static absl::Status Error(std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger record: ", absl::string_view(field.data(), field.size()), ": ",
                     absl::string_view(what.data(), what.size())));
  }
  std::string_view in_;
};

absl::Status DecodeFields(FieldReader& r, Record* out) {
  uint64_t has_account = 0, v = 0;
  TRACEMARK_RETURN_IF_ERROR(r.Integer("account flag", 1, &has_account));
  if (has_account) {
    TRACEMARK_RETURN_IF_ERROR(r.Integer("account", kMaxAccount, &v));
    out->account = v;
  }
  TRACEMARK_RETURN_IF_ERROR(r.Integer("epoch", std::numeric_limits<uint32_t>::max(), &v));
  out->epoch = static_cast<uint32_t>(v);
  TRACEMARK_RETURN_IF_ERROR(r.String("epoch key id", &out->epoch_key_id));
  TRACEMARK_RETURN_IF_ERROR(r.Integer("time", std::numeric_limits<int64_t>::max(), &v));
  out->time_us = static_cast<int64_t>(v);
  TRACEMARK_RETURN_IF_ERROR(r.String("tokenizer", &out->tokenizer));
  TRACEMARK_RETURN_IF_ERROR(r.Ids("prompt ids", &out->prompt_ids));
  TRACEMARK_RETURN_IF_ERROR(r.Ids("response ids", &out->response_ids));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRecord(const Record& record) {
  for (const auto* ids : {&record.prompt_ids, &record.response_ids}) {
    for (const int32_t id : *ids) {
      if (id < 0) return absl::InvalidArgumentError(absl::StrCat("ledger record: token id ", id));
    }
  }
  if (record.epoch_key_id.size() > kMaxString || record.tokenizer.size() > kMaxString) {
    return absl::InvalidArgumentError("ledger record: a string over 64 KiB");
  }
  if (record.time_us < 0) return absl::InvalidArgumentError("ledger record: a time before 1970");
  if (record.account.has_value() && *record.account > kMaxAccount) {
    return absl::InvalidArgumentError("ledger record: account 2^64 - 1 is reserved");
  }
  return absl::OkStatus();
}

std::string EncodeRecord(const Record& record) {
  std::string out;
  out.reserve(32 + record.epoch_key_id.size() + record.tokenizer.size() +
              3 * (record.prompt_ids.size() + record.response_ids.size()));
  out.push_back(static_cast<char>(kRecordVersion));
  PutVarint(record.account.has_value() ? 1 : 0, &out);
  if (record.account.has_value()) PutVarint(*record.account, &out);
  PutVarint(record.epoch, &out);
  PutString(record.epoch_key_id, &out);
  PutVarint(static_cast<uint64_t>(record.time_us), &out);
  PutString(record.tokenizer, &out);
  PutIds(record.prompt_ids, &out);
  PutIds(record.response_ids, &out);
  return out;
}

absl::StatusOr<Record> DecodeRecord(std::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("ledger record: empty");
  if (static_cast<uint8_t>(bytes[0]) != kRecordVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger record: unknown version ", static_cast<int>(bytes[0] & 0xff)));
  }
  FieldReader r(bytes.substr(1));
  Record out;
  TRACEMARK_RETURN_IF_ERROR(DecodeFields(r, &out));
  if (!r.done()) return absl::InvalidArgumentError("ledger record: trailing bytes");
  return out;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tracemark::ledger
