// Spool-directory ingress for systems that can only drop files. A file renamed into
// <path>/incoming/ (IN_MOVED_TO: a completed rename — files still being written, and names
// starting with '.', are never read) is run through its feed as the configured sender, then
// moved to done/ (every record accepted) or failed/ with <file>.errors.json beside it.
// When the store pushes back (503), the file stays in incoming/ and is retried later; records
// already accepted are recognised on the retry by their SenderMessageId. Files present at
// start are processed first. One thread per spool directory.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/error.h"
#include "ingress/config.h"

namespace sluice {
class Metrics;
}

namespace sluice::ingress {

class FeedIngest;

class SpoolWatcher {
 public:
  static Result<std::unique_ptr<SpoolWatcher>> start(const SpoolInConfig& config, FeedIngest& feeds,
                                                     Metrics& metrics, std::size_t max_file_bytes);
  ~SpoolWatcher();
  void stop();

 private:
  SpoolWatcher(const SpoolInConfig& config, FeedIngest& feeds, Metrics& metrics,
               std::size_t max_bytes, int inotify_fd);
  void run(std::stop_token stop);
  // Returns false when the file should be retried later.
  bool process(const std::string& name);

  SpoolInConfig config_;
  std::optional<unsigned> owner_uid_;  // from config_.owner
  FeedIngest& feeds_;
  Metrics& metrics_;
  std::size_t max_bytes_;
  int fd_;
  std::set<std::string> unmovable_;  // files reported once; only the watcher thread uses it
  std::jthread thread_;
};

}  // namespace sluice::ingress
