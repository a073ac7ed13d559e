// Prometheus counters, gauges and histograms of a sluiced process, rendered in the text
// exposition format on the admin listener's /metrics. Every family has a HELP and a TYPE line
// from the catalogue in metrics.cpp (one place that lists what Sluice exports); a family not
// in the catalogue is still rendered, with a HELP that says so, and a test keeps the
// catalogue complete. Labels never carry personal data: only DocTypes, destination and
// listener names, result codes and HTTP status classes.
// Thread-safe: samples are atomics; a series is created once under an exclusive lock and
// updated under a shared one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class Metrics {
 public:
  // Adds `delta` to counter `name` with the label set `labels` (e.g. code="400").
  void add(const std::string& name, const std::string& labels, std::uint64_t delta = 1);
  std::uint64_t get(const std::string& name, const std::string& labels) const;
  // Records one observation, in seconds, in histogram `name` (buckets from 1 ms to 5 min).
  void observe(const std::string& name, const std::string& labels, double seconds);
  // The number of observations of a histogram series (for tests and status pages).
  std::uint64_t observations(const std::string& name, const std::string& labels) const;
  // Registers a callback that appends gauge (or counter) families at render time; it writes
  // each family's header with header() before its samples.
  void add_gauge_source(std::function<void(std::string&)> source);
  std::string render() const;

  // Appends "# HELP" and "# TYPE" for `name` from the catalogue.
  static void header(std::string& out, std::string_view name);
  // A family and its one unlabelled sample, header included.
  static void sample(std::string& out, std::string_view name, std::uint64_t value);

 private:
  struct Histogram;
  using Series = std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>>;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Series> counters_;  // Guarded by mutex_ (structure).
  std::map<std::string, std::map<std::string, std::unique_ptr<Histogram>>>
      histograms_;                                         // Guarded by mutex_ (structure).
  std::vector<std::function<void(std::string&)>> gauges_;  // Guarded by mutex_.

 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
};

}  // namespace sluice
