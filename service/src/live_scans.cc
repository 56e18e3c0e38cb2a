#include "live_scans.h"

namespace tracemark::service {

std::shared_ptr<LiveScan> LiveScans::Add(const std::string& id) {
  auto scan = std::make_shared<LiveScan>();
  std::lock_guard<std::mutex> lock(mu_);
  scans_[id] = scan;
  return scan;
}

void LiveScans::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  scans_.erase(id);
}

void LiveScans::UpdateProgress(LiveScan& scan, const detect::ScanProgress& progress) {
  std::lock_guard<std::mutex> lock(mu_);
  scan.progress = progress;
}

std::optional<detect::ScanProgress> LiveScans::Progress(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = scans_.find(id);
  if (it == scans_.end()) return std::nullopt;
  return it->second->progress;
}

void LiveScans::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = scans_.find(id);
  if (it != scans_.end()) it->second->cancel = true;
}

uint64_t LiveScans::version() {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

void LiveScans::Bump() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++version_;
  }
  changed_.notify_all();
}

bool LiveScans::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return version_ != seen || stopping_; });
  return stopping_;
}

void LiveScans::WaitForNextChange(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = version_;
  changed_.wait_for(lock, timeout, [&] { return stopping_ || version_ != seen; });
}

bool LiveScans::WaitForStop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return stopping_; });
}

bool LiveScans::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void LiveScans::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, scan] : scans_) scan->cancel = true;
  }
  changed_.notify_all();
}

}  // namespace tracemark::service
