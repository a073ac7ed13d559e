// The audit trail: an append-only, hash-chained log in the store's "audit" table. Each entry
// records who (actor), what (action), on what (object) and how it ended (outcome), with the
// SHA-256 of the previous entry, so removing or editing any entry breaks the chain from
// there on; `sluicectl audit verify` checks the whole chain and prints its head hash for
// the operator to keep outside the machine. Entries are masked of personal data. Writes go
// through the store's group commit in the order they are made.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace sluice::queue {
class Store;
class TableWriter;
}  // namespace sluice::queue

namespace sluice::ops {

struct AuditEntry {
  std::uint64_t seq = 0;
  std::string time;
  std::string actor;
  std::string action;
  std::string object;
  std::string outcome;
  std::string prev;  // hex SHA-256 of the previous entry (64 zeros for the first)
  std::string hash;  // hex SHA-256 over prev and this entry's canonical JSON
};

struct AuditReport {
  std::uint64_t entries = 0;
  bool intact = true;
  std::uint64_t first_bad = 0;  // seq of the first broken entry when !intact
  std::string problem;
  std::string head;  // hash of the last entry
};

// How many refusals the trail takes one by one: per actor and action, the first `burst` in each
// window; the rest are counted and written as one "<action>.suppressed" entry when the window
// ends. Distinct actors beyond `max_keys` in a window are counted together.
struct RefusalBound {
  std::size_t burst = 20;
  std::int64_t window_ms = 60'000;
  std::size_t max_keys = 4096;
};

class AuditLog {
 public:
  AuditLog(queue::Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  // Appends an entry (durable with the next group commit). Failures are logged, not thrown:
  // the operation being audited has already happened.
  void record(const std::string& actor, const std::string& action, const std::string& object,
              const std::string& outcome);
  // Appends and calls `done` once the entry is on disk (or failed; the failure is logged).
  void record_then(const std::string& actor, const std::string& action, const std::string& object,
                   const std::string& outcome, std::move_only_function<void(Result<void>)> done);
  // Appends and waits until it is on disk.
  Result<void> record_sync(const std::string& actor, const std::string& action,
                           const std::string& object, const std::string& outcome);
  // Appends the entry in the transaction that makes `change` (run first, with the same
  // writer), so that the entry is on disk exactly when the change is; waits for the commit.
  Result<void> record_with(const std::string& actor, const std::string& action,
                           const std::string& object, const std::string& outcome,
                           std::function<Result<void>(queue::TableWriter&)> change,
                           std::size_t bytes);
  // A refusal, audited within the RefusalBound so that a client refused in a loop cannot grow
  // the trail without bound. `done` (optional) is called once the entry is on disk, or at
  // once when the refusal was only counted. Ended windows are summarised here and by
  // flush_refusals(), which the gateway's maintenance calls (and again at shutdown).
  void record_refusal(const std::string& actor, const std::string& action,
                      const std::string& object, const std::string& outcome,
                      std::move_only_function<void(Result<void>)> done = {});
  void flush_refusals(bool all = false);
  void set_refusal_bound(RefusalBound bound);

  Result<AuditReport> verify() const;
  Result<std::vector<AuditEntry>> tail(std::size_t n) const;

  static constexpr const char* kTable = "audit";

 private:
  struct RefusalWindow {
    std::int64_t start_ms = 0;
    std::size_t written = 0;
    std::size_t suppressed = 0;
    std::string last_object;
  };
  struct Summary {
    std::string actor, action, object, outcome;
  };
  // Takes the summaries of ended windows (all when `all`). Under refusals_mutex_.
  std::vector<Summary> take_ended(std::int64_t now, bool all);

  queue::Store& store_;
  const Clock& clock_;
  std::mutex refusals_mutex_;
  RefusalBound bound_;  // Guarded by refusals_mutex_.
  std::map<std::pair<std::string, std::string>, RefusalWindow>
      refusals_;  // Guarded by refusals_mutex_.
};

}  // namespace sluice::ops
