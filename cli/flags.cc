#include "flags.h"

namespace tracemark::cli {

void AddTokenizerFlag(CLI::App* cmd, std::string* encoding) {
  cmd->add_option(
         "--tokenizer,--encoding", *encoding,
         "Tokenizer spec: cl100k_base, o200k_base, tiktoken:NAME[:RANKFILE], hf:qwen3|llama3|"
         "gpt4o|llama2, hf:tokenizer.json, spm:sotu-bpe8k, spm:FILE.model")
      ->capture_default_str();
}

void AddDataDirFlag(CLI::App* cmd, std::string* data_dir) {
  cmd->add_option("--data-dir", *data_dir,
                  "Directory set-up filled (default: $TRACEMARK_DATA_DIR or ./data)");
}

void AddDataFlags(CLI::App* cmd, CommonFlags* f) {
  AddDataDirFlag(cmd, &f->data_dir);
  AddTokenizerFlag(cmd, &f->encoding);
}

void AddAttributionFlags(CLI::App* cmd, AttributionFlags* f) {
  cmd->add_option("--accounts", f->accounts,
                  "Accounts issued: a number N (ids 0..N-1) or a file of ids, one a line");
  cmd->add_option("--alpha", f->alpha, "Attribute (and, in a scan, flag) at corrected p <= alpha")
      ->capture_default_str();
  cmd->add_option("--max-candidates", f->max_candidates,
                  "Payload candidates confirmed (each counts in the correction)")
      ->capture_default_str();
}

void AddKeyFlags(CLI::App* cmd, CommonFlags* f) {
  cmd->add_option("--key", f->key_file, "Master secret file (32 bytes, mode 0600)");
  cmd->add_option("--key-env", f->key_env, "Environment variable holding the master secret (hex)");
}

void AddSchemeFlags(CLI::App* cmd, std::string* scheme, std::string* watermark) {
  cmd->add_option("--scheme", *scheme, "Provider scheme: kgw, gumbel or synthid")
      ->capture_default_str();
  cmd->add_option(
      "--watermark", *watermark,
      "Further parameters, e.g. gamma=0.25,delta=2,h=3,hash=selfhash,account_share=0.5");
}

void AddJsonFlag(CLI::App* cmd, bool* json) {
  cmd->add_flag("--json", *json, "Print one JSON object");
}

void AddWatermarkFlags(CLI::App* cmd, CommonFlags* f) {
  AddSchemeFlags(cmd, &f->scheme, &f->watermark_spec);
  AddJsonFlag(cmd, &f->json);
}

}  // namespace tracemark::cli
