#include "ingress/spool_in.h"

#include <poll.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/fs.h"
#include "common/metrics.h"
#include "ingress/feeds.h"
#include "ingress/outcome_json.h"

namespace sluice::ingress {
namespace fs = std::filesystem;

Result<std::unique_ptr<SpoolWatcher>> SpoolWatcher::start(const SpoolInConfig& config,
                                                          FeedIngest& feeds, Metrics& metrics,
                                                          std::size_t max_file_bytes) {
  std::error_code ec;
  for (const char* sub : {"incoming", "done", "failed"}) {
    fs::create_directories(config.path / sub, ec);
    if (ec) {
      return fail(Errc::kIo, "spool_in " + config.name + ": cannot create " +
                                 (config.path / sub).string() + ": " + ec.message());
    }
  }
  if (!feeds.has_feed(config.feed)) {
    return fail(Errc::kInvalidArgument,
                "spool_in " + config.name + ": unknown feed " + config.feed);
  }
  std::optional<unsigned> owner_uid;
  if (!config.owner.empty()) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (getpwnam_r(config.owner.c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr) {
      return fail(Errc::kInvalidArgument,
                  "spool_in " + config.name + ": owner " + config.owner + " is not a known user");
    }
    owner_uid = pw.pw_uid;
  }
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return fail(Errc::kIo, "inotify_init1: " + std::string(std::strerror(errno)));
  }
  if (inotify_add_watch(fd, (config.path / "incoming").c_str(), IN_MOVED_TO) < 0) {
    int err = errno;
    ::close(fd);
    return fail(Errc::kIo, "inotify_add_watch " + (config.path / "incoming").string() + ": " +
                               std::strerror(err));
  }
  std::unique_ptr<SpoolWatcher> w(new SpoolWatcher(config, feeds, metrics, max_file_bytes, fd));
  w->owner_uid_ = owner_uid;
  w->thread_ = std::jthread([raw = w.get()](std::stop_token stop) { raw->run(stop); });
  return w;
}

SpoolWatcher::SpoolWatcher(const SpoolInConfig& config, FeedIngest& feeds, Metrics& metrics,
                           std::size_t max_bytes, int inotify_fd)
    : config_(config), feeds_(feeds), metrics_(metrics), max_bytes_(max_bytes), fd_(inotify_fd) {}

SpoolWatcher::~SpoolWatcher() {
  stop();
  ::close(fd_);
}

void SpoolWatcher::stop() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void SpoolWatcher::run(std::stop_token stop) {
  std::vector<std::string> pending;
  auto rescan = [&] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(config_.path / "incoming", ec)) {
      std::string name = entry.path().filename().string();
      if (std::find(pending.begin(), pending.end(), name) == pending.end()) {
        pending.push_back(name);
      }
    }
    std::sort(pending.begin(), pending.end());
  };
  rescan();
  auto next_rescan = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  alignas(inotify_event) char buf[16 * 1024];
  while (!stop.stop_requested()) {
    while (!pending.empty() && !stop.stop_requested()) {
      std::string name = pending.front();
      pending.erase(pending.begin());
      if (!process(name)) {
        // Backpressure: retry this file (and everything after it) a little later.
        pending.insert(pending.begin(), name);
        next_rescan = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        break;
      }
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc > 0) {
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (char* ptr = buf; ptr < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(ptr);
          if ((ev->mask & IN_Q_OVERFLOW) != 0) {
            rescan();
          } else if (ev->len > 0) {
            std::string name = ev->name;
            if (std::find(pending.begin(), pending.end(), name) == pending.end()) {
              pending.push_back(name);
            }
          }
          ptr += sizeof(inotify_event) + ev->len;
        }
      }
    }
    if (std::chrono::steady_clock::now() >= next_rescan) {
      rescan();
      next_rescan = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    }
  }
}

bool SpoolWatcher::process(const std::string& name) {
  if (name.empty() || name[0] == '.' || name.ends_with(".errors.json")) return true;
  fs::path file = config_.path / "incoming" / name;
  std::error_code ec;
  // A name that is gone, or a directory, is not ours to handle; anything else that is not a
  // plain file (a symlink, a FIFO, a hard link) is refused by read_dropped_file below.
  auto kind = fs::symlink_status(file, ec).type();
  if (ec || kind == fs::file_type::not_found || kind == fs::file_type::directory) return true;
  auto target = [&](const char* sub, const std::string& n) {
    fs::path t = config_.path / sub / n;
    if (fs::exists(t, ec)) {
      t = config_.path / sub / (n + "." + std::to_string(::time(nullptr)));
    }
    return t;
  };
  auto content = read_dropped_file(file, max_bytes_, owner_uid_);
  std::string source = "spool:" + config_.name + "/" + name;
  if (!content) {
    fs::path failed = target("failed", name);
    if (auto moved = rename_durable(file, failed); !moved) {
      // Neither readable nor movable: say so once and leave it for an operator.
      if (unmovable_.insert(name).second) {
        spdlog::error("{}: {} cannot be read ({}) nor moved to failed/ ({}); left in incoming/",
                      source, name, content.error().message, moved.error().message);
      }
      return true;
    }
    boost::json::object err{{"code", "spool.unreadable"}, {"message", content.error().message}};
    if (auto r =
            write_file_durable(failed.string() + ".errors.json",
                               boost::json::serialize(boost::json::object{{"error", err}}) + "\n");
        !r) {
      spdlog::error("{}: cannot write errors for {}: {}", source, name, r.error().message);
    }
    spdlog::warn("{}: {} moved to failed/: {}", source, name, content.error().message);
    metrics_.add("sluice_spool_files_total", "spool=\"" + config_.name + "\",result=\"failed\"");
    return true;
  }
  PeerIdentity sender;
  sender.authenticated = true;
  auto slash = config_.sender.find('/');
  sender.node = config_.sender.substr(0, slash);
  sender.system = config_.sender.substr(slash + 1);
  sender.subject = "spool directory " + config_.path.string();
  FeedOutcome outcome = feeds_.run(config_.feed, *content, sender, source);
  if (outcome.retry_later()) {
    spdlog::warn("{}: the store is pushing back; {} stays in incoming/ and is retried", source,
                 name);
    return false;
  }
  bool ok = !outcome.fatal && outcome.rejected.empty();
  fs::path dest = target(ok ? "done" : "failed", name);
  if (auto r = rename_durable(file, dest); !r) {
    // Its records are stored; leaving it would only make them resends. Say it once.
    if (unmovable_.insert(name).second) {
      spdlog::error("{}: processed {} but cannot move it: {}", source, name, r.error().message);
    }
    return true;
  }
  if (!ok) {
    std::string body = feed_outcome_json({outcome}, {name});
    if (auto r = write_file_durable(dest.string() + ".errors.json", body + "\n"); !r) {
      spdlog::error("{}: cannot write errors for {}: {}", source, name, r.error().message);
    }
  }
  metrics_.add("sluice_spool_files_total",
               "spool=\"" + config_.name + "\",result=\"" + (ok ? "done" : "failed") + "\"");
  return true;
}

}  // namespace sluice::ingress
