// The scans running in this server, shared by the workers that run them (workers.h) and the calls
// that look at them (GetScan's progress, WatchScan, CancelScan), with a version that changes on
// every event a watcher cares about: a scan queued, started, progressed, cancelled or ended, and
// the server stopping.
#ifndef TRACEMARK_SERVICE_SRC_LIVE_SCANS_H_
#define TRACEMARK_SERVICE_SRC_LIVE_SCANS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "tracemark/detect/scanner.h"

namespace tracemark::service {

// What a running scan shares with the calls that look at it. `progress` is read and written only
// through LiveScans; `cancel` stops the scan (detect::ScanJobControl) once set.
struct LiveScan {
  detect::ScanProgress progress;
  std::atomic<bool> cancel{false};
};

// Thread-safe. Waits end early when the server stops (Stop).
class LiveScans {
 public:
  // Registers the running scan `id` and returns its shared state.
  std::shared_ptr<LiveScan> Add(const std::string& id);
  // Forgets the scan `id` (it has ended).
  void Remove(const std::string& id);
  // Records a scan's latest progress.
  void UpdateProgress(LiveScan& scan, const detect::ScanProgress& progress);
  // The latest progress of `id`; nullopt when it does not run here.
  std::optional<detect::ScanProgress> Progress(const std::string& id);
  // Asks the scan `id` to stop, if it runs here.
  void Cancel(const std::string& id);

  uint64_t version();
  // Changes the version and wakes every waiter.
  void Bump();
  // Waits until the version is no longer `seen`, the server stops, or `timeout` passes; returns
  // whether the server is stopping.
  bool WaitForChange(uint64_t seen, std::chrono::milliseconds timeout);
  // WaitForChange from the version as it is now.
  void WaitForNextChange(std::chrono::milliseconds timeout);
  // Waits until the server stops or `timeout` passes; returns whether it is stopping.
  bool WaitForStop(std::chrono::milliseconds timeout);

  bool stopping();
  // Marks the server stopping, asks every running scan to stop and wakes every waiter.
  void Stop();

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t version_ = 0;                                               // guarded by mu_
  bool stopping_ = false;                                              // guarded by mu_
  absl::flat_hash_map<std::string, std::shared_ptr<LiveScan>> scans_;  // guarded by mu_
};

}  // namespace tracemark::service

#endif  // TRACEMARK_SERVICE_SRC_LIVE_SCANS_H_
