/* The C ABI of tracemark (libtracemark): watermark tokens in a serving engine's sampling loop and
 * detect the watermark in text, from C or any language with a C foreign-function interface.
 *
 * A thin shell over the C++ library (the serving chain of tracemark/engine/ and the headers in
 * tracemark/watermark/), in the manner of leveldb's c.h: opaque handles, plain structs for results,
 * and integer status codes equal to absl::StatusCode. No C++ exception ever crosses this interface.
 *
 * Errors. A fallible function returns a tracemark_status: TRACEMARK_OK (0) on success, otherwise
 * one of the codes below. Its last parameter is `char** errptr`; on failure, when errptr is not
 * NULL, *errptr receives a message allocated with malloc() that the caller releases with
 * tracemark_free(). *errptr must be NULL or hold a message from an earlier call, which is freed and
 * replaced (as in leveldb), so one variable can serve a sequence of calls. On success *errptr is
 * left untouched. A NULL handle where one is required is TRACEMARK_INVALID_ARGUMENT, never a crash.
 * A function that creates a handle writes it to its `out` parameter (NULL on failure).
 *
 * Ownership. Every handle is created by a tracemark_*_create-style function and released by the
 * matching tracemark_*_destroy, which accepts NULL. A handle never keeps a reference to the handles
 * it was made from: a config or key may be destroyed as soon as the watermarker or detector made
 * from it exists. Strings returned through errptr are released with tracemark_free(). Key bytes
 * never leave the library; only a key's public id and commitment do.
 *
 * Thread safety. Keys, configs, watermarkers, accounts and detectors are immutable once created
 * and may be shared by any number of threads. A tracemark_sequence_t (the state of one response)
 * and a tracemark_stats_t (statistics being accumulated) may be used by one thread at a time.
 *
 * Example (error handling shortened):
 *
 *   char* err = NULL;
 *   tracemark_key_t *master, *epoch;
 *   tracemark_config_t* cfg;
 *   tracemark_watermarker_t* wm;
 *   tracemark_account_t* acct;
 *   tracemark_step_result step;
 *   tracemark_key_read_file("tracemark.key", &master, &err);
 *   tracemark_key_derive_epoch(master, 0, &epoch, &err);
 *   tracemark_config_create("scheme=kgw", 100277, &cfg, &err);
 *   tracemark_watermarker_create(epoch, cfg, &wm, &err);
 *   tracemark_watermarker_account(wm, 42, &acct, &err);      (once per request)
 *   ... at each decode step, with the ids so far and the step's logits:
 *   if (tracemark_process_dense(wm, acct, ids, n_ids, logits, 100277, NULL, &step, &err) !=
 *       TRACEMARK_OK) { fprintf(stderr, "%s\n", err); tracemark_free(err); err = NULL; }
 *   token = step.token_chosen ? step.token : sample(logits);
 *   ...
 *   tracemark_account_destroy(acct);
 *   tracemark_watermarker_destroy(wm);
 *   tracemark_config_destroy(cfg);
 *   tracemark_key_destroy(epoch);
 *   tracemark_key_destroy(master);
 */
#ifndef TRACEMARK_TRACEMARK_H_
#define TRACEMARK_TRACEMARK_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define TRACEMARK_EXPORT
#else
#define TRACEMARK_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes: the values of absl::StatusCode. ---- */

typedef int tracemark_status;

#define TRACEMARK_OK 0
#define TRACEMARK_CANCELLED 1
#define TRACEMARK_UNKNOWN 2
#define TRACEMARK_INVALID_ARGUMENT 3
#define TRACEMARK_DEADLINE_EXCEEDED 4
#define TRACEMARK_NOT_FOUND 5
#define TRACEMARK_ALREADY_EXISTS 6
#define TRACEMARK_PERMISSION_DENIED 7
#define TRACEMARK_RESOURCE_EXHAUSTED 8
#define TRACEMARK_FAILED_PRECONDITION 9
#define TRACEMARK_ABORTED 10
#define TRACEMARK_OUT_OF_RANGE 11
#define TRACEMARK_UNIMPLEMENTED 12
#define TRACEMARK_INTERNAL 13
#define TRACEMARK_UNAVAILABLE 14
#define TRACEMARK_DATA_LOSS 15
#define TRACEMARK_UNAUTHENTICATED 16

/* The code's name, e.g. "INVALID_ARGUMENT" (a static string; "" for an unknown code). */
TRACEMARK_EXPORT const char* tracemark_status_name(tracemark_status code);

/* The library version, e.g. "0.1.0" (a static string). */
TRACEMARK_EXPORT const char* tracemark_version(void);

/* Releases a message returned through errptr. NULL is allowed. */
TRACEMARK_EXPORT void tracemark_free(void* ptr);

/* ---- Opaque handles. ---- */

typedef struct tracemark_key_t tracemark_key_t;
typedef struct tracemark_config_t tracemark_config_t;
typedef struct tracemark_watermarker_t tracemark_watermarker_t;
typedef struct tracemark_account_t tracemark_account_t;
typedef struct tracemark_sequence_t tracemark_sequence_t;
typedef struct tracemark_detector_t tracemark_detector_t;
typedef struct tracemark_stats_t tracemark_stats_t;
typedef struct tracemark_ledger_t tracemark_ledger_t;

/* ---- Keys (keys.h). ---- */

/* Buffer sizes, terminating NUL included: a key id is 16 hex digits, a commitment 64. */
#define TRACEMARK_KEY_ID_SIZE 17
#define TRACEMARK_COMMITMENT_SIZE 65

/* Reads a master secret file: exactly 32 bytes, readable by its owner only. NOT_FOUND,
 * PERMISSION_DENIED, FAILED_PRECONDITION (mode too open), INVALID_ARGUMENT (size) on failure. */
TRACEMARK_EXPORT tracemark_status tracemark_key_read_file(const char* path, tracemark_key_t** out,
                                                          char** errptr);
/* Reads a master secret from an environment variable holding 64 hex digits. */
TRACEMARK_EXPORT tracemark_status tracemark_key_from_env(const char* variable,
                                                         tracemark_key_t** out, char** errptr);
/* Writes a fresh random master secret to `path` with mode 0600; refuses to overwrite an existing
 * file (ALREADY_EXISTS). When id_out is not NULL it receives the new key's id
 * (TRACEMARK_KEY_ID_SIZE bytes). */
TRACEMARK_EXPORT tracemark_status tracemark_key_generate_file(const char* path, char* id_out,
                                                              char** errptr);
/* The key of epoch `epoch` derived from a master key. */
TRACEMARK_EXPORT tracemark_status tracemark_key_derive_epoch(const tracemark_key_t* master,
                                                             uint32_t epoch, tracemark_key_t** out,
                                                             char** errptr);
/* The key's public id: 16 hex digits and a NUL into out[TRACEMARK_KEY_ID_SIZE]. */
TRACEMARK_EXPORT tracemark_status tracemark_key_id(const tracemark_key_t* key, char* out,
                                                   char** errptr);
/* The key's commitment: 64 hex digits and a NUL into out[TRACEMARK_COMMITMENT_SIZE]. */
TRACEMARK_EXPORT tracemark_status tracemark_key_commitment(const tracemark_key_t* key, char* out,
                                                           char** errptr);
/* Wipes and releases the key. NULL is allowed. */
TRACEMARK_EXPORT void tracemark_key_destroy(tracemark_key_t* key);

/* ---- Configuration (config.h). ---- */

/* Parses "key=value,..." (config.h lists the keys; "" gives the defaults) over the defaults with
 * the given vocabulary size (a "vocab=" entry in the spec overrides it) and validates the result.
 * INVALID_ARGUMENT, naming the offending entry, on failure. */
TRACEMARK_EXPORT tracemark_status tracemark_config_create(const char* spec, int32_t vocab_size,
                                                          tracemark_config_t** out, char** errptr);
/* Writes the canonical one-line description into buf (at most len bytes, NUL-terminated when len
 * > 0) and returns its length without the NUL, as snprintf does: call with (NULL, 0) to size the
 * buffer. Returns 0 for a NULL config. */
TRACEMARK_EXPORT size_t tracemark_config_describe(const tracemark_config_t* config, char* buf,
                                                  size_t len);
/* h, the number of preceding ids that seed a position (0 for a NULL config). */
TRACEMARK_EXPORT int32_t tracemark_config_context_width(const tracemark_config_t* config);
/* The vocabulary size (0 for a NULL config). */
TRACEMARK_EXPORT int32_t tracemark_config_vocab_size(const tracemark_config_t* config);
TRACEMARK_EXPORT void tracemark_config_destroy(tracemark_config_t* config);

/* ---- Watermarking (watermarker.h). ---- */

/* Which signal a position carries (tracemark_step_result.layer). */
#define TRACEMARK_LAYER_NONE 0                /* context too short, or a repeated context */
#define TRACEMARK_LAYER_PROVIDER 1            /* the epoch's provider scheme */
#define TRACEMARK_LAYER_ACCOUNT_PAYLOAD 2     /* the account id payload */
#define TRACEMARK_LAYER_ACCOUNT_FINGERPRINT 3 /* the account's fingerprint codeword */

/* One entry of a sparse candidate list. */
typedef struct {
  int32_t id;
  float logit;
} tracemark_candidate;

typedef struct {
  int32_t layer;        /* TRACEMARK_LAYER_* */
  int32_t token_chosen; /* 1 when the scheme picked the token (Gumbel, SynthID), else 0 */
  int32_t token;        /* the picked token when token_chosen, else -1 */
} tracemark_step_result;

TRACEMARK_EXPORT tracemark_status tracemark_watermarker_create(const tracemark_key_t* epoch_key,
                                                               const tracemark_config_t* config,
                                                               tracemark_watermarker_t** out,
                                                               char** errptr);
/* The same with canary phrasings (docs/canary.md): at every step, before the watermark layers, the
 * account's keyed choice among interchangeable phrasings over the built-in lexicon, as
 * `tracemark generate --canary` does. `tokenizer` names the serving model's tokenizer as the CLI
 * does ("tiktoken:cl100k_base", "hf:qwen3", "hf:/path/tokenizer.json", "spm:/path/x.model");
 * built-in files are looked up under `data_dir` (NULL: $TRACEMARK_DATA_DIR, else ./data). Its
 * vocabulary must equal the configuration's (INVALID_ARGUMENT); NOT_FOUND when its files are
 * absent. Anonymous steps (account NULL) get no canary. */
TRACEMARK_EXPORT tracemark_status tracemark_watermarker_create_with_canary(
    const tracemark_key_t* epoch_key, const tracemark_config_t* config, const char* tokenizer,
    const char* data_dir, tracemark_watermarker_t** out, char** errptr);
/* 1 when the watermarker applies canary phrasings, else 0 (also for NULL). */
TRACEMARK_EXPORT int tracemark_watermarker_has_canary(const tracemark_watermarker_t* wm);
/* The number of trailing ids of the history a step reads: h without canaries, at least 78 with
 * them. tracemark_process_batch's context_width must be at least this (0 for NULL). */
TRACEMARK_EXPORT size_t tracemark_watermarker_history_width(const tracemark_watermarker_t* wm);
TRACEMARK_EXPORT void tracemark_watermarker_destroy(tracemark_watermarker_t* wm);

/* The keys and codewords of one account, derived once per request (INVALID_ARGUMENT when the id
 * does not fit the payload). An account may only be used with a watermarker of the same epoch key
 * and configuration as the one that made it (INVALID_ARGUMENT otherwise). */
TRACEMARK_EXPORT tracemark_status tracemark_watermarker_account(const tracemark_watermarker_t* wm,
                                                                uint64_t account,
                                                                tracemark_account_t** out,
                                                                char** errptr);
/* The account key's public id into out[TRACEMARK_KEY_ID_SIZE]. */
TRACEMARK_EXPORT tracemark_status tracemark_account_key_id(const tracemark_account_t* account,
                                                           char* out, char** errptr);
TRACEMARK_EXPORT void tracemark_account_destroy(tracemark_account_t* account);

/* The state of one response: the contexts already seen (so that distortion-free schemes never
 * repeat a keyed choice) and the canary member in progress. NULL when out of memory. */
TRACEMARK_EXPORT tracemark_sequence_t* tracemark_sequence_create(void);
/* Forgets every context, for reuse by the next response. NULL is allowed. */
TRACEMARK_EXPORT void tracemark_sequence_reset(tracemark_sequence_t* seq);
TRACEMARK_EXPORT void tracemark_sequence_destroy(tracemark_sequence_t* seq);

/* One decode step over a sparse candidate list (after temperature and top-k/top-p), cost O(n),
 * through the serving chain: the canary choice (when the watermarker has canaries and the step an
 * account), then the watermark layers. `context` holds the ids preceding the position (prompt
 * included; only the last tracemark_watermarker_history_width() are read); `account` may be NULL
 * (anonymous: account positions and canaries are left alone); `seq` may be NULL (repeated
 * contexts are then watermarked like any other, and a canary member of several tokens is not
 * used). Bias schemes add their bias to the logits; sampling schemes pick the token
 * (out->token_chosen) and set every other logit to -INFINITY. NaN or +inf logits, every logit
 * -INFINITY, ids outside [0, vocab) or an empty list are INVALID_ARGUMENT, with nothing
 * modified. */
TRACEMARK_EXPORT tracemark_status tracemark_process_sparse(
    const tracemark_watermarker_t* wm, const tracemark_account_t* account, const int32_t* context,
    size_t context_len, tracemark_candidate* candidates, size_t n, tracemark_sequence_t* seq,
    tracemark_step_result* out, char** errptr);

/* The same over one dense row of `vocab` logits (vocab must equal the configuration's), cost
 * O(vocab). */
TRACEMARK_EXPORT tracemark_status
tracemark_process_dense(const tracemark_watermarker_t* wm, const tracemark_account_t* account,
                        const int32_t* context, size_t context_len, float* logits, size_t vocab,
                        tracemark_sequence_t* seq, tracemark_step_result* out, char** errptr);

/* `batch` rows at once. Row b has the context contexts[b*w .. b*w+w) (its last w ids, oldest first,
 * w = context_width, at least tracemark_watermarker_history_width(); negative ids mark positions
 * before the start of a short history, and only the ids after the last negative one are used),
 * the logits logits[b*vocab .. b*vocab+vocab), the account accounts[b] and the state
 * states[b]. `accounts` may be NULL (all anonymous) and so may its entries; `states` may be NULL
 * (no states) and so may its entries. Results go to results[0 .. batch). Every row is validated
 * before any is modified. */
TRACEMARK_EXPORT tracemark_status tracemark_process_batch(
    const tracemark_watermarker_t* wm, const tracemark_account_t* const* accounts, size_t batch,
    const int32_t* contexts, size_t context_width, float* logits, size_t vocab,
    tracemark_sequence_t* const* states, tracemark_step_result* results, char** errptr);

/* ---- The serving ledger (docs/ledger.md). ---- */

/* A ledger writer: one new segment file in `directory` (created if missing; its parent must
 * exist), append-only and crash-safe (a killed process loses at most the record in flight).
 * Thread-safe: watermarkers on several threads may share one. Open one per process. */
TRACEMARK_EXPORT tracemark_status tracemark_ledger_open(const char* directory,
                                                        tracemark_ledger_t** out, char** errptr);
/* The number of records written so far (0 for NULL). */
TRACEMARK_EXPORT uint64_t tracemark_ledger_records(const tracemark_ledger_t* ledger);
/* Finishes the segment and flushes it to disk; further records are refused. Idempotent. */
TRACEMARK_EXPORT tracemark_status tracemark_ledger_close(tracemark_ledger_t* ledger, char** errptr);
/* Closes (its status dropped: call tracemark_ledger_close to see it) and frees. NULL is allowed. */
TRACEMARK_EXPORT void tracemark_ledger_destroy(tracemark_ledger_t* ledger);

/* From now on, tracemark_end_response on `wm` appends one record per response to `ledger`: the
 * account, the epoch (`epoch`, the epoch of wm's key) and wm's key id, the time, the prompt's last
 * tracemark_watermarker_history_width() ids and every response id, with `tokenizer` (the serving
 * tokenizer's spec, e.g. "tiktoken:cl100k_base") recorded. Call before the watermarker is used
 * from other threads; `ledger` must outlive `wm`. NULL `ledger` detaches it. */
TRACEMARK_EXPORT tracemark_status tracemark_watermarker_set_ledger(tracemark_watermarker_t* wm,
                                                                   tracemark_ledger_t* ledger,
                                                                   uint32_t epoch,
                                                                   const char* tokenizer,
                                                                   char** errptr);
/* Ends a response: resets `seq` (may be NULL) for the next one and, when wm has a ledger, appends
 * the response's record. `account` may be NULL (an anonymous request); `prompt` holds the ids the
 * model saw before the response (only the last history_width are kept); `response` every id the
 * response was served. Negative ids are INVALID_ARGUMENT; a write failure is the system's reason
 * (the ledger then refuses further records). Serve a response only once this returns OK. */
TRACEMARK_EXPORT tracemark_status tracemark_end_response(const tracemark_watermarker_t* wm,
                                                         const tracemark_account_t* account,
                                                         const int32_t* prompt, size_t prompt_len,
                                                         const int32_t* response,
                                                         size_t response_len,
                                                         tracemark_sequence_t* seq, char** errptr);

/* ---- Detection (detector.h). ---- */

typedef struct {
  uint64_t tuples; /* unique scored tuples on provider positions */
  double score;    /* green count, sum of -log(1 - r), or number of g-values equal to 1 */
  double log10_p;  /* log10 of the p-value (exact far below 1e-308) */
} tracemark_provider_result;

typedef struct {
  uint64_t tuples;                    /* unique scored tuples on fingerprint positions */
  double score;                       /* symmetric Tardos score */
  double log10_p;                     /* log10 of the p-value bound, for this one account */
  char key_id[TRACEMARK_KEY_ID_SIZE]; /* the account key's public id */
} tracemark_account_result;

/* The attribution rule's defaults, as `tracemark detect` and `tracemark scan` use them. */
#define TRACEMARK_DEFAULT_ALPHA 1e-6
#define TRACEMARK_DEFAULT_MAX_CANDIDATES 1

typedef struct {
  int attributed;                /* 1 when the best confirmation is at corrected p <= alpha */
  uint64_t account;              /* the best-confirmed candidate (0 when there is none) */
  double log10_p;                /* its p-value bound, corrected for the candidates confirmed */
  uint64_t candidates_confirmed; /* payload candidates tested (the correction); 0: none decoded */
} tracemark_attribution;

TRACEMARK_EXPORT tracemark_status tracemark_detector_create(const tracemark_key_t* epoch_key,
                                                            const tracemark_config_t* config,
                                                            tracemark_detector_t** out,
                                                            char** errptr);
TRACEMARK_EXPORT void tracemark_detector_destroy(tracemark_detector_t* det);

/* Statistics of scored text: a set of unique tuples, so repeated text never counts twice. A
 * statistics object belongs to the detector (key and configuration) that first scores into it;
 * using it with another is INVALID_ARGUMENT. NULL when out of memory. */
TRACEMARK_EXPORT tracemark_stats_t* tracemark_stats_create(void);
/* Adds the tuples of `src` to `dst` (an exact union). */
TRACEMARK_EXPORT tracemark_status tracemark_stats_merge(tracemark_stats_t* dst,
                                                        const tracemark_stats_t* src,
                                                        char** errptr);
/* The number of unique tuples (0 for NULL). */
TRACEMARK_EXPORT uint64_t tracemark_stats_size(const tracemark_stats_t* stats);
TRACEMARK_EXPORT void tracemark_stats_destroy(tracemark_stats_t* stats);

/* Scores ids[score_from .. n) with the preceding ids as context into `stats`. Ids outside
 * [0, vocab) are INVALID_ARGUMENT, with nothing added. */
TRACEMARK_EXPORT tracemark_status tracemark_detector_score(const tracemark_detector_t* det,
                                                           const int32_t* ids, size_t n,
                                                           size_t score_from,
                                                           tracemark_stats_t* stats, char** errptr);
/* The provider scheme's test. */
TRACEMARK_EXPORT tracemark_status tracemark_detector_test_provider(const tracemark_detector_t* det,
                                                                   const tracemark_stats_t* stats,
                                                                   tracemark_provider_result* out,
                                                                   char** errptr);
/* The fingerprint test of one account (INVALID_ARGUMENT when the id does not fit the payload). */
TRACEMARK_EXPORT tracemark_status tracemark_detector_test_account(const tracemark_detector_t* det,
                                                                  const tracemark_stats_t* stats,
                                                                  uint64_t account,
                                                                  tracemark_account_result* out,
                                                                  char** errptr);
/* Decodes the account id payload of single-source text: *decoded is 1 and *account the most
 * likely id when a candidate passes the check bits, else *decoded is 0. account_limit: the number
 * of accounts issued (ids at or above it are rejected), 0 for no limit. Confirm a decoded id with
 * tracemark_detector_test_account. */
TRACEMARK_EXPORT tracemark_status tracemark_detector_decode_payload(const tracemark_detector_t* det,
                                                                    const tracemark_stats_t* stats,
                                                                    uint64_t account_limit,
                                                                    int* decoded, uint64_t* account,
                                                                    char** errptr);

/* The attribution rule of `tracemark detect` and `tracemark scan` (docs/cli.md) under this one
 * epoch key: the payload's passing candidates, most likely first, at most max_candidates, are
 * each confirmed by their fingerprint test; the best confirmation's p-value, Bonferroni-corrected
 * over the candidates confirmed, is out->log10_p, and the text is attributed to that account when
 * it is at most alpha. account_limit as for tracemark_detector_decode_payload. Testing several
 * epochs, correct for them too (the CLI does). alpha outside (0, 1) or max_candidates 0:
 * INVALID_ARGUMENT. */
TRACEMARK_EXPORT tracemark_status tracemark_detector_attribute(
    const tracemark_detector_t* det, const tracemark_stats_t* stats, uint64_t account_limit,
    size_t max_candidates, double alpha, tracemark_attribution* out, char** errptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TRACEMARK_TRACEMARK_H_ */
