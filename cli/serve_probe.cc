// tracemark model serve (an OpenAI-compatible endpoint on loopback) and tracemark probe (the
// elicitation suite sent to any such endpoint).
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "commands.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/suite.h"
#include "tracemark/dataset/input.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/net/http_server.h"
#include "tracemark/probe/probe.h"
#include "tracemark/probe/window_probes.h"
#include "tracemark/reference/openai_endpoint.h"
#include "tracemark/watermark/secret.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

void CatchStopSignals() {
  g_stop = false;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

absl::Status ModelServe(const ServeFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(refmodel::KneserNeyModel model, LoadModel(f.common, f.model));
  reference::OpenAiEndpointOptions eo;
  eo.model_name = f.name;
  eo.max_tokens_limit = f.max_tokens_limit;
  std::unique_ptr<watermark::Watermarker> wm;
  std::optional<canary::Lexicon> lexicon_holder;
  std::unique_ptr<canary::CanaryProcessor> canary_proc;
  if (!f.api_keys.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(eo.api_key_accounts, reference::ReadApiKeyFile(f.api_keys));
  }
  if (f.watermark) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Config config, LoadConfig(f.common, tok->vocab_size()));
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key,
                               watermark::DeriveEpochKey(master, f.epoch));
    TRACEMARK_ASSIGN_OR_RETURN(wm, watermark::Watermarker::Create(epoch_key, config));
    eo.watermarker = wm.get();
    if (f.canary) {
      TRACEMARK_ASSIGN_OR_RETURN(canary_proc,
                                 detect::LoadCanaryProcessor(f.lexicon, *tok, &lexicon_holder));
      eo.canary = canary_proc.get();
    }
  } else if (f.canary || !f.ledger.empty() || !f.common.key_file.empty() ||
             !f.common.key_env.empty()) {
    return absl::InvalidArgumentError("--canary, --ledger and --key go with --provider");
  }
  std::unique_ptr<ledger::Writer> ledger_writer;
  engine::LedgerStage ledger_stage;
  if (!f.ledger.empty()) {
    TRACEMARK_ASSIGN_OR_RETURN(ledger_writer, ledger::Writer::Open(f.ledger));
    ledger_stage = {ledger_writer.get(), f.epoch, f.common.encoding};
    eo.ledger = &ledger_stage;
  }
  if (f.watermark && eo.api_key_accounts.empty()) {
    std::cerr << "tracemark: warning: no --api-keys: answers carry the provider layer only\n";
  }
  const reference::ReferenceGenerator gen(&model, tok.get());
  const reference::OpenAiEndpoint endpoint(&gen, tok.get(), std::move(eo));
  net::HttpServerOptions so;
  so.host = f.host;
  so.port = f.port;
  so.threads = f.threads;
  TRACEMARK_ASSIGN_OR_RETURN(
      std::unique_ptr<net::HttpServer> server,
      net::HttpServer::Start(so, [&](const net::HttpRequest& r) { return endpoint.Handle(r); }));
  if (!f.port_file.empty()) {
    std::ofstream(f.port_file) << server->port() << "\n";
  }
  CatchStopSignals();
  std::cerr << "serving '" << f.name << "' on http://" << f.host << ":" << server->port() << "/v1 ("
            << (f.watermark ? "watermarked" : "plain") << "; Ctrl-C stops)\n";
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Stop();
  std::cerr << "stopped after " << endpoint.completions() << " completions\n";
  if (ledger_writer) {
    TRACEMARK_RETURN_IF_ERROR(ledger_writer->Close());
    std::cerr << "ledger: " << ledger_writer->stats().records << " records in "
              << ledger_writer->path() << "\n";
  }
  return absl::OkStatus();
}

namespace {

// Window probes (probe/window_probes.h) of the data in --windows-from.
absl::StatusOr<std::vector<probe::ProbePrompt>> WindowPrompts(const ProbeFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Config config, LoadConfig(f.common, tok->vocab_size()));
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<dataset::DocumentReader> reader,
                             dataset::DocumentReader::Open(f.windows_from));
  absl::StatusOr<probe::WindowProbeSample> sample =
      probe::WindowProbes(*reader, *tok, config.context_width, f.windows);
  if (!sample.ok()) {
    return absl::Status(sample.status().code(),
                        absl::StrCat("--windows-from: ", sample.status().message()));
  }
  std::cerr << "window probes: " << sample->prompts.size() << " of " << sample->distinct_windows
            << " distinct windows of " << config.context_width << " tokens\n";
  return std::move(sample->prompts);
}

// The prompts sent: window probes of --windows-from, else the suite's (built-in or --suite; the
// first --limit), as chat instructions or as raw prefixes (--send). The suite is parsed, and
// --send checked, in either case.
absl::StatusOr<std::vector<probe::ProbePrompt>> ProbePrompts(const ProbeFlags& f) {
  if (!f.windows_from.empty()) {
    if (!f.suite.empty() || f.limit > 0) {
      return absl::InvalidArgumentError("--windows-from replaces the suite: drop --suite/--limit");
    }
  }
  std::string suite_text;
  if (f.suite.empty()) {
    suite_text = std::string(canary::BuiltInSuiteText());
  } else {
    TRACEMARK_ASSIGN_OR_RETURN(suite_text, ReadInput(f.suite));
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<canary::SuitePrompt> suite,
                             canary::ParseSuite(suite_text));
  if (f.prompt_field != "prompt" && f.prompt_field != "prefix") {
    return absl::InvalidArgumentError("--send must be 'prompt' (chat models) or 'prefix'");
  }
  if (!f.windows_from.empty()) return WindowPrompts(f);
  std::vector<probe::ProbePrompt> prompts;
  for (const canary::SuitePrompt& p : suite) {
    if (f.limit > 0 && prompts.size() >= f.limit) break;
    prompts.push_back({p.id, f.prompt_field == "prefix" ? p.prefix : p.prompt, {}});
  }
  return prompts;
}

// The requests' options from the flags, with the API key from --api-key-env (the caller wipes
// o->api_key after use).
absl::Status FillProbeOptions(const ProbeFlags& f, probe::ProbeOptions* o) {
  o->endpoint = f.endpoint;
  o->model = f.model;
  if (!f.api_key_env.empty()) {
    const char* v = std::getenv(f.api_key_env.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("--api-key-env: $", f.api_key_env, " is not set"));
    }
    o->api_key = v;
  }
  o->concurrency = f.concurrency;
  o->requests_per_second = f.rate;
  o->max_attempts = f.attempts;
  o->timeout_s = f.timeout;
  o->samples = f.samples;
  o->max_tokens = f.max_tokens;
  o->temperature = f.temperature;
  o->top_logprobs = f.logprobs;
  if (!f.windows_from.empty()) {  // one token, and its most likely alternative, is all it needs
    o->max_tokens = 1;
    o->top_logprobs = std::max(1, f.logprobs);
  }
  return absl::OkStatus();
}

// The progress line on a terminal, redrawn in place.
void PrintProgress(const probe::ProbeProgress& p) {
  const uint64_t have = p.already + p.answered;
  std::cerr << absl::StrFormat(
      "\r  %llu / %llu answers (%llu this run, %llu failed, %llu retries) %.0f s   ",
      static_cast<unsigned long long>(have), static_cast<unsigned long long>(p.total),
      static_cast<unsigned long long>(p.answered), static_cast<unsigned long long>(p.failed),
      static_cast<unsigned long long>(p.retries), p.seconds);
}

// The run's summary (and its first failures) on stdout. Cancelled when interrupted, Unavailable
// when answers failed: both say that rerunning the same command asks for the rest.
absl::Status ReportProbe(const probe::ProbeSummary& s, const std::string& out) {
  const auto& c = s.counts;
  std::cout << absl::StrFormat(
      "%llu of %llu answers in %s (%llu collected now, %llu already there); %llu failed, %llu "
      "retries, %.1f s\n",
      static_cast<unsigned long long>(c.already + c.answered),
      static_cast<unsigned long long>(c.total), s.answers_path,
      static_cast<unsigned long long>(c.answered), static_cast<unsigned long long>(c.already),
      static_cast<unsigned long long>(c.failed), static_cast<unsigned long long>(c.retries),
      c.seconds);
  for (size_t i = 0; i < s.failures.size() && i < 5; ++i) {
    std::cout << "  failed " << s.failures[i] << "\n";
  }
  if (s.interrupted) {
    return absl::CancelledError(absl::StrCat("interrupted; rerun the same command to ask the ",
                                             c.total - c.already - c.answered,
                                             " remaining prompts"));
  }
  if (c.failed > 0) {
    return absl::UnavailableError(
        absl::StrCat(c.failed, " answers failed; rerun the same command to ask them again"));
  }
  std::cout << "next: tracemark scan " << out << "\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status Probe(const ProbeFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(const std::vector<probe::ProbePrompt> prompts, ProbePrompts(f));
  probe::ProbeOptions o;
  TRACEMARK_RETURN_IF_ERROR(FillProbeOptions(f, &o));
  CatchStopSignals();
  const bool tty = !f.no_progress && ::isatty(2);
  auto progress = [&](const probe::ProbeProgress& p) {
    if (tty) PrintProgress(p);
  };
  auto s = probe::Probe(prompts, o, f.out, progress, &g_stop);
  watermark::Wipe(o.api_key.data(), o.api_key.size());
  o.api_key.clear();
  if (tty) std::cerr << "\n";
  if (!s.ok()) return s.status();
  return ReportProbe(*s, f.out);
}

}  // namespace tracemark::cli
