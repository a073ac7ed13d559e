#include "common/metrics.h"

#include <mutex>

namespace sluice {

void Metrics::add(const std::string& name, const std::string& labels, std::uint64_t delta) {
  {
    std::shared_lock lock(mutex_);
    auto it = counters_.find(name);
    if (it != counters_.end()) {
      auto jt = it->second.find(labels);
      if (jt != it->second.end()) {
        jt->second->fetch_add(delta, std::memory_order_relaxed);
        return;
      }
    }
  }
  std::unique_lock lock(mutex_);
  auto& slot = counters_[name][labels];
  if (!slot) slot = std::make_unique<std::atomic<std::uint64_t>>(0);
  slot->fetch_add(delta, std::memory_order_relaxed);
}

std::uint64_t Metrics::get(const std::string& name, const std::string& labels) const {
  std::shared_lock lock(mutex_);
  auto it = counters_.find(name);
  if (it == counters_.end()) return 0;
  auto jt = it->second.find(labels);
  return jt == it->second.end() ? 0 : jt->second->load();
}

void Metrics::add_gauge_source(std::function<void(std::string&)> source) {
  std::unique_lock lock(mutex_);
  gauges_.push_back(std::move(source));
}

std::string Metrics::render() const {
  std::string out;
  std::vector<std::function<void(std::string&)>> gauges;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [name, series] : counters_) {
      out += "# TYPE " + name + " counter\n";
      for (const auto& [labels, value] : series) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " +
               std::to_string(value->load()) + "\n";
      }
    }
    gauges = gauges_;
  }
  for (const auto& g : gauges) g(out);
  return out;
}

}  // namespace sluice
