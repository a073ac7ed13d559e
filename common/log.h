// Logging setup. Every line written by any Sluice logger passes through a sanitising sink:
// personal data (ID and mobile numbers) that slips into a message is masked (see pii.h), and
// control characters are escaped, so a value that carries a newline (a spool file name, a
// header) cannot forge a log line. Call init_logging() once at start; libraries log through
// spdlog's default logger.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// What the sink writes for a message: masked, with every control character (and DEL) as
// \xNN, so one message is always one line.
std::string sanitize_log_message(std::string_view message);

// level: trace, debug, info, warn, error, off. format: "text" (time, level, message) or
// "json" (one object per line). Writes to stderr, times in +08:00 like the API, with
// journald priority prefixes when systemd connected stderr to the journal.
void init_logging(const std::string& level, const std::string& format = "text");

}  // namespace sluice
