// Department feeds: an input in a department's format goes through its feed's adapter, and
// each translated record through the common ingest pipeline (validation, authorization,
// routing, persisting). Good records are stored even when others fail; each failed record
// is reported with its record and line number and kept in the quarantine with its raw text.
// Runs on its own worker threads, never on network threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/identity.h"
#include "ingress/config.h"
#include "pipeline/ingest.h"

namespace sluice::adapters {
class Adapter;
class Registry;
}  // namespace sluice::adapters

namespace sluice::ops {
class AuditLog;
class Quarantine;
}  // namespace sluice::ops
namespace sluice::pipeline {
class Authorizer;
}

namespace sluice::ingress {

using pipeline::Ingest;
using pipeline::Rejection;

struct FeedSet;  // the feeds in use, each with its adapter

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
  static Result<std::unique_ptr<FeedIngest>> create(FeedOptions options,
                                                    const adapters::Registry& registry,
                                                    Ingest& ingest, ops::Quarantine* quarantine,
                                                    const pipeline::Authorizer* authorizer,
                                                    ops::AuditLog* audit);
  ~FeedIngest();

  // The feeds' adapters, each loaded from its mapping file (an error names the feed), to be put
  // in use by use(): a new run-time configuration is checked with load() before it is
  // committed. A run already going keeps the adapter it started with.
  static Result<std::shared_ptr<const FeedSet>> load(const std::vector<FeedConfig>& feeds,
                                                     const adapters::Registry& registry);
  void use(std::shared_ptr<const FeedSet> feeds);

  bool has_feed(const std::string& name) const;
  // Runs the feed on the calling thread (not a network thread). `single_record`: `input` is
  // one record as kept in the quarantine.
  // A record not stored by `deadline` is refused (kDeadline) and not stored: each record is
  // either stored or refused, never half-done.
  // `quarantine_failures` false: what is refused is answered but not kept again (a
  // resubmission from the quarantine, whose entry stays until it succeeds).
  FeedOutcome run(const std::string& feed, std::string_view input, const PeerIdentity& sender,
                  const std::string& source, bool single_record = false,
                  std::chrono::steady_clock::time_point deadline = kNoDeadline,
                  bool quarantine_failures = true);
  // Runs on the feed workers; `done` is called there.
  void submit(std::string feed, std::vector<std::string> inputs, PeerIdentity sender,
              std::string source, std::move_only_function<void(std::vector<FeedOutcome>)> done,
              std::chrono::steady_clock::time_point deadline = kNoDeadline);
  static constexpr auto kNoDeadline = std::chrono::steady_clock::time_point::max();
  // Runs `job` on the feed workers (quarantine resubmission and other slow admin work).
  void post(std::move_only_function<void()> job);

  class Impl;

 private:
  explicit FeedIngest(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ingress
