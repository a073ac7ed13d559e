// Logging setup. Every line written by any Sluice logger passes through a masking sink, so
// personal data (ID and mobile numbers) that slips into a message is masked before it is
// written (see pii.h). Call init_logging() once at start; libraries log through spdlog's
// default logger.
#pragma once

#include <string>

namespace sluice {

// level: trace, debug, info, warn, error, off. Writes to stderr.
void init_logging(const std::string& level);

}  // namespace sluice
