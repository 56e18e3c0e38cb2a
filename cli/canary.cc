#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "commands.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/canary/processor.h"
#include "tracemark/canary/suite.h"

namespace tracemark::cli {

absl::Status CanarySuite(const CanarySuiteFlags& f) {
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<canary::SuitePrompt> suite,
                             canary::ParseSuite(canary::BuiltInSuiteText()));
  if (f.out.empty() || f.out == "-") {
    std::cout << canary::BuiltInSuiteText();
    return absl::OkStatus();
  }
  if (!f.force && std::ifstream(f.out)) {
    return absl::AlreadyExistsError(absl::StrCat(f.out, " exists (--force to overwrite)"));
  }
  TRACEMARK_RETURN_IF_ERROR(WriteFileAtomically(f.out, canary::BuiltInSuiteText()));
  std::cerr << absl::StrFormat("wrote %d prompts (%s) to %s\n", suite.size(),
                               canary::BuiltInSuiteVersion(), f.out);
  return absl::OkStatus();
}

absl::Status CanaryLexiconInfo(const CanaryLexiconFlags& f) {
  std::optional<canary::Lexicon> holder;
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<canary::CanaryProcessor> proc,
                             detect::LoadCanaryProcessor(f.lexicon, *tok, &holder));
  const canary::Lexicon* lex = &proc->lexicon();
  const std::vector<bool> active = proc->active_sets();
  std::map<std::string, std::pair<size_t, size_t>> kinds;  // kind -> (sets, active)
  for (size_t s = 0; s < lex->sets().size(); ++s) {
    auto& k = kinds[lex->sets()[s].kind];
    ++k.first;
    k.second += active[s];
  }
  if (f.common.json) {
    nlohmann::json j = {{"lexicon", lex->version()},      {"digest", lex->digest()},
                        {"sets", lex->sets().size()},     {"members", lex->member_count()},
                        {"tokenizer", f.common.encoding}, {"active_sets", proc->active_count()}};
    for (const auto& [kind, n] : kinds)
      j["kinds"][kind] = {{"sets", n.first}, {"active", n.second}};
    if (f.list) {
      for (size_t s = 0; s < lex->sets().size(); ++s) {
        j["list"].push_back({{"id", s},
                             {"kind", lex->sets()[s].kind},
                             {"members", lex->sets()[s].members},
                             {"active", static_cast<bool>(active[s])}});
      }
    }
    std::cout << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  std::cout << absl::StrFormat(
      "lexicon %s (sha256 %s)\n%d sets, %d members; %d sets active "
      "with tokenizer %s\n",
      lex->version(), lex->digest(), lex->sets().size(), lex->member_count(), proc->active_count(),
      f.common.encoding);
  for (const auto& [kind, n] : kinds) {
    std::cout << absl::StrFormat("  %-12s %5d sets, %5d active\n", kind, n.first, n.second);
  }
  if (f.list) {
    for (size_t s = 0; s < lex->sets().size(); ++s) {
      std::cout << absl::StrFormat("%5d %-12s %s%s\n", s, lex->sets()[s].kind,
                                   absl::StrJoin(lex->sets()[s].members, " | "),
                                   active[s] ? "" : "   (inactive)");
    }
  }
  return absl::OkStatus();
}

}  // namespace tracemark::cli
