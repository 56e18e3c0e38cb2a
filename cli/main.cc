// The tracemark command: parses flags and dispatches to the subcommands in commands.h.
#include <cerrno>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "commands.h"
#include "flags.h"
#include "report.h"
#include "service.h"
#include "tracemark/base/file_io.h"
#include "usage.h"

namespace {

using tracemark::cli::AddAttributionFlags;
using tracemark::cli::AddDataFlags;
using tracemark::cli::AddKeyFlags;
using tracemark::cli::AddWatermarkFlags;

// A subcommand, and what runs when it is the one chosen; its flags live as long as the runner.
struct Command {
  CLI::App* app;
  std::function<absl::Status()> run;
};
using Commands = std::vector<Command>;

// keygen: a new master secret.
void AddKeygen(CLI::App& app, Commands* commands) {
  auto path = std::make_shared<std::string>();
  CLI::App* keygen = app.add_subcommand("keygen", "Write a new 32-byte master secret (mode 0600)");
  keygen->add_option("--out", *path, "File to create (never overwritten)")->required();

  commands->push_back({keygen, [path] { return tracemark::cli::Keygen(*path); }});
}

// model train, model serve: the built-in reference model.
void AddModel(CLI::App& app, Commands* commands) {
  auto train = std::make_shared<tracemark::cli::TrainFlags>();
  CLI::App* model = app.add_subcommand("model", "The built-in reference model");
  model->require_subcommand(1);
  CLI::App* model_train =
      model->add_subcommand("train", "Train the n-gram reference model on the set-up corpus");
  AddDataFlags(model_train, &train->common);
  model_train->add_option("--order", train->order, "n-gram order (2..6)")->capture_default_str();
  model_train->add_option("--out", train->out, "Model file (default: under the data dir)");

  auto serve = std::make_shared<tracemark::cli::ServeFlags>();
  CLI::App* model_serve = model->add_subcommand(
      "serve", "Serve a model on an OpenAI-compatible endpoint (chat completions, logprobs)");
  AddDataFlags(model_serve, &serve->common);
  AddKeyFlags(model_serve, &serve->common);
  AddWatermarkFlags(model_serve, &serve->common);
  model_serve->add_option("--model", serve->model, "Model file (default: under the data dir)");
  model_serve->add_option("--name", serve->name, "Model name the endpoint answers to")
      ->capture_default_str();
  model_serve->add_option("--host", serve->host, "IPv4 address to listen on")
      ->capture_default_str();
  model_serve->add_option("--port", serve->port, "Port (0: any free port)")->capture_default_str();
  model_serve->add_option("--port-file", serve->port_file, "Write the bound port to this file");
  model_serve->add_option("--threads", serve->threads, "Requests served at once")
      ->capture_default_str();
  model_serve->add_option("--max-tokens-limit", serve->max_tokens_limit, "Largest max_tokens")
      ->capture_default_str();
  model_serve->add_flag(
      "--provider", serve->watermark,
      "Provider mode: watermark every answer for its account (needs --key or --key-env)");
  model_serve->add_option("--epoch", serve->epoch, "Key epoch")->capture_default_str();
  model_serve->add_flag("--canary", serve->canary, "Canary phrasings for each account");
  model_serve->add_option("--lexicon", serve->lexicon, "Canary lexicon file");
  model_serve->add_option("--api-keys", serve->api_keys,
                          "File of 'KEY ACCOUNT' lines: required bearer keys, each an account");
  model_serve->add_option("--ledger", serve->ledger,
                          "Serving ledger directory: a record of every answer (with --provider)");

  commands->push_back({model_train, [train] { return tracemark::cli::TrainModel(*train); }});
  commands->push_back({model_serve, [serve] { return tracemark::cli::ModelServe(*serve); }});
}

// probe: a suspect endpoint, through the elicitation suite or window probes.
void AddProbe(CLI::App& app, Commands* commands) {
  auto probe = std::make_shared<tracemark::cli::ProbeFlags>();
  CLI::App* probe_cmd = app.add_subcommand(
      "probe", "Send the elicitation suite to an OpenAI-compatible endpoint and keep the answers");
  probe_cmd->add_option("--endpoint", probe->endpoint, "Base URL, e.g. http://127.0.0.1:8080/v1")
      ->required();
  probe_cmd->add_option("--model", probe->model, "Model name sent with each request");
  probe_cmd->add_option("--api-key-env", probe->api_key_env,
                        "Environment variable holding the API key (sent as a bearer token)");
  probe_cmd->add_option("--suite", probe->suite, "Suite file (default: the built-in suite-v1)");
  probe_cmd
      ->add_option("--send", probe->prompt_field,
                   "What to send: 'prompt' (chat instruction) or 'prefix' (raw text)")
      ->capture_default_str();
  probe_cmd->add_option("--out", probe->out, "Directory for the answers (resumable)")->required();
  probe_cmd->add_option("--concurrency", probe->concurrency, "Requests in flight")
      ->capture_default_str();
  probe_cmd->add_option("--rate", probe->rate, "Requests per second at most (0: no limit)")
      ->capture_default_str();
  probe_cmd->add_option("--attempts", probe->attempts, "Attempts per request, with backoff")
      ->capture_default_str();
  probe_cmd->add_option("--timeout", probe->timeout, "Seconds per attempt")->capture_default_str();
  probe_cmd->add_option("--samples", probe->samples, "Answers per prompt (seeds 0..N-1)")
      ->capture_default_str();
  probe_cmd->add_option("--max-tokens", probe->max_tokens, "max_tokens of each request")
      ->capture_default_str();
  probe_cmd->add_option("--temperature", probe->temperature, "Sampling temperature")
      ->capture_default_str();
  probe_cmd
      ->add_option("--logprobs", probe->logprobs,
                   "Ask for log-probabilities with this many alternatives (0..20; -1: none)")
      ->capture_default_str();
  probe_cmd->add_option("--limit", probe->limit, "Only the first N prompts (0: all)");
  probe_cmd->add_flag("--no-progress", probe->no_progress, "No progress line on a terminal");
  probe_cmd->add_option("--windows-from", probe->windows_from,
                        "Window probes instead of the suite: prompts that are exactly one window "
                        "of this data (e.g. what suspected accounts were served), max_tokens 1");
  probe_cmd->add_option("--windows", probe->windows, "Window probes at most (a keyed sample)")
      ->capture_default_str();
  AddDataFlags(probe_cmd, &probe->common);
  probe_cmd->add_option("--watermark", probe->common.watermark_spec,
                        "Watermark parameters (for the window width h), e.g. h=3");

  commands->push_back({probe_cmd, [probe] { return tracemark::cli::Probe(*probe); }});
}

// report public-key, verify, render: signed evidence reports.
void AddReport(CLI::App& app, Commands* commands) {
  CLI::App* report_cmd = app.add_subcommand("report", "Signed evidence reports");
  report_cmd->require_subcommand(1);
  auto report_key = std::make_shared<tracemark::cli::ReportKeyFlags>();
  CLI::App* report_key_cmd =
      report_cmd->add_subcommand("public-key", "Print the public key of a signing key");
  report_key_cmd->add_option("--signing-key", report_key->signing_key, "Signing key file")
      ->required();
  report_key_cmd->add_flag("--json", report_key->json, "Print one JSON object");
  auto report_verify = std::make_shared<tracemark::cli::ReportVerifyFlags>();
  CLI::App* report_verify_cmd = report_cmd->add_subcommand(
      "verify",
      "Check a report's signature; with --inputs, that it is about these files; with --key too, "
      "recompute its result from them and require it to be identical");
  report_verify_cmd->add_option("report", report_verify->report, "Report file")->required();
  report_verify_cmd
      ->add_option("--public-key", report_verify->public_key,
                   "The signer's public key: 64 hex digits, or a file holding them")
      ->required();
  report_verify_cmd->add_option("--inputs", report_verify->inputs,
                                "Files or directories the report should be about");
  AddKeyFlags(report_verify_cmd, &report_verify->common);
  report_verify_cmd->add_option("--data-dir", report_verify->common.data_dir,
                                "Directory set-up filled (default: $TRACEMARK_DATA_DIR or ./data)");
  report_verify_cmd->add_option("--threads", report_verify->threads,
                                "Threads for the recomputation (0: one per core)");
  report_verify_cmd->add_flag("--json", report_verify->common.json, "Print one JSON object");
  auto report_render = std::make_shared<tracemark::cli::ReportRenderFlags>();
  CLI::App* report_render_cmd = report_cmd->add_subcommand(
      "render", "Render a verified report for a non-technical reader (Markdown or HTML)");
  report_render_cmd->add_option("report", report_render->report, "Report file")->required();
  report_render_cmd
      ->add_option("--public-key", report_render->public_key,
                   "The signer's public key: 64 hex digits, or a file holding them")
      ->required();
  report_render_cmd
      ->add_option("--format", report_render->format,
                   "markdown, or html (one self-contained page with plots)")
      ->capture_default_str();
  report_render_cmd->add_option("--out", report_render->out,
                                "Output file (default: standard output)");

  commands->push_back(
      {report_key_cmd, [report_key] { return tracemark::cli::ReportPublicKey(*report_key); }});
  commands->push_back({report_verify_cmd,
                       [report_verify] { return tracemark::cli::ReportVerify(*report_verify); }});
  commands->push_back({report_render_cmd,
                       [report_render] { return tracemark::cli::ReportRender(*report_render); }});
}

// generate: watermarked text from the reference model.
void AddGenerate(CLI::App& app, Commands* commands) {
  auto gen = std::make_shared<tracemark::cli::GenerateFlags>();
  CLI::App* generate =
      app.add_subcommand("generate", "Generate watermarked text with the reference model");
  AddDataFlags(generate, &gen->common);
  AddKeyFlags(generate, &gen->common);
  AddWatermarkFlags(generate, &gen->common);
  generate->add_option("--account", gen->account, "Account id the text is served to")
      ->capture_default_str();
  generate->add_option("--epoch", gen->epoch, "Key epoch")->capture_default_str();
  generate->add_option("--prompt", gen->prompt, "Prompt text")->required();
  generate->add_option("--max-tokens", gen->max_tokens, "Tokens to generate")
      ->capture_default_str();
  generate->add_option("--seed", gen->seed, "Sampling seed")->capture_default_str();
  generate->add_option("--temperature", gen->temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  generate->add_option("--top-k", gen->top_k, "Candidates kept (0: all)")->capture_default_str();
  generate->add_option("--top-p", gen->top_p, "Nucleus mass")->capture_default_str();
  generate->add_option("--model", gen->model, "Model file (default: under the data dir)");
  generate->add_flag("--no-watermark", gen->no_watermark, "Plain sampling (for comparison)");
  generate->add_flag("--canary", gen->canary,
                     "Canary phrasings: the account's key picks among interchangeable phrasings");
  generate->add_option("--lexicon", gen->lexicon, "Canary lexicon file (default: built-in v1)");
  generate->add_option("--ledger", gen->ledger,
                       "Serving ledger directory: append this answer's record (docs/ledger.md)");

  commands->push_back({generate, [gen] { return tracemark::cli::Generate(*gen); }});
}

// detect: one text, every epoch tried.
void AddDetect(CLI::App& app, Commands* commands) {
  auto det = std::make_shared<tracemark::cli::DetectFlags>();
  auto det_account = std::make_shared<std::optional<uint64_t>>();
  CLI::App* detect = app.add_subcommand(
      "detect", "Test a text for the provider and account watermarks and attribute it");
  AddDataFlags(detect, &det->common);
  AddKeyFlags(detect, &det->common);
  AddWatermarkFlags(detect, &det->common);
  detect->add_option("--account", *det_account, "Account to test");
  detect->add_option("--epochs", det->epochs, "Epochs to try, e.g. 0,1 or 0-3")
      ->capture_default_str();
  detect->add_option("--prompt", det->prompt, "Prompt the text answered (context, not scored)");
  AddAttributionFlags(detect, &det->attribution);
  detect->add_option("input", det->input, "Text file, or - for standard input")
      ->capture_default_str();

  commands->push_back({detect, [det, det_account] {
                         det->account = *det_account;
                         return tracemark::cli::Detect(*det);
                       }});
}

// scan: a dataset, every document tested and attributed.
void AddScan(CLI::App& app, Commands* commands) {
  auto scan = std::make_shared<tracemark::cli::ScanFlags>();
  CLI::App* scan_cmd = app.add_subcommand(
      "scan", "Scan a dataset: test every document and attribute it to its account");
  tracemark::cli::AddDataDirFlag(scan_cmd, &scan->common.data_dir);
  AddKeyFlags(scan_cmd, &scan->common);
  tracemark::cli::AddJsonFlag(scan_cmd, &scan->common.json);
  tracemark::cli::AddScanSpecFlags(scan_cmd, &scan->spec,
                                   "Suspected training data (files, directories): also test the "
                                   "dataset at its windows only");
  scan_cmd->add_option("--threads", scan->threads, "Scan threads (0: one per core)")
      ->capture_default_str();
  scan_cmd->add_flag("--no-progress", scan->no_progress, "No progress bar on a terminal");
  scan_cmd->add_option("--lexicon", scan->spec.lexicon,
                       "Canary lexicon file (default: built-in v1)");
  scan_cmd->add_option("--report", scan->report,
                       "Write a signed evidence report (DSSE envelope) to this file");
  scan_cmd->add_option("--signing-key", scan->signing_key,
                       "Ed25519 signing key for --report (32-byte seed file, mode 0600)");
  scan_cmd
      ->add_option("inputs", scan->spec.inputs,
                   "Files and directories: .jsonl/.json records (OpenAI messages, ShareGPT, "
                   "Alpaca, prompt/completion, text), other files as text; .gz/.zst read")
      ->required();

  commands->push_back({scan_cmd, [scan] { return tracemark::cli::Scan(*scan); }});
}

// canary suite, canary lexicon.
void AddCanary(CLI::App& app, Commands* commands) {
  CLI::App* canary_cmd =
      app.add_subcommand("canary", "Canary phrasings: the lexicon and the elicitation suite");
  canary_cmd->require_subcommand(1);
  auto suite = std::make_shared<tracemark::cli::CanarySuiteFlags>();
  CLI::App* suite_cmd =
      canary_cmd->add_subcommand("suite", "Write the elicitation suite (JSON Lines prompts)");
  suite_cmd->add_option("--out", suite->out, "Output file (default: standard output)");
  suite_cmd->add_flag("--force", suite->force, "Overwrite an existing file");
  auto lexf = std::make_shared<tracemark::cli::CanaryLexiconFlags>();
  CLI::App* lexicon_cmd = canary_cmd->add_subcommand(
      "lexicon", "Describe the canary lexicon and the sets active for a tokenizer");
  AddDataFlags(lexicon_cmd, &lexf->common);
  lexicon_cmd->add_option("--lexicon", lexf->lexicon, "Lexicon file (default: built-in v1)");
  lexicon_cmd->add_flag("--list", lexf->list, "List every set");
  lexicon_cmd->add_flag("--json", lexf->common.json, "Print one JSON object");

  commands->push_back({suite_cmd, [suite] { return tracemark::cli::CanarySuite(*suite); }});
  commands->push_back({lexicon_cmd, [lexf] { return tracemark::cli::CanaryLexiconInfo(*lexf); }});
}

// ledger import, ledger show (docs/ledger.md).
void AddLedger(CLI::App& app, Commands* commands) {
  CLI::App* ledger_cmd =
      app.add_subcommand("ledger", "The serving ledger: what was served to which account");
  ledger_cmd->require_subcommand(1);
  auto imp = std::make_shared<tracemark::cli::LedgerImportFlags>();
  CLI::App* import_cmd = ledger_cmd->add_subcommand(
      "import", "Import a provider's JSON Lines serving logs (account, prompt, completion)");
  AddDataFlags(import_cmd, &imp->common);
  AddKeyFlags(import_cmd, &imp->common);
  import_cmd->add_option("--ledger", imp->ledger, "Ledger directory")->required();
  import_cmd->add_option("--epoch", imp->epoch, "Epoch of lines without one")
      ->capture_default_str();
  import_cmd->add_flag("--skip-bad", imp->skip_bad, "Import the good lines, report the bad ones");
  import_cmd->add_option("inputs", imp->inputs, "JSON Lines files ('-': standard input)")
      ->required();
  auto show = std::make_shared<tracemark::cli::LedgerShowFlags>();
  CLI::App* show_cmd = ledger_cmd->add_subcommand("show", "Say what a ledger holds");
  show_cmd->add_option("ledger", show->ledger, "Ledger directory or segment file")->required();
  show_cmd->add_option("--records", show->records,
                       "Print the first N records (default: none, or 20 with --account)");
  show_cmd->add_option("--account", show->account, "Print only this account's records");
  show_cmd->add_flag("--skip-damaged", show->skip_damaged,
                     "Read damaged segments up to the damage and go on");
  show_cmd
      ->add_option("--windows", show->windows,
                   "Count the served windows of H ids: distinct, exclusive to one account, "
                   "shared")
      ->check(CLI::Range(1, 1024));
  tracemark::cli::AddJsonFlag(show_cmd, &show->json);
  commands->push_back({import_cmd, [imp] { return tracemark::cli::LedgerImport(*imp); }});
  commands->push_back({show_cmd, [show] { return tracemark::cli::LedgerShow(*show); }});
}

// Output that could not be written (a full disk, a closed pipe) is an error, not a success.
absl::Status FlushStdout(absl::Status status) {
  errno = 0;
  std::cout.flush();
  if (status.ok() && (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout))) {
    status = errno != 0 ? tracemark::base::ErrnoStatus(errno, "cannot write standard output")
                        : absl::UnavailableError("cannot write standard output");
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tracemark: watermark a model's outputs per account, and prove where text came from"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tracemark ") + TRACEMARK_VERSION);
  Commands commands;
  for (auto add : {AddKeygen, AddModel, AddProbe, AddReport, AddGenerate, AddDetect, AddScan,
                   AddCanary, AddLedger}) {
    add(app, &commands);
  }
  tracemark::cli::ServiceCommands service(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, as tools conventionally do (CLI11's
    // own codes, 105 to 115, would read as a signal or a crash to a caller), with the prefix
    // every other error has.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "tracemark: error: " << tracemark::cli::UsageMessage(app, e, argc, argv) << "\n";
    return 2;
  }

  absl::Status status;
  if (std::optional<absl::Status> s = service.Run(); s.has_value()) {
    status = *s;
  } else {
    for (const Command& c : commands) {
      if (*c.app) {
        status = c.run();
        break;
      }
    }
  }
  return tracemark::cli::Report(FlushStdout(status));
}
