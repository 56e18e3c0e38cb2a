// Black-box probing of a suspect model's public API: the elicitation suite (or any prompts) sent to
// an OpenAI-compatible chat-completions endpoint, the answers collected into a directory that
// `tracemark scan` takes as input.
//
//   ProbeOptions o;
//   o.endpoint = "https://api.example.com/v1";  o.model = "their-model";  o.api_key = ...;
//   TRACEMARK_ASSIGN_OR_RETURN(ProbeSummary s, Probe(prompts, o, "out/probe", progress));
//
// The directory holds answers.jsonl (one OpenAI-messages record per answer: the prompt as the user
// turn, the answer as the assistant turn, its id "PROMPT_ID/SAMPLE", and the endpoint's per-token
// log-probabilities when asked for) and .tracemark-probe.json (what was asked, of which model,
// with which settings; hidden so that a scan of the directory reads only the answers).
//
// Resumable: answers already in the directory are not asked again, so a probe interrupted (or
// killed) and rerun with the same prompts and settings finishes the rest. A torn last line (a
// kill during a write) is cut off. Rerunning with a different model, prompts or sampling settings
// is refused (FailedPrecondition): use another directory. Each answer is flushed and fsync'ed as
// it arrives.
//
// Failures: transport errors, timeouts, HTTP 408/409/425/429/5xx and answers that are not a chat
// completion are retried with exponential backoff and jitter (honouring Retry-After, up to
// max_backoff_s), at most max_attempts times per request; then that prompt is counted as failed
// and the probe goes on (a rerun asks it again). HTTP 401/403 (the key is refused) and 404 (no
// such endpoint or model) stop the whole probe with that status, since every request would fail
// alike. Other 4xx fail the one prompt. The API key is sent as a bearer token and written nowhere.
//
// Thread-safety: Probe() runs `concurrency` worker threads itself; call it once per directory.
#ifndef TRACEMARK_PROBE_PROBE_H_
#define TRACEMARK_PROBE_PROBE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tracemark::probe {

struct ProbePrompt {
  std::string id;    // unique among the prompts
  std::string text;  // sent as the user message
  // A window probe: the ids of the window whose text `text` is, written to the record as
  // "window"; `tracemark scan` then scores the answer's most likely first token after exactly this
  // window (white_box.h). Empty for ordinary prompts.
  std::vector<int32_t> window;
};

struct ProbeOptions {
  // Base URL ("http://127.0.0.1:8080/v1"): requests go to ENDPOINT/chat/completions, or to
  // ENDPOINT itself when it already ends in /chat/completions.
  std::string endpoint;
  std::string model;               // the request's "model" field (empty: not sent)
  std::string api_key;             // bearer token (empty: no Authorization header)
  int concurrency = 4;             // requests in flight at once
  double requests_per_second = 0;  // 0: no limit (retries count against it too)
  int max_attempts = 6;            // per request, the first included
  double timeout_s = 120;          // per attempt
  double max_backoff_s = 60;       // longest wait between attempts
  int samples = 1;                 // answers per prompt; sample k sends "seed": k
  int max_tokens = 256;
  double temperature = 1.0;
  int top_logprobs = -1;  // -1: no log-probabilities; 0..20: "logprobs": true and this many
};

struct ProbeProgress {
  uint64_t total = 0;     // answers wanted (prompts x samples)
  uint64_t already = 0;   // found in the directory at the start
  uint64_t answered = 0;  // collected by this run
  uint64_t failed = 0;    // given up after max_attempts (or a non-retryable 4xx)
  uint64_t retries = 0;   // attempts after the first
  double seconds = 0;
};

struct ProbeSummary {
  ProbeProgress counts;
  std::vector<std::string> failures;  // "ID: reason" for each failed answer (first 100)
  bool interrupted = false;           // `stop` was set before every answer was in
  std::string answers_path;
};

// Collects the answers into `out_dir` (created if missing). `progress`, if set, is called from
// the calling thread about twice a second and once at the end. Setting `*stop` (e.g. from a
// signal handler) abandons requests in flight within about a second and returns what was
// collected, with interrupted set. Errors: InvalidArgument for bad options or duplicate prompt
// ids, FailedPrecondition for a directory of a different probe, DataLoss for a corrupt answers
// file (other than a torn last line), Unauthenticated/PermissionDenied/NotFound as above, and
// I/O errors writing the directory.
absl::StatusOr<ProbeSummary> Probe(const std::vector<ProbePrompt>& prompts,
                                   const ProbeOptions& options, const std::string& out_dir,
                                   const std::function<void(const ProbeProgress&)>& progress = {},
                                   const std::atomic<bool>* stop = nullptr);

}  // namespace tracemark::probe

#endif  // TRACEMARK_PROBE_PROBE_H_
