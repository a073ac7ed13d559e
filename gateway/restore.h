// Restoring a half's store from a backup (`sluicectl backup DIR` made it, online), offline:
// `sluiced --config FILE --restore-from DIR`. The backup is first copied beside the store and
// opened there — a copy that is not a Sluice store, or whose audit trail does not verify, is
// refused and nothing changes — then put in the store's place; the store it replaces is kept
// beside it (<store>.before-restore-<time>/), and the restore is the first entry the restored
// trail gets. Refused while sluiced runs on the store (its lock is held).
#pragma once

#include <filesystem>
#include <string>

#include "common/error.h"
#include "gateway/config.h"

namespace sluice::gateway {

// Returns what was restored, in a few lines for the operator.
Result<std::string> restore_store(const Config& config, const std::filesystem::path& backup);

}  // namespace sluice::gateway
