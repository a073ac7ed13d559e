// File helpers with durability rules: a file that another system will pick up is written
// to a temporary name in the same directory, fsynced, renamed into place, and the directory
// is fsynced, so a reader never sees a partial file and a crash never loses a renamed one.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <optional>

#include "common/error.h"

namespace sluice {

// Writes `data` to `path` atomically and durably (temp + fsync + rename + dir fsync).
// `mode` is the file mode of the result.
Result<void> write_file_durable(const std::filesystem::path& path, std::string_view data,
                                int mode = 0644);
// Reads a whole file, refusing files larger than `max_bytes`.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes = 64u << 20);
// Reads a file that another party put there (a spool directory): a symlink is refused
// (O_NOFOLLOW) and so is anything but a regular file with a single link, checked on the open
// descriptor (fstat), never on the path; with `owner_uid`, a file owned by anyone else too.
// kInvalidArgument says which rule it broke.
Result<std::string> read_dropped_file(const std::filesystem::path& path, std::size_t max_bytes,
                                      std::optional<unsigned> owner_uid);
// fsyncs a directory so a rename or unlink in it is durable.
Result<void> fsync_directory(const std::filesystem::path& dir);
// Renames durably (rename + fsync of both directories).
Result<void> rename_durable(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace sluice
