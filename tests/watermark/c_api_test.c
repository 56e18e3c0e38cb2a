/* Tests of the C ABI (tracemark/tracemark.h), written in C against libtracemark alone: key files,
 * configurations, watermarking a small deterministic "model" through the dense, sparse and batch
 * entry points, detection, and the error paths (bad input, NULL handles, mismatched handles). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracemark/tracemark.h"

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++passed;                                                                \
    } else {                                                                   \
      ++failed;                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* An OK call; on failure prints the code and message. */
#define CHECK_OK(call)                                                          \
  do {                                                                          \
    char* err_ = NULL;                                                          \
    tracemark_status s_ = (call);                                               \
    if (s_ == TRACEMARK_OK && err_ == NULL) {                                   \
      ++passed;                                                                 \
    } else {                                                                    \
      ++failed;                                                                 \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, \
              tracemark_status_name(s_), err_ ? err_ : "(no message)");         \
    }                                                                           \
    tracemark_free(err_);                                                       \
  } while (0)

/* A call that must fail with `code` and a non-empty message (the call uses &err_). */
#define CHECK_FAILS(code, call)                                                           \
  do {                                                                                    \
    char* err_ = NULL;                                                                    \
    tracemark_status s_ = (call);                                                         \
    if (s_ == (code) && err_ != NULL && err_[0] != '\0') {                                \
      ++passed;                                                                           \
    } else {                                                                              \
      ++failed;                                                                           \
      fprintf(stderr, "%s:%d: %s returned %s (want %s): %s\n", __FILE__, __LINE__, #call, \
              tracemark_status_name(s_), tracemark_status_name(code),                     \
              err_ ? err_ : "(no message)");                                              \
    }                                                                                     \
    tracemark_free(err_);                                                                 \
  } while (0)

enum { kVocab = 1000, kPrompt = 4, kGenerate = 800, kTotal = kPrompt + kGenerate };

/* ---- A tiny deterministic "language model". ---- */

static uint64_t Mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A uniform double in (0, 1). */
static double Unit(uint64_t x) { return ((double)(x >> 11) + 0.5) / 9007199254740992.0; }

/* Next-token logits given the previous token: Gumbel-distributed scores, a few bits of entropy. */
static void ModelLogits(int32_t prev, float* logits) {
  int32_t v;
  for (v = 0; v < kVocab; ++v) {
    const double u = Unit(Mix64(((uint64_t)(uint32_t)prev << 32) ^ (uint64_t)v));
    logits[v] = (float)(-log(-log(u)));
  }
}

typedef struct {
  uint64_t s;
} Rng;

static uint64_t RngNext(Rng* r) { /* xorshift64* */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

/* Samples from softmax(logits) (-inf entries have probability 0). */
static int32_t Sample(const float* logits, Rng* rng) {
  double m = -INFINITY, z = 0, acc = 0, u;
  int32_t v, last = 0;
  for (v = 0; v < kVocab; ++v) m = logits[v] > m ? logits[v] : m;
  for (v = 0; v < kVocab; ++v) z += exp(logits[v] - m);
  u = Unit(RngNext(rng)) * z;
  for (v = 0; v < kVocab; ++v) {
    const double p = exp(logits[v] - m);
    if (p <= 0) continue;
    last = v;
    acc += p;
    if (u < acc) return v;
  }
  return last;
}

/* Generates kGenerate tokens after a kPrompt-token prompt into ids[kTotal] through
 * tracemark_process_dense. Returns 0 on any failure. */
static int Generate(const tracemark_watermarker_t* wm, const tracemark_account_t* acct,
                    uint64_t seed, int32_t* ids) {
  float logits[kVocab];
  Rng rng;
  tracemark_sequence_t* seq = tracemark_sequence_create();
  int i, ok = seq != NULL;
  rng.s = seed | 1;
  for (i = 0; i < kPrompt; ++i) ids[i] = (int32_t)(RngNext(&rng) % kVocab);
  for (i = kPrompt; ok && i < kTotal; ++i) {
    tracemark_step_result step;
    char* err = NULL;
    ModelLogits(ids[i - 1], logits);
    if (tracemark_process_dense(wm, acct, ids, (size_t)i, logits, kVocab, seq, &step, &err) !=
        TRACEMARK_OK) {
      fprintf(stderr, "process_dense at %d: %s\n", i, err ? err : "(no message)");
      tracemark_free(err);
      ok = 0;
      break;
    }
    ids[i] = step.token_chosen ? step.token : Sample(logits, &rng);
  }
  tracemark_sequence_destroy(seq);
  return ok;
}

static int IsHex(const char* s, size_t n) {
  size_t i;
  if (strlen(s) != n) return 0;
  for (i = 0; i < n; ++i) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  }
  return 1;
}

/* ---- Tests. ---- */

static void TestMisc(void) {
  char* err = NULL;
  CHECK(strlen(tracemark_version()) > 0);
  CHECK(strcmp(tracemark_status_name(TRACEMARK_INVALID_ARGUMENT), "INVALID_ARGUMENT") == 0);
  CHECK(strcmp(tracemark_status_name(999), "") == 0);
  tracemark_free(NULL);
  /* An earlier message in *errptr is replaced (and freed: valgrind checks), not leaked. */
  CHECK(tracemark_key_id(NULL, NULL, &err) == TRACEMARK_INVALID_ARGUMENT && err != NULL);
  CHECK(tracemark_config_create("scheme=nope", kVocab, NULL, &err) == TRACEMARK_INVALID_ARGUMENT);
  CHECK(err != NULL);
  tracemark_free(err);
  /* errptr may be NULL. */
  CHECK(tracemark_key_id(NULL, NULL, NULL) == TRACEMARK_INVALID_ARGUMENT);
}

static void TestKeys(void) {
  char dir_template[] = "/tmp/tracemark_c_api_XXXXXX";
  char* dir = mkdtemp(dir_template);
  char path[256], missing[256], id[TRACEMARK_KEY_ID_SIZE], id2[TRACEMARK_KEY_ID_SIZE];
  char commitment[TRACEMARK_COMMITMENT_SIZE], epoch_id[TRACEMARK_KEY_ID_SIZE];
  tracemark_key_t *master = NULL, *epoch = NULL, *env_key = NULL;
  CHECK(dir != NULL);
  if (dir == NULL) return;
  snprintf(path, sizeof path, "%s/master.key", dir);
  snprintf(missing, sizeof missing, "%s/missing.key", dir);

  CHECK_OK(tracemark_key_generate_file(path, id, &err_));
  CHECK(IsHex(id, 16));
  CHECK_OK(tracemark_key_read_file(path, &master, &err_));
  CHECK(master != NULL);
  CHECK_OK(tracemark_key_id(master, id2, &err_));
  CHECK(strcmp(id, id2) == 0);
  CHECK_OK(tracemark_key_commitment(master, commitment, &err_));
  CHECK(IsHex(commitment, 64));
  CHECK_FAILS(TRACEMARK_ALREADY_EXISTS, tracemark_key_generate_file(path, id2, &err_));
  {
    tracemark_key_t* k = (tracemark_key_t*)&k; /* must be overwritten with NULL on failure */
    CHECK_FAILS(TRACEMARK_NOT_FOUND, tracemark_key_read_file(missing, &k, &err_));
    CHECK(k == NULL);
  }
  /* A key file readable by others is refused, as ssh refuses such private keys. */
  CHECK(chmod(path, 0644) == 0);
  {
    tracemark_key_t* k = NULL;
    CHECK_FAILS(TRACEMARK_FAILED_PRECONDITION, tracemark_key_read_file(path, &k, &err_));
    CHECK(k == NULL);
  }

  CHECK_OK(tracemark_key_derive_epoch(master, 0, &epoch, &err_));
  CHECK_OK(tracemark_key_id(epoch, epoch_id, &err_));
  CHECK(IsHex(epoch_id, 16) && strcmp(epoch_id, id) != 0);

  CHECK(setenv("TRACEMARK_C_API_TEST_KEY",
               "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1) == 0);
  CHECK_OK(tracemark_key_from_env("TRACEMARK_C_API_TEST_KEY", &env_key, &err_));
  CHECK(setenv("TRACEMARK_C_API_TEST_KEY", "0001", 1) == 0);
  {
    tracemark_key_t* k = NULL;
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_key_from_env("TRACEMARK_C_API_TEST_KEY", &k, &err_));
    CHECK(k == NULL);
  }
  CHECK(unsetenv("TRACEMARK_C_API_TEST_KEY") == 0);

  tracemark_key_destroy(env_key);
  tracemark_key_destroy(epoch);
  tracemark_key_destroy(master);
  tracemark_key_destroy(NULL);
  CHECK(unlink(path) == 0);
  CHECK(rmdir(dir) == 0);
}

static void TestConfig(void) {
  tracemark_config_t* cfg = NULL;
  char small[8], big[1024];
  size_t need;
  CHECK_OK(tracemark_config_create("scheme=gumbel", kVocab, &cfg, &err_));
  need = tracemark_config_describe(cfg, NULL, 0);
  CHECK(need > 7);
  CHECK(tracemark_config_describe(cfg, small, sizeof small) == need);
  CHECK(strlen(small) == sizeof small - 1);
  CHECK(tracemark_config_describe(cfg, big, sizeof big) == need && strlen(big) == need);
  CHECK(strstr(big, "scheme=gumbel") != NULL);
  CHECK(tracemark_config_vocab_size(cfg) == kVocab);
  CHECK(tracemark_config_context_width(cfg) > 0);
  CHECK(tracemark_config_describe(NULL, small, sizeof small) == 0 && small[0] == '\0');
  tracemark_config_destroy(cfg);
  {
    tracemark_config_t* bad = NULL;
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_config_create("scheme=nope", kVocab, &bad, &err_));
    CHECK(bad == NULL);
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_config_create("gamma=2", kVocab, &bad, &err_));
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_config_create("", 0, &bad, &err_));
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_config_create(NULL, kVocab, &bad, &err_));
    CHECK(bad == NULL);
  }
  tracemark_config_destroy(NULL);
}

/* The fixed epoch key of the scheme tests (deterministic results). */
static tracemark_key_t* FixedEpochKey(void) {
  tracemark_key_t *master = NULL, *epoch = NULL;
  setenv("TRACEMARK_C_API_TEST_KEY",
         "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100", 1);
  CHECK_OK(tracemark_key_from_env("TRACEMARK_C_API_TEST_KEY", &master, &err_));
  unsetenv("TRACEMARK_C_API_TEST_KEY");
  CHECK_OK(tracemark_key_derive_epoch(master, 7, &epoch, &err_));
  tracemark_key_destroy(master);
  return epoch;
}

/* Batch of 4 rows == 4 dense calls, logits and results bit for bit. */
static void TestBatch(const tracemark_watermarker_t* wm, const tracemark_account_t* a77,
                      const tracemark_account_t* a78, const int32_t* ids, size_t hw) {
  enum { kBatch = 4 };
  const tracemark_account_t* accounts[kBatch];
  tracemark_sequence_t* states[kBatch];
  int32_t* contexts;
  float *batch_logits, *dense_logits;
  tracemark_step_result batch_results[kBatch], dense_results[kBatch];
  int b, pass;
  accounts[0] = a77;
  accounts[1] = NULL;
  accounts[2] = a78;
  accounts[3] = a77;
  contexts = malloc(sizeof(int32_t) * kBatch * hw);
  batch_logits = malloc(sizeof(float) * kBatch * kVocab);
  dense_logits = malloc(sizeof(float) * kBatch * kVocab);
  if (contexts == NULL || batch_logits == NULL || dense_logits == NULL) {
    CHECK(0);
    free(contexts);
    free(batch_logits);
    free(dense_logits);
    return;
  }
  for (pass = 0; pass < 2; ++pass) { /* pass 0 without states, pass 1 with fresh states */
    for (b = 0; b < kBatch; ++b) {
      const size_t end = (size_t)(100 + 97 * b); /* ids[end - h .. end) is row b's context */
      size_t j;
      for (j = 0; j < hw; ++j) contexts[(size_t)b * hw + j] = ids[end - hw + j];
      ModelLogits(ids[end - 1], batch_logits + (size_t)b * kVocab);
      memcpy(dense_logits + (size_t)b * kVocab, batch_logits + (size_t)b * kVocab,
             sizeof(float) * kVocab);
      states[b] = pass == 1 ? tracemark_sequence_create() : NULL;
    }
    CHECK_OK(tracemark_process_batch(wm, accounts, kBatch, contexts, hw, batch_logits, kVocab,
                                     pass == 1 ? states : NULL, batch_results, &err_));
    for (b = 0; b < kBatch; ++b) {
      tracemark_sequence_t* seq = pass == 1 ? tracemark_sequence_create() : NULL;
      CHECK_OK(tracemark_process_dense(wm, accounts[b], contexts + (size_t)b * hw, hw,
                                       dense_logits + (size_t)b * kVocab, kVocab, seq,
                                       &dense_results[b], &err_));
      CHECK(batch_results[b].layer == dense_results[b].layer);
      CHECK(batch_results[b].token_chosen == dense_results[b].token_chosen);
      CHECK(batch_results[b].token == dense_results[b].token);
      tracemark_sequence_destroy(seq);
      tracemark_sequence_destroy(states[b]);
    }
    CHECK(memcmp(batch_logits, dense_logits, sizeof(float) * kBatch * kVocab) == 0);
  }
  /* A batch row marked too short (negative ids) is left alone, like a short dense context. */
  for (b = 0; b < kBatch; ++b) {
    size_t j;
    for (j = 0; j < hw; ++j) contexts[(size_t)b * hw + j] = b == 1 ? -1 : ids[50 + j];
    ModelLogits(7, batch_logits + (size_t)b * kVocab);
  }
  memcpy(dense_logits, batch_logits + kVocab, sizeof(float) * kVocab);
  CHECK_OK(tracemark_process_batch(wm, NULL, kBatch, contexts, hw, batch_logits, kVocab, NULL,
                                   batch_results, &err_));
  CHECK(batch_results[1].layer == TRACEMARK_LAYER_NONE && batch_results[1].token_chosen == 0);
  CHECK(memcmp(dense_logits, batch_logits + kVocab, sizeof(float) * kVocab) == 0);
  /* Shapes that disagree with the configuration. */
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_batch(wm, NULL, kBatch, contexts, hw - 1, batch_logits, kVocab,
                                      NULL, batch_results, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_batch(wm, NULL, kBatch, contexts, hw, batch_logits, kVocab - 1,
                                      NULL, batch_results, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_batch(wm, NULL, kBatch, contexts, hw, batch_logits, kVocab, NULL,
                                      NULL, &err_));
  /* A NaN in one row: INVALID_ARGUMENT and no row modified. */
  memcpy(dense_logits, batch_logits, sizeof(float) * kBatch * kVocab);
  batch_logits[3 * kVocab + 5] = NAN;
  dense_logits[3 * kVocab + 5] = NAN;
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_batch(wm, accounts, kBatch, contexts, hw, batch_logits, kVocab,
                                      NULL, batch_results, &err_));
  CHECK(memcmp(dense_logits, batch_logits, sizeof(float) * kBatch * kVocab) == 0);
  free(contexts);
  free(batch_logits);
  free(dense_logits);
}

/* Sparse candidates: the full vocabulary behaves like the dense row; a top-k list is accepted. */
static void TestSparse(const tracemark_watermarker_t* wm, const tracemark_account_t* a77,
                       const int32_t* ids) {
  float dense[kVocab];
  tracemark_candidate cands[kVocab];
  tracemark_step_result rd, rs;
  int pos, v, matched = 1, in_list;
  for (pos = 40; pos < 60; ++pos) {
    ModelLogits(ids[pos - 1], dense);
    for (v = 0; v < kVocab; ++v) {
      cands[v].id = v;
      cands[v].logit = dense[v];
    }
    CHECK_OK(tracemark_process_dense(wm, a77, ids, (size_t)pos, dense, kVocab, NULL, &rd, &err_));
    CHECK_OK(tracemark_process_sparse(wm, a77, ids, (size_t)pos, cands, kVocab, NULL, &rs, &err_));
    matched &= rd.layer == rs.layer && rd.token_chosen == rs.token_chosen && rd.token == rs.token;
    for (v = 0; v < kVocab; ++v) matched &= memcmp(&dense[v], &cands[v].logit, sizeof(float)) == 0;
    /* A top-k list: the first 50 ids (any subset will do). */
    ModelLogits(ids[pos - 1], dense);
    for (v = 0; v < 50; ++v) {
      cands[v].id = 3 * v;
      cands[v].logit = dense[3 * v];
    }
    CHECK_OK(tracemark_process_sparse(wm, a77, ids, (size_t)pos, cands, 50, NULL, &rs, &err_));
    in_list = !rs.token_chosen;
    for (v = 0; v < 50; ++v) in_list |= rs.token_chosen && cands[v].id == rs.token;
    CHECK(in_list);
  }
  CHECK(matched);
  cands[0].id = kVocab; /* outside the vocabulary */
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_sparse(wm, a77, ids, 50, cands, 50, NULL, &rs, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_sparse(wm, a77, ids, 50, cands, 0, NULL, &rs, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_sparse(wm, a77, ids, 50, NULL, 50, NULL, &rs, &err_));
}

static void TestScheme(const char* spec, tracemark_key_t* epoch) {
  tracemark_config_t* cfg = NULL;
  tracemark_watermarker_t* wm = NULL;
  tracemark_detector_t* det = NULL;
  tracemark_account_t *a77 = NULL, *a78 = NULL;
  tracemark_stats_t *stats = tracemark_stats_create(), *half1 = tracemark_stats_create(),
                    *half2 = tracemark_stats_create();
  tracemark_provider_result provider;
  tracemark_account_result acct;
  int32_t ids[kTotal];
  float logits[kVocab], before[kVocab];
  tracemark_step_result step;
  char acct_id[TRACEMARK_KEY_ID_SIZE];
  int decoded = 0;
  uint64_t decoded_account = 0;
  size_t h = 0;

  CHECK(stats != NULL && half1 != NULL && half2 != NULL);
  CHECK_OK(tracemark_config_create(spec, kVocab, &cfg, &err_));
  CHECK_OK(tracemark_watermarker_create(epoch, cfg, &wm, &err_));
  CHECK_OK(tracemark_detector_create(epoch, cfg, &det, &err_));
  h = (size_t)tracemark_config_context_width(cfg);
  tracemark_config_destroy(cfg); /* handles do not keep the config */
  CHECK_OK(tracemark_watermarker_account(wm, 77, &a77, &err_));
  CHECK_OK(tracemark_watermarker_account(wm, 78, &a78, &err_));
  CHECK_OK(tracemark_account_key_id(a77, acct_id, &err_));
  CHECK(IsHex(acct_id, 16));
  if (wm == NULL || det == NULL || a77 == NULL || a78 == NULL || stats == NULL) goto done;

  CHECK(Generate(wm, a77, 12345, ids));
  CHECK_OK(tracemark_detector_score(det, ids, kTotal, kPrompt, stats, &err_));
  CHECK(tracemark_stats_size(stats) > 0);
  CHECK_OK(tracemark_detector_test_provider(det, stats, &provider, &err_));
  printf("  %-14s provider: %llu tuples, score %.1f, log10 p %.1f\n", spec,
         (unsigned long long)provider.tuples, provider.score, provider.log10_p);
  CHECK(provider.tuples > 0 && provider.log10_p < -6);
  CHECK_OK(tracemark_detector_test_account(det, stats, 77, &acct, &err_));
  printf("  %-14s account 77: %llu tuples, score %.1f, log10 p %.1f\n", spec,
         (unsigned long long)acct.tuples, acct.score, acct.log10_p);
  CHECK(acct.log10_p < -6);
  CHECK(strcmp(acct.key_id, acct_id) == 0);
  CHECK_OK(tracemark_detector_test_account(det, stats, 78, &acct, &err_));
  printf("  %-14s account 78: log10 p %.1f\n", spec, acct.log10_p);
  CHECK(acct.log10_p > -3);
  CHECK_OK(tracemark_detector_decode_payload(det, stats, 1000, &decoded, &decoded_account, &err_));
  CHECK(decoded == 1 && decoded_account == 77);
  {
    /* The CLI's attribution rule: decode, confirm, correct for the candidates, compare. */
    tracemark_attribution at, at4;
    CHECK_OK(tracemark_detector_attribute(det, stats, 1000, TRACEMARK_DEFAULT_MAX_CANDIDATES,
                                          TRACEMARK_DEFAULT_ALPHA, &at, &err_));
    printf("  %-14s attributed %d to %llu: log10 p %.1f over %llu candidate(s)\n", spec,
           at.attributed, (unsigned long long)at.account, at.log10_p,
           (unsigned long long)at.candidates_confirmed);
    CHECK(at.attributed == 1 && at.account == 77 && at.candidates_confirmed == 1);
    CHECK(at.log10_p < -6);
    CHECK_OK(
        tracemark_detector_attribute(det, stats, 1000, 4, TRACEMARK_DEFAULT_ALPHA, &at4, &err_));
    CHECK(at4.candidates_confirmed >= 1 && at4.candidates_confirmed <= 4 && at4.account == 77);
    CHECK(at4.log10_p >= at.log10_p - 1e-9); /* more candidates: a larger correction */
    CHECK_OK(tracemark_detector_attribute(det, stats, 1000, 1, 1e-300, &at, &err_));
    CHECK(at.attributed == (at.log10_p <= -300 ? 1 : 0));
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_detector_attribute(det, stats, 1000, 1, 0.0, &at, &err_));
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_detector_attribute(det, stats, 1000, 0, 1e-6, &at, &err_));
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
                tracemark_detector_attribute(det, stats, 1000, 1, 1e-6, NULL, &err_));
  }
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_account(det, stats, UINT64_MAX, &acct, &err_));

  /* Statistics merge exactly: two overlapping halves give the whole. */
  CHECK_OK(tracemark_detector_score(det, ids, kTotal / 2 + 10, kPrompt, half1, &err_));
  CHECK_OK(tracemark_detector_score(det, ids, kTotal, kTotal / 2, half2, &err_));
  CHECK_OK(tracemark_stats_merge(half1, half2, &err_));
  CHECK(tracemark_stats_size(half1) == tracemark_stats_size(stats));
  /* Ids outside the vocabulary: INVALID_ARGUMENT, nothing added. */
  {
    const int32_t bad[6] = {1, 2, 3, 4, kVocab, 5};
    const uint64_t size = tracemark_stats_size(stats);
    CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_detector_score(det, bad, 6, 0, stats, &err_));
    CHECK(tracemark_stats_size(stats) == size);
  }

  /* A NaN logit: INVALID_ARGUMENT with a message, nothing modified. */
  ModelLogits(ids[99], logits);
  logits[17] = NAN;
  memcpy(before, logits, sizeof logits);
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, a77, ids, 100, logits, kVocab, NULL, &step, &err_));
  CHECK(memcmp(before, logits, sizeof logits) == 0);
  ModelLogits(ids[99], logits);
  logits[3] = INFINITY;
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, a77, ids, 100, logits, kVocab, NULL, &step, &err_));
  ModelLogits(ids[99], logits);
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, a77, ids, 100, logits, kVocab - 1, NULL, &step, &err_));
  /* A context shorter than h leaves the logits alone. */
  memcpy(before, logits, sizeof logits);
  CHECK_OK(tracemark_process_dense(wm, a77, ids, 1, logits, kVocab, NULL, &step, &err_));
  CHECK(step.layer == TRACEMARK_LAYER_NONE && memcmp(before, logits, sizeof logits) == 0);

  TestSparse(wm, a77, ids);
  TestBatch(wm, a77, a78, ids, h);

done:
  tracemark_stats_destroy(half2);
  tracemark_stats_destroy(half1);
  tracemark_stats_destroy(stats);
  tracemark_account_destroy(a78);
  tracemark_account_destroy(a77);
  tracemark_detector_destroy(det);
  tracemark_watermarker_destroy(wm);
}

/* Handles made under one key or configuration are refused by another. */
static void TestMismatchedHandles(tracemark_key_t* epoch) {
  tracemark_config_t *kgw = NULL, *gumbel = NULL;
  tracemark_watermarker_t *wm_kgw = NULL, *wm_gumbel = NULL;
  tracemark_detector_t *det_kgw = NULL, *det_gumbel = NULL;
  tracemark_account_t* acct = NULL;
  tracemark_stats_t *stats = tracemark_stats_create(), *other = tracemark_stats_create();
  tracemark_provider_result provider;
  tracemark_step_result step;
  float logits[kVocab];
  int32_t ids[kTotal];
  int i;
  for (i = 0; i < kTotal; ++i) ids[i] = (int32_t)(Mix64((uint64_t)i) % kVocab);
  CHECK_OK(tracemark_config_create("scheme=kgw", kVocab, &kgw, &err_));
  CHECK_OK(tracemark_config_create("scheme=gumbel", kVocab, &gumbel, &err_));
  CHECK_OK(tracemark_watermarker_create(epoch, kgw, &wm_kgw, &err_));
  CHECK_OK(tracemark_watermarker_create(epoch, gumbel, &wm_gumbel, &err_));
  CHECK_OK(tracemark_detector_create(epoch, kgw, &det_kgw, &err_));
  CHECK_OK(tracemark_detector_create(epoch, gumbel, &det_gumbel, &err_));
  CHECK_OK(tracemark_watermarker_account(wm_kgw, 77, &acct, &err_));
  ModelLogits(1, logits);
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_process_dense(wm_gumbel, acct, ids, 10, logits,
                                                                  kVocab, NULL, &step, &err_));
  CHECK_OK(tracemark_detector_score(det_kgw, ids, kTotal, kPrompt, stats, &err_));
  CHECK_OK(tracemark_detector_score(det_gumbel, ids, kTotal, kPrompt, other, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_provider(det_gumbel, stats, &provider, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_score(det_gumbel, ids, kTotal, kPrompt, stats, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_stats_merge(stats, other, &err_));
  /* Unwatermarked text shows nothing. */
  CHECK_OK(tracemark_detector_test_provider(det_kgw, stats, &provider, &err_));
  CHECK(provider.log10_p > -3);
  tracemark_stats_destroy(other);
  tracemark_stats_destroy(stats);
  tracemark_account_destroy(acct);
  tracemark_detector_destroy(det_gumbel);
  tracemark_detector_destroy(det_kgw);
  tracemark_watermarker_destroy(wm_gumbel);
  tracemark_watermarker_destroy(wm_kgw);
  tracemark_config_destroy(gumbel);
  tracemark_config_destroy(kgw);
}

/* NULL handles and outputs: INVALID_ARGUMENT with a message, never a crash. */
static void TestNullHandles(tracemark_key_t* epoch) {
  tracemark_config_t* cfg = NULL;
  tracemark_watermarker_t* wm = NULL;
  tracemark_detector_t* det = NULL;
  tracemark_stats_t* stats = tracemark_stats_create();
  tracemark_key_t* key = NULL;
  tracemark_watermarker_t* wm2 = NULL;
  tracemark_detector_t* det2 = NULL;
  tracemark_account_t* acct = NULL;
  tracemark_provider_result provider;
  tracemark_account_result ar;
  tracemark_step_result step;
  tracemark_candidate cand = {1, 0.5f};
  float logits[kVocab];
  const int32_t ids[4] = {1, 2, 3, 4};
  char buf[TRACEMARK_COMMITMENT_SIZE];
  int decoded;
  uint64_t account;
  memset(logits, 0, sizeof logits);
  CHECK_OK(tracemark_config_create("scheme=kgw", kVocab, &cfg, &err_));
  CHECK_OK(tracemark_watermarker_create(epoch, cfg, &wm, &err_));
  CHECK_OK(tracemark_detector_create(epoch, cfg, &det, &err_));

  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_read_file(NULL, &key, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_read_file("x", NULL, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_from_env(NULL, &key, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_generate_file(NULL, buf, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_derive_epoch(NULL, 0, &key, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_id(NULL, buf, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_id(epoch, NULL, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_key_commitment(NULL, buf, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_watermarker_create(NULL, cfg, &wm2, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_watermarker_create(epoch, NULL, &wm2, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_watermarker_account(NULL, 1, &acct, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_account_key_id(NULL, buf, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(NULL, NULL, ids, 4, logits, kVocab, NULL, &step, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, NULL, ids, 4, logits, kVocab, NULL, NULL, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, NULL, NULL, 4, logits, kVocab, NULL, &step, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_dense(wm, NULL, ids, 4, NULL, kVocab, NULL, &step, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_sparse(NULL, NULL, ids, 4, &cand, 1, NULL, &step, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_process_batch(NULL, NULL, 1, ids, 3, logits, kVocab, NULL, &step, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_detector_create(NULL, cfg, &det2, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_detector_create(epoch, NULL, &det2, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_detector_score(NULL, ids, 4, 0, stats, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_detector_score(det, ids, 4, 0, NULL, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_provider(NULL, stats, &provider, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_provider(det, NULL, &provider, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_provider(det, stats, NULL, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_test_account(NULL, stats, 1, &ar, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_decode_payload(NULL, stats, 0, &decoded, &account, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_detector_decode_payload(det, stats, 0, NULL, &account, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_stats_merge(NULL, stats, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_stats_merge(stats, NULL, &err_));
  CHECK(tracemark_stats_size(NULL) == 0);
  CHECK(key == NULL && wm2 == NULL && det2 == NULL && acct == NULL);
  /* Destroy and reset accept NULL. */
  tracemark_sequence_reset(NULL);
  tracemark_sequence_destroy(NULL);
  tracemark_stats_destroy(NULL);
  tracemark_account_destroy(NULL);
  tracemark_watermarker_destroy(NULL);
  tracemark_detector_destroy(NULL);

  tracemark_stats_destroy(stats);
  tracemark_detector_destroy(det);
  tracemark_watermarker_destroy(wm);
  tracemark_config_destroy(cfg);
}

/* The serving ledger through the C ABI: one record per tracemark_end_response, the response's ids
 * as served, checked with `tracemark ledger show` when the CLI's path is given. */
static void TestLedger(tracemark_key_t* epoch, const char* cli) {
  char dir[] = "/tmp/tracemark_c_ledger_XXXXXX";
  char cmd[512];
  tracemark_config_t* cfg = NULL;
  tracemark_watermarker_t* wm = NULL;
  tracemark_account_t* acct = NULL;
  tracemark_ledger_t* ledger = NULL;
  tracemark_sequence_t* seq = tracemark_sequence_create();
  int32_t ids[kTotal];
  const int32_t negative[2] = {5, -1};
  CHECK(mkdtemp(dir) != NULL);
  CHECK_OK(tracemark_config_create("scheme=kgw", kVocab, &cfg, &err_));
  CHECK_OK(tracemark_watermarker_create(epoch, cfg, &wm, &err_));
  CHECK_OK(tracemark_watermarker_account(wm, 42, &acct, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_ledger_open(NULL, &ledger, &err_));
  CHECK_OK(tracemark_ledger_open(dir, &ledger, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_watermarker_set_ledger(wm, ledger, 0, NULL, &err_));
  CHECK_OK(tracemark_watermarker_set_ledger(wm, ledger, 0, "tiktoken:test", &err_));
  CHECK(Generate(wm, acct, 11, ids));
  CHECK_OK(tracemark_end_response(wm, acct, ids, kPrompt, ids + kPrompt, kGenerate, seq, &err_));
  CHECK_OK(tracemark_end_response(wm, NULL, NULL, 0, ids, 3, NULL, &err_)); /* anonymous */
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_end_response(wm, acct, ids, kPrompt, negative, 2, seq, &err_));
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT,
              tracemark_end_response(wm, acct, NULL, 3, ids, 3, seq, &err_));
  CHECK(tracemark_ledger_records(ledger) == 2);
  CHECK_OK(tracemark_ledger_close(ledger, &err_));
  CHECK_FAILS(TRACEMARK_FAILED_PRECONDITION,
              tracemark_end_response(wm, acct, ids, kPrompt, ids + kPrompt, 3, seq, &err_));
  if (cli != NULL) { /* 2 records, one anonymous, 800 + 3 response ids */
    snprintf(cmd, sizeof cmd,
             "%s ledger show %s --json > %s.json && grep -q '\"records\": 2,' %s.json && "
             "grep -q '\"anonymous_records\": 1,' %s.json && "
             "grep -q '\"response_ids\": %d,' %s.json && rm %s.json",
             cli, dir, dir, dir, dir, kGenerate + 3, dir, dir);
    CHECK(system(cmd) == 0);
  }
  /* Detached again: end_response writes nothing. */
  CHECK_OK(tracemark_watermarker_set_ledger(wm, NULL, 0, NULL, &err_));
  CHECK_OK(tracemark_end_response(wm, acct, ids, kPrompt, ids + kPrompt, kGenerate, seq, &err_));
  CHECK(tracemark_ledger_records(NULL) == 0);
  CHECK_FAILS(TRACEMARK_INVALID_ARGUMENT, tracemark_ledger_close(NULL, &err_));
  tracemark_ledger_destroy(NULL);
  tracemark_ledger_destroy(ledger);
  tracemark_sequence_destroy(seq);
  tracemark_account_destroy(acct);
  tracemark_watermarker_destroy(wm);
  tracemark_config_destroy(cfg);
  if (cli != NULL) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
  }
}

int main(int argc, char** argv) {
  tracemark_key_t* epoch;
  printf("tracemark %s C ABI test\n", tracemark_version());
  TestMisc();
  TestKeys();
  TestConfig();
  epoch = FixedEpochKey();
  if (epoch != NULL) {
    TestScheme("scheme=kgw", epoch);
    TestScheme("scheme=gumbel", epoch);
    TestMismatchedHandles(epoch);
    TestNullHandles(epoch);
    TestLedger(epoch, argc > 1 ? argv[1] : NULL);
  }
  tracemark_key_destroy(epoch);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
