// A spool directory as a destination: each document becomes <dir>/<MessageId>.xml, written to
// a temporary name, fsynced, renamed and the directory fsynced, on a small thread pool (file
// writes never block network threads). A failed write makes the destination unreachable
// (it pauses) rather than spending the message's attempts.
#pragma once

#include <filesystem>
#include <memory>

#include "common/error.h"
#include "delivery/sink.h"

namespace sluice::delivery {

Result<std::unique_ptr<Sink>> make_spool_sink(const std::filesystem::path& dir);

}  // namespace sluice::delivery
