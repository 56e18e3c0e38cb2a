// `tracemark serve` (the verifier service) and `tracemark remote ...` (its client): flags and
// commands, registered on the main app in one call.
#ifndef TRACEMARK_CLI_SERVICE_H_
#define TRACEMARK_CLI_SERVICE_H_

#include <optional>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace tracemark::cli {

class ServiceCommands {
 public:
  explicit ServiceCommands(CLI::App* app);  // adds "serve" and "remote"
  ~ServiceCommands();
  // The chosen command's status, or nullopt when neither was chosen.
  std::optional<absl::Status> Run();

  struct Flags;

 private:
  Flags* flags_;
};

}  // namespace tracemark::cli

#endif  // TRACEMARK_CLI_SERVICE_H_
