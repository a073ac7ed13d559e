#include "gateway/metrics.h"

namespace sluice::gateway {

void Metrics::add(const std::string& name, const std::string& labels, std::uint64_t delta) {
  std::lock_guard lock(mutex_);
  counters_[name][labels] += delta;
}

std::uint64_t Metrics::get(const std::string& name, const std::string& labels) const {
  std::lock_guard lock(mutex_);
  auto it = counters_.find(name);
  if (it == counters_.end()) return 0;
  auto jt = it->second.find(labels);
  return jt == it->second.end() ? 0 : jt->second;
}

void Metrics::add_gauge_source(std::function<void(std::string&)> source) {
  std::lock_guard lock(mutex_);
  gauges_.push_back(std::move(source));
}

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, series] : counters_) {
    out += "# TYPE " + name + " counter\n";
    for (const auto& [labels, value] : series) {
      out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(value) + "\n";
    }
  }
  for (const auto& g : gauges_) {
    g(out);
  }
  return out;
}

}  // namespace sluice::gateway
