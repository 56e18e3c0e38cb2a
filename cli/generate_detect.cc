#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "commands.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/events.h"
#include "tracemark/canary/processor.h"
#include "tracemark/detect/text_detection.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/watermark/issued_accounts.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::cli {

namespace {

// generate --json: the answer, what served it and what the layers did.
nlohmann::json GenerationJson(const GenerateFlags& f, const reference::Generation& g,
                              const watermark::Config& config,
                              const refmodel::KneserNeyModel& model,
                              const watermark::Watermarker* wm,
                              const watermark::AccountKeys* account,
                              const canary::CanaryProcessor* canary_proc) {
  nlohmann::json j;
  j["text"] = g.text;
  j["prompt"] = f.prompt;
  j["prompt_token_ids"] = g.prompt_ids;
  j["token_ids"] = g.ids;
  j["watermarked"] = !f.no_watermark;
  if (wm) {
    j["key_id"] = wm->key_id();
    j["epoch"] = f.epoch;
    j["account"] = {
        {"id", f.account}, {"key_id", account->key_id()}, {"commitment", account->commitment()}};
    j["scheme"] = watermark::SchemeName(config.scheme);
    j["parameters"] = config.Describe();
    j["positions"] = {{"unwatermarked", g.layer_counts[0]},
                      {"provider", g.layer_counts[1]},
                      {"account_payload", g.layer_counts[2]},
                      {"account_fingerprint", g.layer_counts[3]},
                      {"token_chosen_by_scheme", g.chosen}};
  }
  if (canary_proc) {
    const auto events = canary::ExtractEvents(g.text, canary_proc->lexicon(),
                                              canary_proc->active_forms(), f.prompt);
    j["canary"] = {{"lexicon", canary_proc->lexicon().version()},
                   {"lexicon_digest", canary_proc->lexicon().digest()},
                   {"active_sets", canary_proc->active_count()},
                   {"steps_moved", g.canary_moves},
                   {"events_in_text", events.size()}};
  }
  j["sampling"] = {{"temperature", f.temperature},
                   {"top_k", f.top_k},
                   {"top_p", f.top_p},
                   {"seed", f.seed},
                   {"max_tokens", f.max_tokens}};
  j["model"] = {{"kind", "kneser-ney"},
                {"order", model.order()},
                {"vocab_size", model.vocab_size()},
                {"tokenizer", f.common.encoding}};
  return j;
}

// --ledger: the writer and the chain's ledger stage that opt->ledger then points to.
absl::Status OpenLedger(const GenerateFlags& f, const watermark::Watermarker* wm,
                        std::unique_ptr<ledger::Writer>* writer, engine::LedgerStage* stage,
                        reference::GenerateOptions* opt) {
  if (f.ledger.empty()) return absl::OkStatus();
  if (wm == nullptr) {
    return absl::InvalidArgumentError("--ledger records watermarked answers: drop --no-watermark");
  }
  TRACEMARK_ASSIGN_OR_RETURN(*writer, ledger::Writer::Open(f.ledger));
  *stage = {writer->get(), f.epoch, f.common.encoding};
  opt->ledger = stage;
  return absl::OkStatus();
}

}  // namespace

absl::Status Generate(const GenerateFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(refmodel::KneserNeyModel model, LoadModel(f.common, f.model));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Config config, LoadConfig(f.common, tok->vocab_size()));
  std::unique_ptr<watermark::Watermarker> wm;
  std::optional<watermark::AccountKeys> account;
  if (!f.no_watermark) {
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
    TRACEMARK_ASSIGN_OR_RETURN(watermark::Key epoch_key,
                               watermark::DeriveEpochKey(master, f.epoch));
    TRACEMARK_ASSIGN_OR_RETURN(wm, watermark::Watermarker::Create(epoch_key, config));
    TRACEMARK_ASSIGN_OR_RETURN(account, wm->ForAccount(f.account));
  }
  std::optional<canary::Lexicon> lexicon_holder;
  std::unique_ptr<canary::CanaryProcessor> canary_proc;
  if (f.canary) {
    if (!account.has_value()) {
      return absl::InvalidArgumentError("--canary needs the watermark keys (drop --no-watermark)");
    }
    TRACEMARK_ASSIGN_OR_RETURN(canary_proc,
                               detect::LoadCanaryProcessor(f.lexicon, *tok, &lexicon_holder));
  }
  reference::GenerateOptions opt;
  opt.canary = canary_proc.get();
  std::unique_ptr<ledger::Writer> ledger_writer;
  engine::LedgerStage ledger_stage;
  TRACEMARK_RETURN_IF_ERROR(OpenLedger(f, wm.get(), &ledger_writer, &ledger_stage, &opt));
  opt.max_tokens = f.max_tokens;
  opt.seed = f.seed;
  opt.temperature = f.temperature;
  opt.top_k = f.top_k;
  opt.top_p = f.top_p;
  const reference::ReferenceGenerator gen(&model, tok.get());
  TRACEMARK_ASSIGN_OR_RETURN(reference::Generation g,
                             gen.Generate(f.prompt, wm.get(), account ? &*account : nullptr, opt));
  if (ledger_writer) TRACEMARK_RETURN_IF_ERROR(ledger_writer->Close());
  if (!f.common.json) {
    std::cout << g.text << "\n";
    return absl::OkStatus();
  }
  std::cout << GenerationJson(f, g, config, model, wm.get(), account ? &*account : nullptr,
                              canary_proc.get())
                   .dump(2)
            << "\n";
  return absl::OkStatus();
}

namespace {

// The detection options from the flags. `issued` holds the --accounts set that opt->issued then
// points to.
absl::Status FillDetectOptions(const DetectFlags& f, detect::DetectOptions* opt,
                               std::optional<watermark::IssuedAccounts>* issued) {
  TRACEMARK_ASSIGN_OR_RETURN(opt->epochs, ParseEpochs(f.epochs));
  opt->account = f.account;
  opt->prompt = f.prompt;
  TRACEMARK_RETURN_IF_ERROR(CheckAttributionFlags(f.attribution));
  TRACEMARK_ASSIGN_OR_RETURN(const IssuedAccountsFlag accounts,
                             ParseAccounts(f.attribution.accounts));
  opt->account_limit = accounts.limit;
  if (!accounts.ids.empty()) {
    opt->issued =
        &issued->emplace(absl::flat_hash_set<uint64_t>(accounts.ids.begin(), accounts.ids.end()));
  }
  opt->confirm_alpha = f.attribution.alpha;
  opt->max_candidates = f.attribution.max_candidates;
  return absl::OkStatus();
}

// detect --json: the provider layer at its best epoch, the account tested (or null), the
// attribution, and what was scored.
nlohmann::json DetectionJson(const DetectFlags& f, const detect::DetectOptions& opt,
                             const watermark::Config& config, const detect::TextDetection& d) {
  const detect::EpochDetection& best = d.epochs[d.best_provider_epoch];
  nlohmann::json j;
  j["provider"] = {{"p_value", detect::PValueJson(d.provider_p_value)},
                   {"log10_p_value", d.provider_p_value.log10()},
                   {"tokens_scored", best.provider.tuples},
                   {"epoch", best.epoch},
                   {"key_id", best.key_id},
                   {"method", best.provider.method}};
  if (f.account.has_value()) {
    const watermark::AccountResult& a = *best.account;
    j["account"] = {{"id", *f.account},
                    {"key_id", a.key_id},
                    {"p_value", detect::PValueJson(d.account_p_value)},
                    {"log10_p_value", d.account_p_value.log10()},
                    {"tokens_scored", a.tuples},
                    {"score", a.score},
                    {"method", a.method}};
  } else {
    j["account"] = nullptr;
  }
  nlohmann::json attributed = nullptr;
  if (d.attributed_account.has_value()) attributed = *d.attributed_account;
  j["attribution"] = {{"account", attributed},
                      {"p_value", detect::PValueJson(d.attributed_p_value)},
                      {"log10_p_value", d.attributed_p_value.log10()},
                      {"alpha", opt.confirm_alpha},
                      {"candidates_confirmed", d.attribution_tests},
                      {"payload_decoded", best.payload.decoded},
                      {"payload_detail", best.payload.detail}};
  j["tokens"] = d.tokens;
  j["prompt_tokens"] = d.prompt_tokens;
  j["epochs_tried"] = opt.epochs;
  j["parameters"] = config.Describe();
  j["method"] = d.method;
  detect::AddLog10PValues(&j);
  return j;
}

// detect's text report: a line each for the tokens, the provider layer, the account tested and
// the attribution (or why there is none).
void PrintDetection(const DetectFlags& f, const detect::DetectOptions& opt,
                    const watermark::Config& config, const detect::TextDetection& d) {
  const detect::EpochDetection& best = d.epochs[d.best_provider_epoch];
  std::cout << absl::StrFormat("tokens: %d (tokenizer %s, scheme %s, epochs tried: %d)\n", d.tokens,
                               f.common.encoding, watermark::SchemeName(config.scheme),
                               opt.epochs.size());
  std::cout << absl::StrFormat("provider layer: p = %s over %d unique tuples (epoch %d, key %s)\n",
                               d.provider_p_value.ToString(), best.provider.tuples, best.epoch,
                               best.key_id);
  if (f.account.has_value()) {
    std::cout << absl::StrFormat("account %d: p = %s over %d fingerprint tuples\n", *f.account,
                                 d.account_p_value.ToString(), best.account->tuples);
  }
  if (d.attributed_account.has_value()) {
    std::cout << absl::StrFormat(
        "attributed to account %d: p = %s (decoded, confirmed, corrected "
        "for %d candidate(s))\n",
        *d.attributed_account, d.attributed_p_value.ToString(), d.attribution_tests);
  } else {
    std::cout << "no account attribution at alpha " << opt.confirm_alpha
              << (best.payload.decoded ? " (decoded candidates not confirmed)"
                                       : absl::StrCat(" (", best.payload.detail, ")"))
              << "\n";
  }
}

}  // namespace

absl::Status Detect(const DetectFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string text, ReadInput(f.input));
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(f.input == "-" ? "standard input" : f.input,
                                                   " is empty: there is no text to test"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Config config, LoadConfig(f.common, tok->vocab_size()));
  TRACEMARK_ASSIGN_OR_RETURN(watermark::Key master, LoadMasterKey(f.common));
  detect::DetectOptions opt;
  std::optional<watermark::IssuedAccounts> issued;
  TRACEMARK_RETURN_IF_ERROR(FillDetectOptions(f, &opt, &issued));
  TRACEMARK_ASSIGN_OR_RETURN(detect::TextDetection d,
                             detect::DetectText(master, config, *tok, text, opt));
  if (f.common.json) {
    std::cout << DetectionJson(f, opt, config, d).dump(2) << "\n";
  } else {
    PrintDetection(f, opt, config, d);
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
