// The C ABI (tracemark/tracemark.h): a thin shell over the C++ library; every decode step goes
// through the serving chain (engine/serving_chain.h). Each exported function
// checks its handles, calls the C++ API inside Guard() (which turns every exception into a status
// code) and copies results into plain C structs.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tracemark/base/data_dir.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/engine/ledger_stage.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/stats/pvalue.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/tracemark.h"
#include "tracemark/watermark/account_keys.h"
#include "tracemark/watermark/config.h"
#include "tracemark/watermark/detector.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/watermarker.h"

#ifndef TRACEMARK_VERSION_STRING
#define TRACEMARK_VERSION_STRING "unknown"
#endif

using tracemark::watermark::AccountKeys;
using tracemark::watermark::Candidate;
using tracemark::watermark::Config;
using tracemark::watermark::Detector;
using tracemark::watermark::Key;
using tracemark::watermark::Layer;
using tracemark::watermark::TextStatistics;
using tracemark::watermark::Watermarker;

// The handles. Accounts and statistics remember the epoch key and configuration they belong to
// (AccountKeys::layout_id, TextStatistics::layout_id); the C++ library refuses to mix them.
struct tracemark_key_t {
  Key key;
};
struct tracemark_config_t {
  Config config;
};
// The chain's stages, owned here; the chain itself only points at them.
struct tracemark_watermarker_t {
  std::unique_ptr<Watermarker> rep;
  std::unique_ptr<tracemark::tokenizer::Tokenizer> tokenizer;  // canaries only
  std::unique_ptr<tracemark::canary::CanaryProcessor> canary;  // null: no canaries
  tracemark::engine::ServingChain chain;
  std::unique_ptr<tracemark::engine::LedgerStage> ledger;  // null: no ledger (the writer not owned)
};
struct tracemark_ledger_t {
  std::unique_ptr<tracemark::ledger::Writer> writer;
};
struct tracemark_account_t {
  AccountKeys keys;
};
struct tracemark_sequence_t {
  tracemark::engine::Response state;
};
struct tracemark_detector_t {
  std::unique_ptr<Detector> rep;
};
struct tracemark_stats_t {
  TextStatistics stats;
};

// The codes are absl::StatusCode's values.
static_assert(TRACEMARK_OK == static_cast<int>(absl::StatusCode::kOk));
static_assert(TRACEMARK_CANCELLED == static_cast<int>(absl::StatusCode::kCancelled));
static_assert(TRACEMARK_UNKNOWN == static_cast<int>(absl::StatusCode::kUnknown));
static_assert(TRACEMARK_INVALID_ARGUMENT == static_cast<int>(absl::StatusCode::kInvalidArgument));
static_assert(TRACEMARK_DEADLINE_EXCEEDED == static_cast<int>(absl::StatusCode::kDeadlineExceeded));
static_assert(TRACEMARK_NOT_FOUND == static_cast<int>(absl::StatusCode::kNotFound));
static_assert(TRACEMARK_ALREADY_EXISTS == static_cast<int>(absl::StatusCode::kAlreadyExists));
static_assert(TRACEMARK_PERMISSION_DENIED == static_cast<int>(absl::StatusCode::kPermissionDenied));
static_assert(TRACEMARK_RESOURCE_EXHAUSTED ==
              static_cast<int>(absl::StatusCode::kResourceExhausted));
static_assert(TRACEMARK_FAILED_PRECONDITION ==
              static_cast<int>(absl::StatusCode::kFailedPrecondition));
static_assert(TRACEMARK_ABORTED == static_cast<int>(absl::StatusCode::kAborted));
static_assert(TRACEMARK_OUT_OF_RANGE == static_cast<int>(absl::StatusCode::kOutOfRange));
static_assert(TRACEMARK_UNIMPLEMENTED == static_cast<int>(absl::StatusCode::kUnimplemented));
static_assert(TRACEMARK_INTERNAL == static_cast<int>(absl::StatusCode::kInternal));
static_assert(TRACEMARK_UNAVAILABLE == static_cast<int>(absl::StatusCode::kUnavailable));
static_assert(TRACEMARK_DATA_LOSS == static_cast<int>(absl::StatusCode::kDataLoss));
static_assert(TRACEMARK_UNAUTHENTICATED == static_cast<int>(absl::StatusCode::kUnauthenticated));

static_assert(TRACEMARK_LAYER_NONE == static_cast<int>(Layer::kNone));
static_assert(TRACEMARK_LAYER_PROVIDER == static_cast<int>(Layer::kProvider));
static_assert(TRACEMARK_LAYER_ACCOUNT_PAYLOAD == static_cast<int>(Layer::kAccountPayload));
static_assert(TRACEMARK_LAYER_ACCOUNT_FINGERPRINT == static_cast<int>(Layer::kAccountFingerprint));

// Candidate lists are handed to the C++ API in place, without a copy.
static_assert(std::is_standard_layout_v<tracemark_candidate> &&
              std::is_standard_layout_v<Candidate>);
static_assert(sizeof(tracemark_candidate) == sizeof(Candidate) &&
              alignof(tracemark_candidate) == alignof(Candidate));
static_assert(offsetof(tracemark_candidate, id) == offsetof(Candidate, id) &&
              offsetof(tracemark_candidate, logit) == offsetof(Candidate, logit));
static_assert(std::is_same_v<decltype(tracemark_candidate::id), decltype(Candidate::id)> &&
              std::is_same_v<decltype(tracemark_candidate::logit), decltype(Candidate::logit)>);

namespace {

// Stores `message` in *errptr (leveldb's convention: an earlier message there is freed). Never
// throws; when even the copy cannot be allocated, *errptr is left NULL.
void SaveError(char** errptr, absl::string_view message) noexcept {
  if (errptr == nullptr) return;
  std::free(*errptr);
  *errptr = static_cast<char*>(std::malloc(message.size() + 1));
  if (*errptr == nullptr) return;
  std::memcpy(*errptr, message.data(), message.size());
  (*errptr)[message.size()] = '\0';
}

tracemark_status Fail(char** errptr, tracemark_status code, absl::string_view message) noexcept {
  SaveError(errptr, message);
  return code;
}

// Runs `body` (returning absl::Status) and maps its status, or any exception it throws, to a code
// and message. Nothing propagates past here.
template <typename F>
tracemark_status Guard(char** errptr, F&& body) noexcept {
  try {
    const absl::Status s = body();
    if (s.ok()) return TRACEMARK_OK;
    SaveError(errptr, s.message());
    return static_cast<tracemark_status>(s.code());
  } catch (const std::bad_alloc&) {
    return Fail(errptr, TRACEMARK_RESOURCE_EXHAUSTED, "out of memory");
  } catch (const std::exception& e) {
    return Fail(errptr, TRACEMARK_INTERNAL, e.what());
  } catch (...) {
    return Fail(errptr, TRACEMARK_INTERNAL, "unknown C++ exception");
  }
}

absl::Status Null(const char* function, const char* argument) {
  return absl::InvalidArgumentError(absl::StrCat(function, ": ", argument, " is NULL"));
}

// A span over caller memory; a NULL pointer is allowed only for an empty range.
template <typename T>
absl::StatusOr<absl::Span<T>> CheckedSpan(const char* function, const char* argument, T* data,
                                          size_t n) {
  if (data == nullptr && n > 0) return Null(function, argument);
  return absl::Span<T>(data, n);
}

// Copies a hex string of exactly size - 1 characters and a NUL into out[size].
void CopyHex(const std::string& hex, char* out, size_t size) {
  const size_t n = hex.size() < size - 1 ? hex.size() : size - 1;
  std::memcpy(out, hex.data(), n);
  out[n] = '\0';
}

void ToC(const tracemark::engine::Step& r, tracemark_step_result* out) {
  out->layer = static_cast<int32_t>(r.layer);
  out->token_chosen = r.token_chosen ? 1 : 0;
  out->token = r.token;
}

// Writes a new handle to *out (NULL first, so that it is NULL on every failure).
template <typename Handle>
absl::Status CheckOut(const char* function, Handle** out) {
  if (out == nullptr) return Null(function, "out");
  *out = nullptr;
  return absl::OkStatus();
}

}  // namespace

extern "C" {

const char* tracemark_status_name(tracemark_status code) {
  switch (code) {
    case TRACEMARK_OK:
      return "OK";
    case TRACEMARK_CANCELLED:
      return "CANCELLED";
    case TRACEMARK_UNKNOWN:
      return "UNKNOWN";
    case TRACEMARK_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case TRACEMARK_DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case TRACEMARK_NOT_FOUND:
      return "NOT_FOUND";
    case TRACEMARK_ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case TRACEMARK_PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case TRACEMARK_RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case TRACEMARK_FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case TRACEMARK_ABORTED:
      return "ABORTED";
    case TRACEMARK_OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case TRACEMARK_UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case TRACEMARK_INTERNAL:
      return "INTERNAL";
    case TRACEMARK_UNAVAILABLE:
      return "UNAVAILABLE";
    case TRACEMARK_DATA_LOSS:
      return "DATA_LOSS";
    case TRACEMARK_UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "";
  }
}

const char* tracemark_version(void) { return TRACEMARK_VERSION_STRING; }

void tracemark_free(void* ptr) { std::free(ptr); }

// ---- Keys ----

tracemark_status tracemark_key_read_file(const char* path, tracemark_key_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_key_read_file", out));
    if (path == nullptr) return Null("tracemark_key_read_file", "path");
    TRACEMARK_ASSIGN_OR_RETURN(Key key, tracemark::watermark::ReadMasterKeyFile(path));
    *out = new tracemark_key_t{std::move(key)};
    return absl::OkStatus();
  });
}

tracemark_status tracemark_key_from_env(const char* variable, tracemark_key_t** out,
                                        char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_key_from_env", out));
    if (variable == nullptr) return Null("tracemark_key_from_env", "variable");
    TRACEMARK_ASSIGN_OR_RETURN(Key key, tracemark::watermark::ReadMasterKeyFromEnv(variable));
    *out = new tracemark_key_t{std::move(key)};
    return absl::OkStatus();
  });
}

tracemark_status tracemark_key_generate_file(const char* path, char* id_out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (path == nullptr) return Null("tracemark_key_generate_file", "path");
    TRACEMARK_ASSIGN_OR_RETURN(std::string id, tracemark::watermark::WriteNewMasterKeyFile(path));
    if (id_out != nullptr) CopyHex(id, id_out, TRACEMARK_KEY_ID_SIZE);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_key_derive_epoch(const tracemark_key_t* master, uint32_t epoch,
                                            tracemark_key_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_key_derive_epoch", out));
    if (master == nullptr) return Null("tracemark_key_derive_epoch", "master");
    TRACEMARK_ASSIGN_OR_RETURN(Key key, tracemark::watermark::DeriveEpochKey(master->key, epoch));
    *out = new tracemark_key_t{std::move(key)};
    return absl::OkStatus();
  });
}

tracemark_status tracemark_key_id(const tracemark_key_t* key, char* out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (key == nullptr) return Null("tracemark_key_id", "key");
    if (out == nullptr) return Null("tracemark_key_id", "out");
    CopyHex(key->key.Id(), out, TRACEMARK_KEY_ID_SIZE);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_key_commitment(const tracemark_key_t* key, char* out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (key == nullptr) return Null("tracemark_key_commitment", "key");
    if (out == nullptr) return Null("tracemark_key_commitment", "out");
    CopyHex(key->key.Commitment(), out, TRACEMARK_COMMITMENT_SIZE);
    return absl::OkStatus();
  });
}

void tracemark_key_destroy(tracemark_key_t* key) { delete key; }

// ---- Configuration ----

tracemark_status tracemark_config_create(const char* spec, int32_t vocab_size,
                                         tracemark_config_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_config_create", out));
    if (spec == nullptr) return Null("tracemark_config_create", "spec");
    Config base;
    base.vocab_size = vocab_size;
    TRACEMARK_ASSIGN_OR_RETURN(Config config, tracemark::watermark::ParseConfig(spec, base));
    TRACEMARK_RETURN_IF_ERROR(config.Validate());
    *out = new tracemark_config_t{std::move(config)};
    return absl::OkStatus();
  });
}

size_t tracemark_config_describe(const tracemark_config_t* config, char* buf, size_t len) {
  std::string text;
  if (config != nullptr) {
    try {
      text = config->config.Describe();
    } catch (...) {
      text.clear();
    }
  }
  if (buf != nullptr && len > 0) {
    const size_t n = text.size() < len - 1 ? text.size() : len - 1;
    std::memcpy(buf, text.data(), n);
    buf[n] = '\0';
  }
  return text.size();
}

int32_t tracemark_config_context_width(const tracemark_config_t* config) {
  return config == nullptr ? 0 : static_cast<int32_t>(config->config.context_width);
}

int32_t tracemark_config_vocab_size(const tracemark_config_t* config) {
  return config == nullptr ? 0 : config->config.vocab_size;
}

void tracemark_config_destroy(tracemark_config_t* config) { delete config; }

// ---- Watermarking ----

namespace {

// A watermarker handle over `wm` and, when `tokenizer` is set, canary phrasings over the built-in
// lexicon with that tokenizer.
absl::StatusOr<tracemark_watermarker_t*> NewWatermarker(
    std::unique_ptr<Watermarker> wm, std::unique_ptr<tracemark::tokenizer::Tokenizer> tokenizer) {
  std::unique_ptr<tracemark::canary::CanaryProcessor> canary;
  if (tokenizer != nullptr) {
    TRACEMARK_ASSIGN_OR_RETURN(canary, tracemark::canary::CanaryProcessor::Create(
                                           &tracemark::canary::Lexicon::BuiltIn(), *tokenizer));
  }
  TRACEMARK_ASSIGN_OR_RETURN(tracemark::engine::ServingChain chain,
                             tracemark::engine::ServingChain::Create(wm.get(), canary.get()));
  return new tracemark_watermarker_t{std::move(wm), std::move(tokenizer), std::move(canary), chain,
                                     nullptr};
}

}  // namespace

tracemark_status tracemark_watermarker_create(const tracemark_key_t* epoch_key,
                                              const tracemark_config_t* config,
                                              tracemark_watermarker_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_watermarker_create", out));
    if (epoch_key == nullptr) return Null("tracemark_watermarker_create", "epoch_key");
    if (config == nullptr) return Null("tracemark_watermarker_create", "config");
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Watermarker> wm,
                               Watermarker::Create(epoch_key->key, config->config));
    TRACEMARK_ASSIGN_OR_RETURN(*out, NewWatermarker(std::move(wm), nullptr));
    return absl::OkStatus();
  });
}

tracemark_status tracemark_watermarker_create_with_canary(
    const tracemark_key_t* epoch_key, const tracemark_config_t* config, const char* tokenizer,
    const char* data_dir, tracemark_watermarker_t** out, char** errptr) {
  static constexpr char kFn[] = "tracemark_watermarker_create_with_canary";
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut(kFn, out));
    if (epoch_key == nullptr) return Null(kFn, "epoch_key");
    if (config == nullptr) return Null(kFn, "config");
    if (tokenizer == nullptr) return Null(kFn, "tokenizer");
    TRACEMARK_ASSIGN_OR_RETURN(
        std::unique_ptr<tracemark::tokenizer::Tokenizer> tok,
        tracemark::tokenizer::LoadTokenizer(
            tokenizer, tracemark::base::DataDir(data_dir == nullptr ? "" : data_dir)));
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Watermarker> wm,
                               Watermarker::Create(epoch_key->key, config->config));
    TRACEMARK_ASSIGN_OR_RETURN(*out, NewWatermarker(std::move(wm), std::move(tok)));
    return absl::OkStatus();
  });
}

int tracemark_watermarker_has_canary(const tracemark_watermarker_t* wm) {
  return wm != nullptr && wm->canary != nullptr ? 1 : 0;
}

size_t tracemark_watermarker_history_width(const tracemark_watermarker_t* wm) {
  return wm == nullptr ? 0 : wm->chain.history_width();
}

void tracemark_watermarker_destroy(tracemark_watermarker_t* wm) { delete wm; }

tracemark_status tracemark_watermarker_account(const tracemark_watermarker_t* wm, uint64_t account,
                                               tracemark_account_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_watermarker_account", out));
    if (wm == nullptr) return Null("tracemark_watermarker_account", "wm");
    TRACEMARK_ASSIGN_OR_RETURN(AccountKeys keys, wm->rep->ForAccount(account));
    *out = new tracemark_account_t{std::move(keys)};
    return absl::OkStatus();
  });
}

tracemark_status tracemark_account_key_id(const tracemark_account_t* account, char* out,
                                          char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (account == nullptr) return Null("tracemark_account_key_id", "account");
    if (out == nullptr) return Null("tracemark_account_key_id", "out");
    CopyHex(account->keys.key_id(), out, TRACEMARK_KEY_ID_SIZE);
    return absl::OkStatus();
  });
}

void tracemark_account_destroy(tracemark_account_t* account) { delete account; }

tracemark_sequence_t* tracemark_sequence_create(void) {
  return new (std::nothrow) tracemark_sequence_t;
}

void tracemark_sequence_reset(tracemark_sequence_t* seq) {
  if (seq != nullptr) seq->state.Reset();
}

void tracemark_sequence_destroy(tracemark_sequence_t* seq) { delete seq; }

// ---- The serving ledger ----

tracemark_status tracemark_ledger_open(const char* directory, tracemark_ledger_t** out,
                                       char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_ledger_open", out));
    if (directory == nullptr) return Null("tracemark_ledger_open", "directory");
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tracemark::ledger::Writer> writer,
                               tracemark::ledger::Writer::Open(directory));
    *out = new tracemark_ledger_t{std::move(writer)};
    return absl::OkStatus();
  });
}

uint64_t tracemark_ledger_records(const tracemark_ledger_t* ledger) {
  return ledger == nullptr ? 0 : ledger->writer->stats().records;
}

tracemark_status tracemark_ledger_close(tracemark_ledger_t* ledger, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (ledger == nullptr) return Null("tracemark_ledger_close", "ledger");
    return ledger->writer->Close();
  });
}

void tracemark_ledger_destroy(tracemark_ledger_t* ledger) { delete ledger; }

tracemark_status tracemark_watermarker_set_ledger(tracemark_watermarker_t* wm,
                                                  tracemark_ledger_t* ledger, uint32_t epoch,
                                                  const char* tokenizer, char** errptr) {
  static constexpr char kFn[] = "tracemark_watermarker_set_ledger";
  return Guard(errptr, [&]() -> absl::Status {
    if (wm == nullptr) return Null(kFn, "wm");
    std::unique_ptr<tracemark::engine::LedgerStage> stage;
    if (ledger != nullptr) {
      if (tokenizer == nullptr) return Null(kFn, "tokenizer");
      stage = std::make_unique<tracemark::engine::LedgerStage>(
          tracemark::engine::LedgerStage{ledger->writer.get(), epoch, tokenizer});
    }
    TRACEMARK_ASSIGN_OR_RETURN(
        tracemark::engine::ServingChain chain,
        tracemark::engine::ServingChain::Create(wm->rep.get(), wm->canary.get(), stage.get()));
    wm->chain = chain;
    wm->ledger = std::move(stage);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_end_response(const tracemark_watermarker_t* wm,
                                        const tracemark_account_t* account, const int32_t* prompt,
                                        size_t prompt_len, const int32_t* response,
                                        size_t response_len, tracemark_sequence_t* seq,
                                        char** errptr) {
  static constexpr char kFn[] = "tracemark_end_response";
  return Guard(errptr, [&]() -> absl::Status {
    if (wm == nullptr) return Null(kFn, "wm");
    TRACEMARK_ASSIGN_OR_RETURN(auto prompt_ids, CheckedSpan(kFn, "prompt", prompt, prompt_len));
    TRACEMARK_ASSIGN_OR_RETURN(auto response_ids,
                               CheckedSpan(kFn, "response", response, response_len));
    return wm->chain.EndResponse(account == nullptr ? nullptr : &account->keys, prompt_ids,
                                 response_ids, seq == nullptr ? nullptr : &seq->state);
  });
}

tracemark_status tracemark_process_sparse(const tracemark_watermarker_t* wm,
                                          const tracemark_account_t* account,
                                          const int32_t* context, size_t context_len,
                                          tracemark_candidate* candidates, size_t n,
                                          tracemark_sequence_t* seq, tracemark_step_result* out,
                                          char** errptr) {
  static constexpr char kFn[] = "tracemark_process_sparse";
  return Guard(errptr, [&]() -> absl::Status {
    if (wm == nullptr) return Null(kFn, "wm");
    if (out == nullptr) return Null(kFn, "out");
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<const int32_t> ctx,
                               CheckedSpan(kFn, "context", context, context_len));
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<tracemark_candidate> cands,
                               CheckedSpan(kFn, "candidates", candidates, n));
    // Same layout (static_asserts above): the C++ API works on the caller's array in place.
    const absl::Span<Candidate> cpp(reinterpret_cast<Candidate*>(cands.data()), cands.size());
    TRACEMARK_ASSIGN_OR_RETURN(
        tracemark::engine::Step r,
        wm->chain.ProcessSparse(account == nullptr ? nullptr : &account->keys, ctx, cpp,
                                seq == nullptr ? nullptr : &seq->state));
    ToC(r, out);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_process_dense(const tracemark_watermarker_t* wm,
                                         const tracemark_account_t* account, const int32_t* context,
                                         size_t context_len, float* logits, size_t vocab,
                                         tracemark_sequence_t* seq, tracemark_step_result* out,
                                         char** errptr) {
  static constexpr char kFn[] = "tracemark_process_dense";
  return Guard(errptr, [&]() -> absl::Status {
    if (wm == nullptr) return Null(kFn, "wm");
    if (out == nullptr) return Null(kFn, "out");
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<const int32_t> ctx,
                               CheckedSpan(kFn, "context", context, context_len));
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<float> row, CheckedSpan(kFn, "logits", logits, vocab));
    TRACEMARK_ASSIGN_OR_RETURN(
        tracemark::engine::Step r,
        wm->chain.ProcessDense(account == nullptr ? nullptr : &account->keys, ctx, row,
                               seq == nullptr ? nullptr : &seq->state));
    ToC(r, out);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_process_batch(const tracemark_watermarker_t* wm,
                                         const tracemark_account_t* const* accounts, size_t batch,
                                         const int32_t* contexts, size_t context_width,
                                         float* logits, size_t vocab,
                                         tracemark_sequence_t* const* states,
                                         tracemark_step_result* results, char** errptr) {
  static constexpr char kFn[] = "tracemark_process_batch";
  return Guard(errptr, [&]() -> absl::Status {
    if (wm == nullptr) return Null(kFn, "wm");
    const Config& config = wm->rep->config();
    if (context_width < wm->chain.history_width() ||
        vocab != static_cast<size_t>(config.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kFn, ": context_width ", context_width, " must be at least ", wm->chain.history_width(),
          " (tracemark_watermarker_history_width) and vocab ", vocab,
          " must equal the configuration's ", config.vocab_size));
    }
    if (batch > 0 && (batch > SIZE_MAX / vocab || batch > SIZE_MAX / (context_width + 1))) {
      return absl::InvalidArgumentError(absl::StrCat(kFn, ": batch ", batch, " is too large"));
    }
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<const int32_t> ctx,
                               CheckedSpan(kFn, "contexts", contexts, batch * context_width));
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<float> rows,
                               CheckedSpan(kFn, "logits", logits, batch * vocab));
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<tracemark_step_result> out,
                               CheckedSpan(kFn, "results", results, batch));
    std::vector<const AccountKeys*> accts(batch, nullptr);
    if (accounts != nullptr) {
      for (size_t b = 0; b < batch; ++b) {
        if (accounts[b] != nullptr) accts[b] = &accounts[b]->keys;
      }
    }
    std::vector<tracemark::engine::Response*> seqs;
    if (states != nullptr) {
      seqs.resize(batch);
      for (size_t b = 0; b < batch; ++b) {
        seqs[b] = states[b] == nullptr ? nullptr : &states[b]->state;
      }
    }
    std::vector<tracemark::engine::Step> r(batch);
    TRACEMARK_RETURN_IF_ERROR(
        wm->chain.ProcessBatch(accts, ctx, context_width, rows, seqs, absl::MakeSpan(r)));
    for (size_t b = 0; b < batch; ++b) ToC(r[b], &out[b]);
    return absl::OkStatus();
  });
}

// ---- Detection ----

tracemark_status tracemark_detector_create(const tracemark_key_t* epoch_key,
                                           const tracemark_config_t* config,
                                           tracemark_detector_t** out, char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    TRACEMARK_RETURN_IF_ERROR(CheckOut("tracemark_detector_create", out));
    if (epoch_key == nullptr) return Null("tracemark_detector_create", "epoch_key");
    if (config == nullptr) return Null("tracemark_detector_create", "config");
    TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<Detector> det,
                               Detector::Create(epoch_key->key, config->config));
    *out = new tracemark_detector_t{std::move(det)};
    return absl::OkStatus();
  });
}

void tracemark_detector_destroy(tracemark_detector_t* det) { delete det; }

tracemark_stats_t* tracemark_stats_create(void) { return new (std::nothrow) tracemark_stats_t; }

tracemark_status tracemark_stats_merge(tracemark_stats_t* dst, const tracemark_stats_t* src,
                                       char** errptr) {
  return Guard(errptr, [&]() -> absl::Status {
    if (dst == nullptr) return Null("tracemark_stats_merge", "dst");
    if (src == nullptr) return Null("tracemark_stats_merge", "src");
    if (dst == src) return absl::OkStatus();
    return dst->stats.Merge(src->stats);
  });
}

uint64_t tracemark_stats_size(const tracemark_stats_t* stats) {
  return stats == nullptr ? 0 : static_cast<uint64_t>(stats->stats.size());
}

void tracemark_stats_destroy(tracemark_stats_t* stats) { delete stats; }

tracemark_status tracemark_detector_score(const tracemark_detector_t* det, const int32_t* ids,
                                          size_t n, size_t score_from, tracemark_stats_t* stats,
                                          char** errptr) {
  static constexpr char kFn[] = "tracemark_detector_score";
  return Guard(errptr, [&]() -> absl::Status {
    if (det == nullptr) return Null(kFn, "det");
    if (stats == nullptr) return Null(kFn, "stats");
    TRACEMARK_ASSIGN_OR_RETURN(absl::Span<const int32_t> text, CheckedSpan(kFn, "ids", ids, n));
    TRACEMARK_RETURN_IF_ERROR(det->rep->Score(text, score_from, &stats->stats));
    return absl::OkStatus();
  });
}

tracemark_status tracemark_detector_test_provider(const tracemark_detector_t* det,
                                                  const tracemark_stats_t* stats,
                                                  tracemark_provider_result* out, char** errptr) {
  static constexpr char kFn[] = "tracemark_detector_test_provider";
  return Guard(errptr, [&]() -> absl::Status {
    if (det == nullptr) return Null(kFn, "det");
    if (stats == nullptr) return Null(kFn, "stats");
    if (out == nullptr) return Null(kFn, "out");
    TRACEMARK_ASSIGN_OR_RETURN(const tracemark::watermark::ProviderResult r,
                               det->rep->TestProvider(stats->stats));
    out->tuples = r.tuples;
    out->score = r.score;
    out->log10_p = r.p_value.log10();
    return absl::OkStatus();
  });
}

tracemark_status tracemark_detector_test_account(const tracemark_detector_t* det,
                                                 const tracemark_stats_t* stats, uint64_t account,
                                                 tracemark_account_result* out, char** errptr) {
  static constexpr char kFn[] = "tracemark_detector_test_account";
  return Guard(errptr, [&]() -> absl::Status {
    if (det == nullptr) return Null(kFn, "det");
    if (stats == nullptr) return Null(kFn, "stats");
    if (out == nullptr) return Null(kFn, "out");
    TRACEMARK_ASSIGN_OR_RETURN(AccountKeys keys, det->rep->ForAccount(account));
    TRACEMARK_ASSIGN_OR_RETURN(const tracemark::watermark::AccountResult r,
                               det->rep->TestAccount(stats->stats, keys));
    out->tuples = r.tuples;
    out->score = r.score;
    out->log10_p = r.p_value.log10();
    CopyHex(r.key_id, out->key_id, TRACEMARK_KEY_ID_SIZE);
    return absl::OkStatus();
  });
}

tracemark_status tracemark_detector_decode_payload(const tracemark_detector_t* det,
                                                   const tracemark_stats_t* stats,
                                                   uint64_t account_limit, int* decoded,
                                                   uint64_t* account, char** errptr) {
  static constexpr char kFn[] = "tracemark_detector_decode_payload";
  return Guard(errptr, [&]() -> absl::Status {
    if (det == nullptr) return Null(kFn, "det");
    if (stats == nullptr) return Null(kFn, "stats");
    if (decoded == nullptr) return Null(kFn, "decoded");
    if (account == nullptr) return Null(kFn, "account");
    tracemark::watermark::PayloadOptions options;
    options.account_limit = account_limit;
    TRACEMARK_ASSIGN_OR_RETURN(const tracemark::watermark::PayloadResult r,
                               det->rep->DecodePayload(stats->stats, options));
    *decoded = r.decoded ? 1 : 0;
    *account = r.decoded ? r.account : 0;
    return absl::OkStatus();
  });
}

tracemark_status tracemark_detector_attribute(const tracemark_detector_t* det,
                                              const tracemark_stats_t* stats,
                                              uint64_t account_limit, size_t max_candidates,
                                              double alpha, tracemark_attribution* out,
                                              char** errptr) {
  static constexpr char kFn[] = "tracemark_detector_attribute";
  return Guard(errptr, [&]() -> absl::Status {
    if (det == nullptr) return Null(kFn, "det");
    if (stats == nullptr) return Null(kFn, "stats");
    if (out == nullptr) return Null(kFn, "out");
    if (!(alpha > 0 && alpha < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(kFn, ": alpha must be in (0, 1)"));
    }
    if (max_candidates == 0) {
      return absl::InvalidArgumentError(absl::StrCat(kFn, ": max_candidates must be >= 1"));
    }
    *out = tracemark_attribution{0, 0, 0.0, 0};
    tracemark::watermark::PayloadOptions options;
    options.account_limit = account_limit;
    options.max_candidates = max_candidates;
    TRACEMARK_ASSIGN_OR_RETURN(const tracemark::watermark::PayloadResult payload,
                               det->rep->DecodePayload(stats->stats, options));
    if (payload.candidates.empty()) return absl::OkStatus();
    std::vector<AccountKeys> keys;
    for (uint64_t id : payload.candidates) {
      TRACEMARK_ASSIGN_OR_RETURN(AccountKeys k, det->rep->ForAccount(id));
      keys.push_back(std::move(k));
    }
    TRACEMARK_ASSIGN_OR_RETURN(const std::vector<tracemark::watermark::AccountResult> results,
                               det->rep->TestAccounts(stats->stats, keys));
    const tracemark::watermark::AccountResult* best = &results.front();
    for (const auto& r : results) {
      if (r.p_value < best->p_value) best = &r;
    }
    const tracemark::stats::PValue corrected =
        tracemark::stats::Bonferroni(best->p_value, results.size());
    out->account = best->account;
    out->log10_p = corrected.log10();
    out->candidates_confirmed = results.size();
    out->attributed = corrected.value() <= alpha ? 1 : 0;
    return absl::OkStatus();
  });
}

}  // extern "C"
