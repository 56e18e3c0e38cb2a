#include "tracemark/probe/probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tracemark/base/file_io.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/net/http_client.h"
#include "tracemark/watermark/digest.h"
#include "tracemark/watermark/prf.h"

namespace tracemark::probe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kAnswersFile[] = "answers.jsonl";
constexpr char kManifestFile[] = ".tracemark-probe.json";
constexpr size_t kMaxFailuresListed = 100;
// Requests refused alike (one 4xx status, before any answer) after which a probe stops.
constexpr uint64_t kStopAfterRefusals = 8;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Sleeps up to `seconds`, in slices, returning early (false) when `stop` is set.
bool SleepUnlessStopped(double seconds, const std::atomic<bool>* stop) {
  const Clock::time_point until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    if (stop != nullptr && stop->load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(
        std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(100)),
        until - Clock::now()));
  }
  return stop == nullptr || !stop->load();
}

// What the settings that shape the answers are; a resumed probe must have the same.
json Settings(const std::vector<ProbePrompt>& prompts, const ProbeOptions& o) {
  std::string all;
  for (const ProbePrompt& p : prompts) {
    absl::StrAppend(&all, p.id.size(), ":", p.id, p.text, "\n");
    for (int32_t id : p.window) absl::StrAppend(&all, id, ",");
  }
  return {{"model", o.model},
          {"prompts", prompts.size()},
          {"prompts_sha256", watermark::Sha256Hex(all)},
          {"samples", o.samples},
          {"max_tokens", o.max_tokens},
          {"temperature", o.temperature},
          {"top_logprobs", o.top_logprobs}};
}

// Reads the ids already answered; cuts a torn last line off the file.
absl::StatusOr<absl::flat_hash_set<std::string>> ReadAnswered(const fs::path& path) {
  absl::flat_hash_set<std::string> ids;
  std::ifstream in(path, std::ios::binary);
  if (!in) return ids;
  std::string line;
  uint64_t good_end = 0, offset = 0;
  int n = 0;
  bool torn = false;
  while (std::getline(in, line)) {
    ++n;
    const bool complete = !in.eof();  // getline stopped at a newline
    offset += line.size() + (complete ? 1 : 0);
    json r = json::parse(line, nullptr, false);
    const bool ok = !r.is_discarded() && r.is_object() && r.contains("id") && r["id"].is_string();
    if (!ok || !complete) {
      if (in.peek() == EOF) {  // the last line: a write cut short
        torn = true;
        break;
      }
      return absl::DataLossError(absl::StrCat(path.string(), ":", n,
                                              " is not an answer record; the file was changed "
                                              "by something else (move it away to start over)"));
    }
    ids.insert(r["id"].get<std::string>());
    good_end = offset;
  }
  in.close();
  if (torn) {
    std::error_code ec;
    fs::resize_file(path, good_end, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot repair ", path.string()));
  }
  return ids;
}

struct Shared {
  const std::vector<ProbePrompt>* prompts;
  const ProbeOptions* options;
  const std::atomic<bool>* stop;
  std::string url;
  std::vector<std::pair<size_t, int>> work;  // (prompt index, sample) still to ask
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};  // set on stop or on a fatal error
  std::mutex mu;                    // guards the fields below, up to `start`
  std::condition_variable changed;  // an answer ended (answered, failed or fatal)
  FILE* out = nullptr;
  ProbeProgress counts;
  std::vector<std::string> failures;
  absl::Status fatal;
  // Requests refused, one after the other before any answer, with one and the same 4xx status.
  uint64_t refused_alike = 0;
  long refused_status = 0;
  Clock::time_point next_slot = Clock::now();
  Clock::time_point start = Clock::now();

  // Waits for the rate limiter's next slot; false when stopped meanwhile.
  bool AwaitSlot() {
    if (options->requests_per_second <= 0) return !cancel.load();
    Clock::time_point slot;
    {
      std::lock_guard<std::mutex> lock(mu);
      slot = std::max(next_slot, Clock::now());
      next_slot = slot + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(1.0 / options->requests_per_second));
    }
    const double wait = std::chrono::duration<double>(slot - Clock::now()).count();
    return wait <= 0 ? !cancel.load() : SleepUnlessStopped(wait, &cancel);
  }

  void Fail(const std::string& id, const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++counts.failed;
      if (failures.size() < kMaxFailuresListed) failures.push_back(absl::StrCat(id, ": ", why));
    }
    changed.notify_all();
  }

  void Fatal(absl::Status s) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (fatal.ok()) fatal = std::move(s);
      cancel = true;
    }
    changed.notify_all();
  }

  // A request the endpoint refused with a 4xx that asking again will not change. When the first
  // kStopAfterRefusals requests are all refused alike (a missing "model", a wrong --send), every
  // other request would be too: stop with the endpoint's own message.
  void Refused(long status, const std::string& message) {
    bool give_up = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (counts.answered == 0 && (refused_alike == 0 || refused_status == status)) {
        refused_status = status;
        give_up = ++refused_alike >= kStopAfterRefusals;
      } else {
        refused_alike = 0;
      }
    }
    if (give_up) {
      Fatal(absl::FailedPreconditionError(absl::StrCat(
          "the endpoint refused each of the first ", kStopAfterRefusals, " requests with HTTP ",
          status, " (", message,
          "); the probe stops, since every request would be (check --model and --send)")));
    }
  }

  absl::Status Append(const json& record) {
    const std::string line = Dump(record) + "\n";
    {
      std::lock_guard<std::mutex> lock(mu);
      if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0 ||
          ::fsync(::fileno(out)) != 0) {
        return absl::UnavailableError(
            absl::StrCat("cannot write the answers file: ", std::strerror(errno)));
      }
      ++counts.answered;
    }
    changed.notify_all();
    return absl::OkStatus();
  }
};

// A URL fit for messages: without user information or query, which may hold credentials.
std::string Redacted(const std::string& url) {
  std::string u = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = u.find("://");
  const size_t at = u.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  const size_t slash = u.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos &&
      (slash == std::string::npos || at < slash)) {
    u = u.substr(0, scheme + 3) + u.substr(at + 1);
  }
  return u;
}

// The endpoint's error message, shortened, for a failure reason.
std::string ServerMessage(const net::HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string m;
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    m = e.is_object() && e.contains("message") && e["message"].is_string()
            ? e["message"].get<std::string>()
            : Dump(e);
  } else {
    m = r.body;
  }
  if (m.size() > 200) m = m.substr(0, 200) + "...";
  return m;
}

bool Retryable(long status) {
  return status == 408 || status == 409 || status == 425 || status == 429 || status >= 500;
}

// The chat-completion request for one sample of prompt `p`.
std::string RequestBody(const ProbePrompt& p, int sample, const ProbeOptions& o) {
  json req = {{"messages", json::array({{{"role", "user"}, {"content", p.text}}})},
              {"max_tokens", o.max_tokens},
              {"temperature", o.temperature},
              {"seed", sample},
              {"n", 1}};
  if (!o.model.empty()) req["model"] = o.model;
  if (o.top_logprobs >= 0) {
    req["logprobs"] = true;
    req["top_logprobs"] = o.top_logprobs;
  }
  return Dump(req);
}

// The first choice's message content if `a` is a chat completion, else null.
const json* ChatContent(const json& a) {
  if (!a.is_discarded() && a.is_object() && a.contains("choices") && a["choices"].is_array() &&
      !a["choices"].empty() && a["choices"][0].is_object() && a["choices"][0].contains("message") &&
      a["choices"][0]["message"].is_object() && a["choices"][0]["message"].contains("content") &&
      a["choices"][0]["message"]["content"].is_string()) {
    return &a["choices"][0]["message"]["content"];
  }
  return nullptr;
}

// One (prompt, sample) to ask: work item `w`.
struct Question {
  size_t w;
  const ProbePrompt* prompt;
  int sample;
  std::string id;  // "<prompt id>/<sample>"
  std::string body;
};

// The answers-file record of the chat completion `a`, whose content is `content`.
json AnswerRecord(const Question& q, const json& a, const json& content) {
  const ProbePrompt& p = *q.prompt;
  const json& choice = a["choices"][0];
  json rec = {{"id", q.id},
              {"prompt_id", p.id},
              {"sample", q.sample},
              {"messages", json::array({{{"role", "user"}, {"content", p.text}},
                                        {{"role", "assistant"}, {"content", content}}})},
              {"model", a.value("model", json(nullptr))},
              {"finish_reason", choice.value("finish_reason", json(nullptr))},
              {"received", static_cast<int64_t>(std::time(nullptr))}};
  if (!p.window.empty()) rec["window"] = p.window;
  if (choice.contains("logprobs") && !choice["logprobs"].is_null()) {
    rec["logprobs"] = choice["logprobs"];
  }
  if (a.contains("usage")) rec["usage"] = a["usage"];
  return rec;
}

// What one attempt at a question came to.
enum class Attempt {
  kAnswered,  // the answer is in the answers file
  kRetry,     // may succeed if asked again (after a backoff)
  kGiveUp,    // asking again will not help, or the probe was cancelled
  kFatal,     // Shared::Fatal was called: the whole probe stops
};

// Asks the questions of `sh->work` in turn, with retries, until none is left or the probe stops.
class ProbeWorker {
 public:
  ProbeWorker(Shared* sh, net::HttpClient* client) : sh_(sh), o_(*sh->options), client_(client) {
    headers_ = {"Content-Type: application/json", "Accept: application/json"};
    if (!o_.api_key.empty()) headers_.push_back(absl::StrCat("Authorization: Bearer ", o_.api_key));
  }

  void Run() {
    while (!sh_->cancel.load() && !(sh_->stop != nullptr && sh_->stop->load())) {
      const size_t w = sh_->next.fetch_add(1);
      if (w >= sh_->work.size()) break;
      if (!Ask(MakeQuestion(w))) return;
    }
  }

 private:
  Question MakeQuestion(size_t w) const {
    const auto [pi, sample] = sh_->work[w];
    const ProbePrompt& p = (*sh_->prompts)[pi];
    return {w, &p, sample, absl::StrCat(p.id, "/", sample), RequestBody(p, sample, o_)};
  }

  // Asks `q` up to max_attempts times; records a failure unless answered or cancelled. False
  // after a fatal error.
  bool Ask(const Question& q) {
    std::string why;
    bool done = false;
    for (int attempt = 1; attempt <= o_.max_attempts; ++attempt) {
      if (attempt > 1) {
        std::lock_guard<std::mutex> lock(sh_->mu);
        ++sh_->counts.retries;
      }
      if (!sh_->AwaitSlot()) break;
      std::optional<double> wait;
      const Attempt outcome = AskOnce(q, &why, &wait);
      if (outcome == Attempt::kFatal) return false;
      if (outcome == Attempt::kAnswered) {
        done = true;
        break;
      }
      if (outcome == Attempt::kGiveUp || attempt == o_.max_attempts) break;
      if (!Backoff(q.w, attempt, wait)) break;
    }
    if (!done && !sh_->cancel.load()) sh_->Fail(q.id, why);
    return true;
  }

  // Sleeps before the next attempt: the server's Retry-After if it gave one, else an exponential
  // backoff with a keyed jitter; false when stopped meanwhile.
  bool Backoff(size_t w, int attempt, std::optional<double> wait) const {
    const double backoff = std::min(o_.max_backoff_s, 0.5 * std::pow(2.0, attempt - 1));
    const double u = watermark::UnitOpen(watermark::Mix(w, static_cast<uint64_t>(attempt)));
    const double delay = wait ? std::min(o_.max_backoff_s, *wait) : backoff * (0.5 + 0.5 * u);
    return SleepUnlessStopped(delay, &sh_->cancel);
  }

  // One request; *why says why it failed, *wait how long the server asked to wait.
  Attempt AskOnce(const Question& q, std::string* why, std::optional<double>* wait) {
    auto r = client_->Send("POST", sh_->url, headers_, q.body, o_.timeout_s, size_t{64} << 20,
                           &sh_->cancel);
    if (!r.ok()) return TransportFailed(r.status(), why);
    if (r->status == 200) return Answered(q, *r, why);
    if (r->status == 401 || r->status == 403) {
      sh_->Fatal(absl::Status(r->status == 401 ? absl::StatusCode::kUnauthenticated
                                               : absl::StatusCode::kPermissionDenied,
                              absl::StrCat("the endpoint refused the API key (HTTP ", r->status,
                                           "): ", ServerMessage(*r))));
      return Attempt::kFatal;
    }
    if (r->status == 404) {
      sh_->Fatal(absl::NotFoundError(absl::StrCat("no such endpoint or model (HTTP 404 from ",
                                                  Redacted(sh_->url), "): ", ServerMessage(*r))));
      return Attempt::kFatal;
    }
    *why = absl::StrCat("HTTP ", r->status, ": ", ServerMessage(*r));
    if (Retryable(r->status)) {
      *wait = r->retry_after_s;
      return Attempt::kRetry;
    }
    sh_->Refused(r->status, ServerMessage(*r));
    return Attempt::kGiveUp;  // this request is wrong; asking again will not help
  }

  Attempt TransportFailed(const absl::Status& status, std::string* why) {
    if (status.code() == absl::StatusCode::kCancelled) return Attempt::kGiveUp;
    if (status.code() == absl::StatusCode::kInvalidArgument) {
      sh_->Fatal(status);  // a bad URL: every request would fail alike
      return Attempt::kFatal;
    }
    *why = std::string(status.message());
    if (status.code() == absl::StatusCode::kResourceExhausted) return Attempt::kGiveUp;
    return Attempt::kRetry;
  }

  // An HTTP 200: appends the answer if it is a chat completion.
  Attempt Answered(const Question& q, const net::HttpResult& r, std::string* why) {
    const json a = json::parse(r.body, nullptr, false);
    const json* content = ChatContent(a);
    if (content == nullptr) {
      *why = "HTTP 200 but not a chat completion";
      return Attempt::kRetry;
    }
    if (absl::Status s = sh_->Append(AnswerRecord(q, a, *content)); !s.ok()) {
      sh_->Fatal(s);
      return Attempt::kFatal;
    }
    return Attempt::kAnswered;
  }

  Shared* const sh_;
  const ProbeOptions& o_;
  net::HttpClient* const client_;
  std::vector<std::string> headers_;
};

void Worker(Shared* sh) {
  auto client_or = net::HttpClient::Create();
  if (!client_or.ok()) return sh->Fatal(client_or.status());
  ProbeWorker(sh, client_or->get()).Run();
}

}  // namespace

absl::StatusOr<ProbeSummary> Probe(const std::vector<ProbePrompt>& prompts,
                                   const ProbeOptions& options, const std::string& out_dir,
                                   const std::function<void(const ProbeProgress&)>& progress,
                                   const std::atomic<bool>* stop) {
  if (options.endpoint.empty()) return absl::InvalidArgumentError("no endpoint");
  if (!absl::StartsWith(options.endpoint, "http://") &&
      !absl::StartsWith(options.endpoint, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the endpoint must be an http:// or https:// URL, not '", options.endpoint, "'"));
  }
  if (options.concurrency < 1 || options.concurrency > 256) {
    return absl::InvalidArgumentError("concurrency must be in 1..256");
  }
  if (options.max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
  if (!(options.timeout_s > 0)) return absl::InvalidArgumentError("timeout must be > 0");
  if (options.requests_per_second < 0) return absl::InvalidArgumentError("rate must be >= 0");
  if (options.samples < 1) return absl::InvalidArgumentError("samples must be >= 1");
  if (options.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be >= 1");
  if (options.top_logprobs < -1 || options.top_logprobs > 20) {
    return absl::InvalidArgumentError("top_logprobs must be in -1..20");
  }
  if (prompts.empty()) return absl::InvalidArgumentError("no prompts");
  absl::flat_hash_set<std::string> seen_ids;
  for (const ProbePrompt& p : prompts) {
    if (p.id.empty() || !seen_ids.insert(p.id).second) {
      return absl::InvalidArgumentError(absl::StrCat("empty or duplicate prompt id '", p.id, "'"));
    }
  }
  const fs::path dir(out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));

  const json settings = Settings(prompts, options);
  const fs::path manifest_path = dir / kManifestFile;
  json manifest = {{"tool", "tracemark probe"}, {"settings", settings}};
  if (fs::exists(manifest_path)) {
    std::ifstream in(manifest_path);
    json old = json::parse(in, nullptr, false);
    if (old.is_discarded() || !old.is_object() || !old.contains("settings")) {
      return absl::DataLossError(absl::StrCat(manifest_path.string(), " is unreadable"));
    }
    if (old["settings"] != settings) {
      return absl::FailedPreconditionError(
          absl::StrCat(out_dir, " holds answers of a different probe (", Dump(old["settings"]),
                       "; now: ", Dump(settings), "). Use another --out directory."));
    }
    manifest = old;
  } else if (fs::exists(dir / kAnswersFile)) {
    return absl::FailedPreconditionError(absl::StrCat(
        out_dir, " has an answers file but no ", kManifestFile, "; use another --out directory"));
  }
  manifest["endpoint"] = Redacted(options.endpoint);
  manifest["updated"] = static_cast<int64_t>(std::time(nullptr));
  TRACEMARK_RETURN_IF_ERROR(
      base::WriteFileAtomically(manifest_path.string(), manifest.dump(2) + "\n"));

  const fs::path answers_path = dir / kAnswersFile;
  TRACEMARK_ASSIGN_OR_RETURN(absl::flat_hash_set<std::string> answered, ReadAnswered(answers_path));
  Shared sh;
  sh.prompts = &prompts;
  sh.options = &options;
  sh.stop = stop;
  sh.url = absl::EndsWith(options.endpoint, "/chat/completions")
               ? options.endpoint
               : absl::StrCat(absl::EndsWith(options.endpoint, "/")
                                  ? options.endpoint.substr(0, options.endpoint.size() - 1)
                                  : options.endpoint,
                              "/chat/completions");
  uint64_t already = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (int s = 0; s < options.samples; ++s) {
      if (answered.contains(absl::StrCat(prompts[i].id, "/", s))) {
        ++already;
      } else {
        sh.work.emplace_back(i, s);
      }
    }
  }
  FILE* out = std::fopen(answers_path.c_str(), "ab");
  if (out == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", answers_path.string(), ": ", std::strerror(errno)));
  }
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.out = out;
    sh.counts.total = prompts.size() * static_cast<uint64_t>(options.samples);
    sh.counts.already = already;
  }
  std::vector<std::thread> workers;
  const int n = static_cast<int>(std::min<size_t>(static_cast<size_t>(options.concurrency),
                                                  std::max<size_t>(sh.work.size(), 1)));
  for (int i = 0; i < n; ++i) workers.emplace_back(Worker, &sh);
  auto snapshot = [&] {
    std::lock_guard<std::mutex> lock(sh.mu);
    ProbeProgress p = sh.counts;
    p.seconds = std::chrono::duration<double>(Clock::now() - sh.start).count();
    return p;
  };
  // Watch: progress, and the stop flag forwarded to the workers.
  auto finished = [&sh] {  // sh.mu held
    return sh.counts.answered + sh.counts.failed >= sh.work.size() || !sh.fatal.ok();
  };
  Clock::time_point last_report = Clock::now();
  while (true) {
    bool done;
    {
      std::unique_lock<std::mutex> lock(sh.mu);
      done = sh.changed.wait_for(lock, std::chrono::milliseconds(100), finished);
    }
    if (stop != nullptr && stop->load()) sh.cancel = true;
    if (done || sh.cancel.load()) break;
    if (progress && Clock::now() - last_report >= std::chrono::milliseconds(500)) {
      progress(snapshot());
      last_report = Clock::now();
    }
  }
  for (auto& t : workers) t.join();
  std::fclose(out);
  ProbeSummary summary;
  summary.counts = snapshot();
  summary.answers_path = answers_path.string();
  absl::Status fatal;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    summary.failures = sh.failures;
    fatal = sh.fatal;
  }
  summary.interrupted = stop != nullptr && stop->load();
  if (progress) progress(summary.counts);
  manifest["updated"] = static_cast<int64_t>(std::time(nullptr));
  manifest["answers"] = summary.counts.already + summary.counts.answered;
  manifest["last_run"] = {{"answered", summary.counts.answered},
                          {"failed", summary.counts.failed},
                          {"retries", summary.counts.retries},
                          {"seconds", summary.counts.seconds},
                          {"interrupted", summary.interrupted},
                          {"error", fatal.ok() ? json(nullptr) : json(fatal.ToString())}};
  TRACEMARK_RETURN_IF_ERROR(
      base::WriteFileAtomically(manifest_path.string(), manifest.dump(2) + "\n"));
  if (!fatal.ok()) return fatal;
  return summary;
}

}  // namespace tracemark::probe
