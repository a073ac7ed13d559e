// Kills a writer process with SIGKILL at random points and checks that every append it had
// been told was durable is in the store after reopening.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <random>
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
