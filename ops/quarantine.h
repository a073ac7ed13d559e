// The quarantine: every input that failed translation or validation is kept, with its raw
// bytes, sender, source, time and structured problems, until an operator resubmits
// (optionally corrected) or discards it. Entries live in the store's "quarantine" table
// (durable through the group commit); ids are time-ordered UUIDs, so listing is newest
// first. Bounded by quarantine.max_mb: when full, put() fails and the caller tells the
// sender that nothing was kept (never a silent drop).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "common/random.h"
#include "xml/problem.h"

namespace sluice::queue {
class Store;
}

namespace sluice::ops {

struct QuarantineEntry {
  std::string id;
  std::int64_t time_ms = 0;
  std::string sender;  // node/system the input came from
  std::string source;  // api, feed:<name>, spool:<name>/<file>, resubmit:<id>
  std::string feed;    // feed to run it through again (empty: a standard document)
  std::string kind;    // document | feed-input | feed-record
  std::int64_t record = -1;
  int line = 0;
  std::string code;  // the first problem's code
  std::string message;
  xml::Problems problems;
  int resubmissions = 0;
  std::string raw;  // the input as received (UTF-8 for translated records)
};

class Quarantine {
 public:
  Quarantine(queue::Store& store, const Clock& clock, Random& random, std::uint64_t max_bytes);
  // Computes the bytes held (scan at start).
  Result<void> open();
  using PutCallback = std::move_only_function<void(Result<std::string>)>;
  // Stores `entry` (id and time are assigned) durably; `done` gets the id.
  void put_async(QuarantineEntry entry, PutCallback done);
  Result<std::string> put(QuarantineEntry entry);
  Result<QuarantineEntry> get(const std::string& id) const;
  // Newest first; raw bytes are left out unless `with_raw`.
  Result<std::vector<QuarantineEntry>> list(std::size_t limit, bool with_raw = false) const;
  Result<void> replace(const QuarantineEntry& entry);
  Result<void> remove(const std::string& id);
  std::uint64_t bytes() const { return bytes_.load(); }
  std::uint64_t count() const { return count_.load(); }

  static constexpr const char* kTable = "quarantine";

 private:
  queue::Store& store_;
  const Clock& clock_;
  Random& random_;
  std::uint64_t max_bytes_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> count_{0};
};

std::string encode_entry(const QuarantineEntry& e);
std::optional<QuarantineEntry> decode_entry(std::string_view value);

}  // namespace sluice::ops
