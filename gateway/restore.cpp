#include "gateway/restore.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "gateway/config_versions.h"
#include "ops/audit.h"
#include "queue/queue.h"

namespace sluice::gateway {
namespace {

namespace fs = std::filesystem;

// The store's own lock (queue/recovery.cpp takes it at open): held for the whole restore.
class StoreLock {
 public:
  explicit StoreLock(const fs::path& store) : path_(store / "sluice.lock") {}
  ~StoreLock() { release(); }
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;
  Result<void> take() {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return fail(Errc::kIo, "open " + path_.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return fail(Errc::kUnavailable, "the store " + path_.parent_path().string() +
                                          " is in use: stop sluiced before restoring it");
    }
    return {};
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

queue::Options options_at(const Config& config, const fs::path& path) {
  queue::Options o = config.store;
  o.path = path;
  o.extension_tables = {ops::AuditLog::kTable, "quarantine", ConfigVersions::kTable};
  return o;
}

std::string stamp(std::int64_t ms) {
  std::string t = format_time_cn(ms);  // 2026-12-03T15:04:05.123+08:00
  std::string out;
  for (char c : t.substr(0, 19)) {
    if (c != '-' && c != ':') out.push_back(c == 'T' ? '-' : c);
  }
  return out;  // 20261203-150405
}

}  // namespace

Result<std::string> restore_store(const Config& config, const fs::path& backup) {
  const fs::path store = config.store.path;
  const fs::path source = backup / "data.mdb";
  std::error_code ec;
  if (!fs::is_regular_file(source, ec)) {
    return fail(Errc::kNotFound,
                source.string() + " does not exist: name the directory sluicectl backup wrote");
  }
  fs::create_directories(store, ec);
  if (ec) return fail(Errc::kIo, "create " + store.string() + ": " + ec.message());
  StoreLock lock(store);
  if (auto r = lock.take(); !r) return fail(r.error());

  // 1. A copy of the backup beside the store, opened and checked there.
  const fs::path staging = store.parent_path() / (store.filename().string() + ".restoring");
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return fail(Errc::kIo, "create " + staging.string() + ": " + ec.message());
  fs::permissions(staging, fs::perms::owner_all, fs::perm_options::replace, ec);
  fs::copy_file(source, staging / "data.mdb", ec);
  if (ec) return fail(Errc::kIo, "copy " + source.string() + ": " + ec.message());
  fs::permissions(staging / "data.mdb", fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace, ec);
  std::string summary;
  {
    auto copy = queue::Store::open(options_at(config, staging));
    if (!copy) {
      return fail(Errc::kInvalidArgument, backup.string() +
                                              " is not a store this sluiced can open: " +
                                              copy.error().message + " (nothing was changed)");
    }
    ops::AuditLog audit(**copy, SystemClock::instance());
    auto report = audit.verify();
    if (!report) return fail(report.error());
    if (!report->intact) {
      return fail(Errc::kInvalidArgument, "the backup's audit trail does not verify at entry " +
                                              std::to_string(report->first_bad) + " (" +
                                              report->problem +
                                              "): not restored, nothing was changed");
    }
    ConfigVersions versions(**copy, SystemClock::instance());
    auto latest = versions.latest();
    const auto st = (*copy)->stats();
    summary = "the backup holds " + std::to_string(st.queued_messages) +
              " message(s) waiting for delivery and " + std::to_string(st.history_messages) +
              " delivered in its history; its audit trail of " + std::to_string(report->entries) +
              " entries verifies (head " + report->head + ")";
    if (latest && *latest) {
      summary += "; run-time configuration version " + std::to_string((*latest)->version);
    }
    (*copy)->close();
  }

  // 2. The store it replaces is kept; the checked copy takes its place.
  const fs::path kept = store.parent_path() / (store.filename().string() + ".before-restore-" +
                                               stamp(SystemClock::instance().now_ms()));
  if (fs::exists(store / "data.mdb", ec)) {
    fs::create_directories(kept, ec);
    fs::permissions(kept, fs::perms::owner_all, fs::perm_options::replace, ec);
    fs::rename(store / "data.mdb", kept / "data.mdb", ec);
    if (ec)
      return fail(Errc::kIo, "keep the current store in " + kept.string() + ": " + ec.message());
    summary += "\nthe store it replaced is kept in " + kept.string();
  }
  fs::remove(store / "lock.mdb", ec);  // LMDB's reader table: nobody reads (the lock is ours)
  fs::rename(staging / "data.mdb", store / "data.mdb", ec);
  if (ec)
    return fail(Errc::kIo, "move the restored store into " + store.string() + ": " + ec.message());
  (void)fsync_directory(store);
  (void)fsync_directory(store.parent_path());
  fs::remove_all(staging, ec);

  // 3. The restore is the restored trail's next entry. (Our lock is released first: the
  // store takes it itself.)
  lock.release();
  auto restored = queue::Store::open(options_at(config, store));
  if (!restored) return fail(restored.error());
  ops::AuditLog audit(**restored, SystemClock::instance());
  if (auto r = audit.record_sync(
          "system/restore", "store.restore", store.string(),
          "from " + backup.string() +
              (fs::exists(kept) ? "; the store it replaced is kept in " + kept.string() : ""));
      !r) {
    return fail(r.error());
  }
  (*restored)->close();
  return "restored " + store.string() + " from " + backup.string() + ": " + summary +
         "\nmessages accepted after the backup was made are not in it (they are in the kept "
         "store); "
         "deliveries made since are made again: receivers recognise them by MessageId";
}

}  // namespace sluice::gateway
