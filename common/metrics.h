// Prometheus counters and gauges of a sluiced process, rendered in the text exposition
// format on the admin listener's /metrics. Labels never carry personal data: only DocTypes,
// destination names, result codes and HTTP status classes.
// Thread-safe: counters are atomics; a series is created once under an exclusive lock and
// incremented under a shared one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

namespace sluice {

class Metrics {
 public:
  // Adds `delta` to counter `name` with the label set `labels` (e.g. code="400").
  void add(const std::string& name, const std::string& labels, std::uint64_t delta = 1);
  std::uint64_t get(const std::string& name, const std::string& labels) const;
  // Registers a callback that appends gauge lines at render time.
  void add_gauge_source(std::function<void(std::string&)> source);
  std::string render() const;

 private:
  using Series = std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>>;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Series> counters_;                 // Guarded by mutex_ (structure).
  std::vector<std::function<void(std::string&)>> gauges_;  // Guarded by mutex_.
};

}  // namespace sluice
