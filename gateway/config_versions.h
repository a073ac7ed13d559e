// The versions of the run-time configuration (gateway/run_config.h) in the store's "config"
// table, numbered from 1. A change is a new version, written in the same transaction as its
// audit entry; a rollback is a new version with an old one's content, so the history only
// grows. The newest version is the one in use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace sluice::queue {
class Store;
}
namespace sluice::ops {
class AuditLog;
}

namespace sluice::gateway {

struct ConfigVersion {
  std::uint64_t version = 0;
  std::string time;    // +08:00
  std::string actor;   // the admin certificate's OU/CN, or "system"
  std::string action;  // config.seed, config.import, config.add, config.update, ...
  std::string note;    // what changed, in one line
  std::string toml;    // the whole run-time configuration
};

class ConfigVersions {
 public:
  static constexpr const char* kTable = "config";

  ConfigVersions(queue::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  Result<std::optional<ConfigVersion>> latest() const;
  Result<std::optional<ConfigVersion>> get(std::uint64_t version) const;
  // Newest first, at most `limit`, without their TOML.
  Result<std::vector<ConfigVersion>> history(std::size_t limit) const;
  // Writes the next version and its audit entry (`audit_outcome`: before -> after) in one
  // transaction, waiting for the commit. Fails when `expected_latest` is no longer the newest
  // version (another change went first).
  Result<ConfigVersion> commit(std::uint64_t expected_latest, std::string toml,
                               const std::string& actor, const std::string& action,
                               const std::string& note, ops::AuditLog& audit,
                               const std::string& audit_outcome);

 private:
  queue::Store& store_;
  const Clock& clock_;
};

}  // namespace sluice::gateway
