#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "commands.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::cli {

absl::Status Keygen(const std::string& out) {
  TRACEMARK_ASSIGN_OR_RETURN(std::string id, watermark::WriteNewMasterKeyFile(out));
  std::cout << "wrote master key " << out << " (mode 0600), key id " << id << "\n"
            << "keep it secret: anyone holding it can watermark and detect as you\n";
  return absl::OkStatus();
}

absl::Status TrainModel(const TrainFlags& f) {
  const std::string data_dir = DataDir(f.common.data_dir);
  TRACEMARK_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(f.common));
  TRACEMARK_ASSIGN_OR_RETURN(std::vector<std::string> files, reference::CorpusFiles(data_dir));
  const bool tty = ::isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  auto progress = [&](size_t done, size_t total) {
    if (!tty && done != total) return;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\rtokenising corpus: %zu/%zu files, %.1f s%s", done, total, s,
                 done == total ? "\n" : "");
  };
  TRACEMARK_ASSIGN_OR_RETURN(refmodel::KneserNeyModel model,
                             reference::TrainOnTextFiles(files, *tok, f.order, progress));
  const std::string out = f.out.empty() ? reference::DefaultModelPath(data_dir) : f.out;
  TRACEMARK_RETURN_IF_ERROR(model.Save(out));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "trained order-" << model.order() << " Kneser-Ney model on " << files.size()
            << " documents (" << model.NumNgrams(1) << " unigrams, "
            << model.NumNgrams(model.order()) << " " << model.order() << "-grams) in "
            << absl::StrCat(s).substr(0, 5) << " s -> " << out << "\n";
  return absl::OkStatus();
}

}  // namespace tracemark::cli
