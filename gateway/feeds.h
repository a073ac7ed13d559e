// Department feeds: an input in a department's format goes through its feed's adapter, and
// each translated record through the common ingest pipeline (validation, authorization,
// routing, persisting). Good records are stored even when others fail; each failed record
// is reported with its record and line number and kept in the quarantine with its raw text.
// Runs on its own worker threads, never on network threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "gateway/config.h"
#include "gateway/http.h"
#include "gateway/ingest.h"

namespace sluice::adapters {
class Adapter;
class Registry;
}  // namespace sluice::adapters

namespace sluice::gateway {

class Authorizer;
class AuditLog;
class Quarantine;

struct FeedOutcome {
  struct Ok {
    std::int64_t record;
    int line;
    std::string message_id;
    bool duplicate;
  };
  struct Bad {
    std::int64_t record;
    int line;
    Rejection rejection;
  };
  std::string feed;
  std::optional<Rejection> fatal;  // the input as a whole was refused
  std::uint64_t records = 0;
  std::vector<Ok> accepted;
  std::vector<Bad> rejected;
  // True when a record was refused only for backpressure (store full): try again later.
  bool retry_later() const;
};

class FeedIngest {
 public:
  static Result<std::unique_ptr<FeedIngest>> create(const Config& config,
                                                    const adapters::Registry& registry,
                                                    Ingest& ingest, Quarantine* quarantine,
                                                    const Authorizer* authorizer, AuditLog* audit);
  ~FeedIngest();

  bool has_feed(const std::string& name) const;
  // Runs the feed on the calling thread (not a network thread). `single_record`: `input` is
  // one record as kept in the quarantine.
  FeedOutcome run(const std::string& feed, std::string_view input, const PeerIdentity& sender,
                  const std::string& source, bool single_record = false);
  // Runs on the feed workers; `done` is called there.
  void submit(std::string feed, std::vector<std::string> inputs, PeerIdentity sender,
              std::string source, std::move_only_function<void(std::vector<FeedOutcome>)> done);
  // Runs `job` on the feed workers (quarantine resubmission and other slow admin work).
  void post(std::move_only_function<void()> job);

  class Impl;

 private:
  explicit FeedIngest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The JSON answer for one or more feed inputs, and the HTTP status it deserves (202 all
// accepted, 207 some refused, 422 none accepted, or the fatal status).
std::pair<unsigned, std::string> feed_outcome_json(const std::vector<FeedOutcome>& outcomes,
                                                   const std::vector<std::string>& part_names);

}  // namespace sluice::gateway
