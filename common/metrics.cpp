#include "common/metrics.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <mutex>

namespace sluice {

namespace {

struct Family {
  std::string_view name;
  std::string_view type;
  std::string_view help;
};

// Every family sluiced exports. Keep it sorted by name; tests/common checks that a running
// gateway renders nothing outside it.
constexpr Family kCatalogue[] = {
    {"sluice_accept_duration_seconds", "histogram",
     "Time from a document request's arrival to its answer (202 or a refusal), per listener."},
    {"sluice_body_budget_refusals_total", "counter",
     "Requests answered 503 because their body did not fit the shared body budget."},
    {"sluice_body_bytes_in_flight", "gauge",
     "Request body bytes being read or held by all listeners together."},
    {"sluice_connections_evicted_total", "counter",
     "Idle anonymous connections closed to make room for new ones."},
    {"sluice_connections_open", "gauge", "Open client connections, per listener."},
    {"sluice_connections_refused_total", "counter",
     "Connections refused because every slot was authenticated or busy."},
    {"sluice_dead_letters_total", "counter",
     "Deliveries that went dead (refused for good or out of attempts), per destination."},
    {"sluice_deliveries_total", "counter",
     "Delivery attempts by destination and result (delivered, refused, failed, deferred)."},
    {"sluice_delivery_latency_seconds", "histogram",
     "Time from a document's acceptance (its MessageId's time) to its delivery, per destination."},
    {"sluice_destination_backoffs_total", "counter",
     "Times a destination's breaker opened and deliveries to it backed off."},
    {"sluice_ferry_in_flight", "gauge", "Documents sent over the ferry and not yet answered."},
    {"sluice_ferry_link_downs_total", "counter", "Times the ferry link went down."},
    {"sluice_ferry_received_in_progress", "gauge",
     "Documents received over the ferry that this half has not answered yet."},
    {"sluice_ferry_received_refused_total", "counter",
     "Documents received over the ferry that this half refused."},
    {"sluice_ferry_received_total", "counter", "Documents received over the ferry."},
    {"sluice_ferry_refused_total", "counter",
     "Documents sent over the ferry that the other half refused."},
    {"sluice_ferry_sent_total", "counter", "Documents sent over the ferry."},
    {"sluice_ferry_stored_total", "counter",
     "Documents sent over the ferry that the other half answered stored."},
    {"sluice_ferry_up", "gauge", "1 while the ferry link is up, 0 otherwise."},
    {"sluice_ferry_waiting", "gauge",
     "Documents waiting to be sent over the ferry (link down or no credit)."},
    {"sluice_ferry_zap_denied_total", "counter",
     "Ferry connections refused because their CURVE key is not admitted."},
    {"sluice_http_requests_total", "counter", "HTTP requests answered, per listener."},
    {"sluice_ingest_accepted_total", "counter", "Documents accepted and stored, per DocType."},
    {"sluice_ingest_duplicates_total", "counter",
     "Documents sent again with a SenderMessageId already stored (answered with the original)."},
    {"sluice_ingest_rejected_total", "counter", "Documents refused, per refusal code."},
    {"sluice_quarantine_bytes", "gauge", "Bytes held in the quarantine."},
    {"sluice_quarantine_entries", "gauge", "Entries in the quarantine."},
    {"sluice_queue_bytes", "gauge", "Payload bytes of undelivered messages in the store."},
    {"sluice_queue_pending", "gauge",
     "Deliveries not yet delivered, dead or expired, per destination."},
    {"sluice_spool_files_total", "counter", "Spool files taken in, per spool and result."},
    {"sluice_store_commits_total", "counter", "Store transactions committed since start."},
    {"sluice_store_fill_ratio", "gauge",
     "Queued bytes over their bound (store.max_queued_mb), 0 to 1: at 1 new documents are "
     "answered 503 until deliveries make room."},
    {"sluice_store_map_bytes", "gauge", "The store's map size (store.map_size_mb)."},
    {"sluice_store_map_used_bytes", "gauge",
     "Map bytes the store has ever used (high water; freed pages are reused first)."},
    {"sluice_store_queued_bytes_limit", "gauge",
     "The bound on queued bytes (store.max_queued_mb)."},
    {"sluice_store_read_only", "gauge",
     "1 when the store latched read-only after a failed commit (documents are refused)."},
    {"sluice_tls_handshake_failures_total", "counter", "TLS handshakes that failed, per listener."},
};

const Family* find_family(std::string_view name) {
  for (const auto& f : kCatalogue) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Upper bounds in seconds: 1 ms to 5 minutes.
constexpr std::array<double, 16> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60,  300};

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

// Per-bucket counts, not cumulative, the last one above every bound; the count is their sum,
// so a render that races an observation is still consistent (buckets never exceed +Inf).
struct Metrics::Histogram {
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};
  std::atomic<std::uint64_t> sum_us{0};
  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (const auto& b : buckets) n += b.load(std::memory_order_relaxed);
    return n;
  }
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

void Metrics::header(std::string& out, std::string_view name) {
  const Family* f = find_family(name);
  out += "# HELP ";
  out += name;
  out += ' ';
  out += f != nullptr ? f->help : std::string_view("Sluice metric (not in the catalogue).");
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += f != nullptr ? f->type : std::string_view("untyped");
  out += '\n';
}

void Metrics::sample(std::string& out, std::string_view name, std::uint64_t value) {
  header(out, name);
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

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

void Metrics::observe(const std::string& name, const std::string& labels, double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // a clock step backwards (or NaN) counts as 0
  auto record = [&](Histogram& h) {
    std::size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    h.buckets[i].fetch_add(1, std::memory_order_relaxed);
    h.sum_us.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e6)),
                       std::memory_order_relaxed);
  };
  {
    std::shared_lock lock(mutex_);
    auto it = histograms_.find(name);
    if (it != histograms_.end()) {
      auto jt = it->second.find(labels);
      if (jt != it->second.end()) {
        record(*jt->second);
        return;
      }
    }
  }
  std::unique_lock lock(mutex_);
  auto& slot = histograms_[name][labels];
  if (!slot) slot = std::make_unique<Histogram>();
  record(*slot);
}

std::uint64_t Metrics::observations(const std::string& name, const std::string& labels) const {
  std::shared_lock lock(mutex_);
  auto it = histograms_.find(name);
  if (it == histograms_.end()) return 0;
  auto jt = it->second.find(labels);
  return jt == it->second.end() ? 0 : jt->second->count();
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
      header(out, name);
      for (const auto& [labels, value] : series) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " +
               std::to_string(value->load()) + "\n";
      }
    }
    for (const auto& [name, series] : histograms_) {
      header(out, name);
      for (const auto& [labels, h] : series) {
        const std::string sep = labels.empty() ? "" : labels + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < kBuckets.size(); ++i) {
          cumulative += h->buckets[i].load();
          out += name + "_bucket{" + sep + "le=\"" + format_double(kBuckets[i]) + "\"} " +
                 std::to_string(cumulative) + "\n";
        }
        const std::uint64_t count = cumulative + h->buckets[kBuckets.size()].load();
        out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(count) + "\n";
        const std::string braces = labels.empty() ? "" : "{" + labels + "}";
        out += name + "_sum" + braces + " " + format_double(h->sum_us.load() / 1e6) + "\n";
        out += name + "_count" + braces + " " + std::to_string(count) + "\n";
      }
    }
    gauges = gauges_;
  }
  for (const auto& g : gauges) g(out);
  return out;
}

}  // namespace sluice
