// Durability tests in child processes.
//
// The SIGKILL test kills a writer at random points and checks that every append it had been
// told was durable is in the store after reopening. A SIGKILL keeps the kernel's page cache,
// so that test would pass even with MDB_NOSYNC (no sync at all): it checks that acks follow
// commits, not that commits reach the disk. Durability is checked by the sync-shim tests
// below, which re-execute this binary with tests/support/syncshim preloaded: one checks that
// no callback reports success before a sync that began after the append was submitted, the
// other that failing syncs latch the store read-only and lose no acknowledged append.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/random.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

using namespace sluice;

namespace {

// Child: append from several threads forever; after each durable append, write the id and a
// newline to `fd`. Never returns.
[[noreturn]] void run_writer(const std::filesystem::path& path, int fd, std::uint64_t seed) {
  queue::Options o;
  o.path = path;
  o.map_size_bytes = 256ull << 20;
  auto store = queue::Store::open(o);
  if (!store) {
    _exit(3);
  }
  SeededRandom random(seed);
  std::atomic<std::uint64_t> counter{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        std::uint64_t n = counter.fetch_add(1);
        queue::NewMessage m;
        m.message_id = new_uuid(random);
        m.sender = "crash/test";
        m.sender_message_id = std::to_string(seed) + "-" + std::to_string(n);
        m.doc_type = "case.accept";
        m.ordering_key = "case-" + std::to_string(n % 7);
        m.destinations = {"sink"};
        m.payload = std::string(1500 + n % 1000, 'c');
        auto r = (*store)->append(std::move(m));
        if (!r) {
          _exit(4);
        }
        std::string line = r->message_id + "\n";
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(5);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

}  // namespace

TEST_CASE("every append acknowledged before SIGKILL survives reopening") {
  test::TempDir dir("crash");
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::string> acknowledged;
  for (int round = 0; round < 6; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      run_writer(dir / "store", fds[1], rng());
    }
    ::close(fds[1]);
    // Read acknowledgements for a random while, then kill mid-flight.
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(100 + static_cast<int>(rng() % 400));
    std::string buffer;
    char chunk[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    ::kill(pid, SIGKILL);
    // Everything the child wrote before dying counts as acknowledged.
    for (;;) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    std::size_t start = 0;
    while (true) {
      std::size_t nl = buffer.find('\n', start);
      if (nl == std::string::npos) break;  // a torn last line was never fully acknowledged
      acknowledged.push_back(buffer.substr(start, nl - start));
      start = nl + 1;
    }
  }
  REQUIRE(acknowledged.size() > 100);
  queue::Options o;
  o.path = dir / "store";
  o.map_size_bytes = 256ull << 20;
  auto store = queue::Store::open(o);
  REQUIRE(store);
  std::size_t missing = 0;
  for (const auto& id : acknowledged) {
    if (!(*store)->status(id)) ++missing;
  }
  INFO("acknowledged=" << acknowledged.size());
  CHECK(missing == 0);
  CHECK((*store)->stats().queued_messages >= acknowledged.size());
}

// --- sync shim ------------------------------------------------------------------------------

extern char** environ;

namespace {

constexpr const char* kChildMode = "SLUICE_QUEUE_SYNC_CHILD";
constexpr const char* kChildDir = "SLUICE_QUEUE_SYNC_CHILD_DIR";

long long monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

// One write(2) per line on an O_APPEND descriptor the shim also appends to: the file order is
// the order in which the lines were written.
void log_line(int fd, const std::string& line) {
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::abort();
  }
}

// The shim library, or nullptr when this build has none (tests/CMakeLists.txt does not add
// tests/support/syncshim yet) or it cannot be preloaded (sanitizer runtimes must come first).
const char* shim_path() {
#if defined(__SANITIZE_ADDRESS__)
  return nullptr;
#elif defined(SLUICE_SYNCSHIM_PATH)
  return SLUICE_SYNCSHIM_PATH;
#else
  return std::getenv("SLUICE_SYNCSHIM");
#endif
}

// Runs this binary's hidden test "sync shim child" with the shim preloaded and `env` added;
// returns its exit status (-1 if it did not exit normally). Its output goes to `out`.
int run_child(const std::map<std::string, std::string>& env, const std::filesystem::path& out) {
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0) vars.emplace_back(*e);
  }
  vars.push_back(std::string("LD_PRELOAD=") + shim_path());
  for (const auto& [k, v] : env) vars.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string name = "sync shim child";
  std::vector<char*> argv{self.data(), name.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct LogLine {
  std::string kind;  // submit, ack, sync, sync-failed
  long long ns = 0;
  std::string id;
};

std::vector<LogLine> read_log(const std::filesystem::path& p) {
  std::vector<LogLine> lines;
  std::ifstream in(p);
  std::string text;
  while (std::getline(in, text)) {
    std::istringstream fields(text);
    LogLine l;
    fields >> l.kind >> l.ns >> l.id;
    lines.push_back(std::move(l));
  }
  return lines;
}

queue::Options child_options(const std::filesystem::path& path) {
  queue::Options o;
  o.path = path;
  o.map_size_bytes = 64ull << 20;
  return o;
}

queue::NewMessage shim_message(Random& random, const std::string& smid) {
  queue::NewMessage m;
  m.message_id = new_uuid_v7(random, 1'700'000'000'000);
  m.sender = "shim/test";
  m.sender_message_id = smid;
  m.doc_type = "case.accept";
  m.destinations = {"sink"};
  m.payload = std::string(2048, 's');
  return m;
}

}  // namespace

// Runs only when re-executed by the tests below (environment kChildMode set): appends from
// four threads, logging "submit <ns> <id>" before each append and "ack <ns> <id>" from its
// callback when it reports success. Mode "order" appends a fixed number; mode "fail" appends
// until the shim's failing syncs make appends fail, then checks the store is latched.
TEST_CASE("sync shim child", "[.]") {
  const char* mode = std::getenv(kChildMode);
  const char* dir = std::getenv(kChildDir);
  const char* log = std::getenv("SLUICE_SYNCSHIM_LOG");
  if (mode == nullptr || dir == nullptr || log == nullptr) {
    SUCCEED("only runs as the child of a sync shim test");
    return;
  }
  bool until_failure = std::string(mode) == "fail";
  int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  auto store = queue::Store::open(child_options(dir));
  REQUIRE(store);
  SeededRandom random(99);
  std::atomic<bool> failed{false};
  std::atomic<int> wrong_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300 && !failed.load(); ++i) {
        auto m = shim_message(random, std::to_string(t) + "-" + std::to_string(i));
        std::string id = m.message_id;
        log_line(fd, "submit " + std::to_string(monotonic_ns()) + " " + id + "\n");
        std::promise<void> done;
        (*store)->append_async(std::move(m), [&](Result<queue::Appended> r) {
          if (r) {
            log_line(fd, "ack " + std::to_string(monotonic_ns()) + " " + r->message_id + "\n");
          } else {
            failed.store(true);
            if (!r.error().is(Errc::kStoreFailed)) wrong_errors.fetch_add(1);
          }
          done.set_value();
        });
        done.get_future().wait();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong_errors.load() == 0);
  if (until_failure) {
    REQUIRE(failed.load());
    CHECK((*store)->stats().read_only);
    auto later = (*store)->append(shim_message(random, "later"));
    REQUIRE_FALSE(later);
    CHECK(later.error().is(Errc::kStoreFailed));
  } else {
    CHECK_FALSE(failed.load());
  }
  ::close(fd);
}

TEST_CASE("no append is acknowledged before a sync that began after it was submitted") {
  if (shim_path() == nullptr) {
    WARN("skipped: this build has no sync shim (add tests/support/syncshim to tests/CMakeLists)");
    return;
  }
  test::TempDir dir("syncorder");
  auto log = dir / "log";
  int rc = run_child({{kChildMode, "order"},
                      {kChildDir, (dir / "store").string()},
                      {"SLUICE_SYNCSHIM_LOG", log.string()}},
                     dir / "child.out");
  INFO(slurp(dir / "child.out"));
  REQUIRE(rc == 0);
  auto lines = read_log(log);
  std::map<std::string, long long> submitted;
  long long last_sync_ns = -1;  // start of the latest sync that returned
  std::size_t acks = 0, syncs = 0, early = 0;
  for (const auto& l : lines) {
    if (l.kind == "submit") {
      submitted[l.id] = l.ns;
    } else if (l.kind == "sync") {
      last_sync_ns = std::max(last_sync_ns, l.ns);
      ++syncs;
    } else if (l.kind == "ack") {
      ++acks;
      auto it = submitted.find(l.id);
      if (it == submitted.end() || last_sync_ns <= it->second) {
        ++early;
        UNSCOPED_INFO("acknowledged without a sync after its submission: " << l.id);
      }
    }
  }
  CHECK(acks == 1200);
  CHECK(syncs > 0);
  CHECK(early == 0);
}

TEST_CASE("failing syncs latch the store read-only and lose no acknowledged append") {
  if (shim_path() == nullptr) {
    WARN("skipped: this build has no sync shim (add tests/support/syncshim to tests/CMakeLists)");
    return;
  }
  test::TempDir dir("syncfail");
  auto log = dir / "log";
  int rc = run_child({{kChildMode, "fail"},
                      {kChildDir, (dir / "store").string()},
                      {"SLUICE_SYNCSHIM_LOG", log.string()},
                      {"SLUICE_SYNCSHIM_FAIL_AFTER", "40"}},
                     dir / "child.out");
  INFO(slurp(dir / "child.out"));
  REQUIRE(rc == 0);
  std::vector<std::string> acked;
  std::size_t failed_syncs = 0;
  for (const auto& l : read_log(log)) {
    if (l.kind == "ack") acked.push_back(l.id);
    if (l.kind == "sync-failed") ++failed_syncs;
  }
  CHECK(failed_syncs > 0);
  REQUIRE(acked.size() >= 20);
  auto store = queue::Store::open(child_options(dir / "store"));
  REQUIRE(store);
  std::size_t missing = 0;
  for (const auto& id : acked) {
    if (!(*store)->status(id)) ++missing;
  }
  INFO("acknowledged=" << acked.size());
  CHECK(missing == 0);
  CHECK((*store)->stats().queued_messages == acked.size());
  CHECK_FALSE((*store)->stats().read_only);
}
