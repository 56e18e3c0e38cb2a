#include "usage.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tracemark::cli {
namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

const CLI::App* FindSubcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

}  // namespace

std::string ClosestSubcommand(const CLI::App& app, const std::string& word) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;  // the first too far
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    const size_t d = EditDistance(word, sub->get_name());
    if (d < best_distance) {
      best_distance = d;
      best = sub->get_name();
    }
  }
  return best;
}

std::string UsageMessage(const CLI::App& app, const CLI::ParseError& e, int argc,
                         const char* const* argv) {
  // Walk down the subcommands argv names; the first word that is none of the current command's
  // subcommands, where that command needs one, is the mistyped one.
  const CLI::App* current = &app;
  std::string path = "tracemark";  // not argv[0], which CLI11 takes as the name
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') break;
    if (const CLI::App* sub = FindSubcommand(*current, word)) {
      current = sub;
      absl::StrAppend(&path, " ", sub->get_name());
      continue;
    }
    if (current->get_require_subcommand_min() == 0) break;
    const std::string close = ClosestSubcommand(*current, word);
    return absl::StrCat("unknown command '", path, " ", word, "'",
                        close.empty() ? "" : absl::StrCat(" (did you mean '", close, "'?)"), "; '",
                        path, " --help' lists the commands");
  }
  return absl::StrCat(e.what(), "; '", path, " --help' shows the usage");
}

}  // namespace tracemark::cli
