// What every part of the verifier server (server.cc, uploads.cc, workers.cc) shares: its event
// log on standard error and its clock.
#ifndef TRACEMARK_SERVICE_SRC_SERVER_COMMON_H_
#define TRACEMARK_SERVICE_SRC_SERVER_COMMON_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tracemark::service {

// The server's event lines ("tracemark serve: LINE" on standard error), none when quiet.
// Thread-safe: one fprintf a line.
class ServeLog {
 public:
  explicit ServeLog(bool quiet) : quiet_(quiet) {}

  void operator()(const std::string& line) const {
    if (!quiet_) std::fprintf(stderr, "tracemark serve: %s\n", line.c_str());
  }

 private:
  bool quiet_;
};

// Milliseconds since the Unix epoch: the times the job store records.
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_SERVER_COMMON_H_
