// Run-time configuration on the admin API (sluicectl config ...):
//   GET    /admin/v1/config[?version=N]          a version (the newest by default) as TOML
//   GET    /admin/v1/config/history?limit=       the versions, newest first
//   GET    /admin/v1/config/diff?from=A&to=B     what changed between two versions
//   POST   /admin/v1/config/import[?dry_run=1]   a whole run-time configuration (TOML body)
//   POST   /admin/v1/config/rollback?version=N[&dry_run=1]
//   GET    /admin/v1/config/{kind}[/{key}]       list, show
//   POST   /admin/v1/config/{kind}[?dry_run=1]   add (body: the object's TOML keys)
//   PUT    /admin/v1/config/{kind}/{key}[?dry_run=1]   update the keys given
//   DELETE /admin/v1/config/{kind}/{key}[?dry_run=1]
// Every change is checked whole (gateway/run_config.h, check_change, and what only the running
// half can check), written as a new version with its audit entry (who, before -> after) in one
// transaction, and only then put in use — without a restart; messages already stored keep the
// destinations they were routed to. A dry run answers the same diff and changes nothing.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.h"
#include "gateway/config.h"
#include "gateway/config_versions.h"
#include "gateway/run_config.h"

namespace sluice::api {
class AdminApi;
}

namespace sluice::gateway {

class RunConfigService {
 public:
  // Checks what only the running half can (mapping files load, destination sinks build, a
  // removed destination has nothing waiting) and builds what the change needs; the function it
  // returns puts that in use. An error says why the change cannot be made.
  using Prepare =
      std::function<Result<std::function<void()>>(const RunConfig& from, const RunConfig& to)>;

  RunConfigService(const Config& base, ConfigVersions& versions, ops::AuditLog& audit,
                   Prepare prepare);

  // At start, before the pipeline is built: the newest stored version, or — in a new store —
  // version 1 seeded from sluiced's file. Returns `base` with that version's sections.
  Result<Config> open();
  std::shared_ptr<const RunConfig> current() const;

  void register_routes(api::AdminApi& admin);

 private:
  struct Change;
  Result<std::string> change(const Change& c);  // the answer's JSON
  std::filesystem::path base_dir() const;

  Config base_;
  ConfigVersions& versions_;
  ops::AuditLog& audit_;
  Prepare prepare_;
  std::mutex mutex_;           // one change at a time
  std::uint64_t version_ = 0;  // in use. Guarded by mutex_.
  std::atomic<std::shared_ptr<const RunConfig>> current_;
};

}  // namespace sluice::gateway
