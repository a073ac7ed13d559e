// sluice-backlog-bench: what a deep backlog costs a Sluice half. The queue grows to --messages
// with its destination down, through the store sluiced uses (Store::append_async from 4
// producer threads, 512 in flight each, with sender message ids, ordering keys over --cases
// cases and a quarter without one); at every --step the destination is probed the way the
// delivery breaker does it (one lease, deferred without spending an attempt), which runs the
// schedule window. Reported per step: anonymous memory (RssAnon: LMDB's mapped pages are page
// cache, not counted) and the append rate. Then the store is closed and opened --opens times,
// each open timed to its first lease, against an empty store opened the same way in the same
// run (the baseline).
//
//   sluice-backlog-bench --messages 10000000 --step 1000000 --dir build/backlog
//   sluice-backlog-bench --open-only --dir build/backlog      # a fresh process on that store
//
// Linked with jemalloc, like sluiced. Documents are --size bytes and their records carry no
// signed receipt (2.25 KB each in the product): memory does not depend on either, the map and
// the disk do (10 million 2 KB documents with receipts need about 85 GB).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"

using namespace sluice;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kDest = "supervision";

[[noreturn]] void die(const std::string& what) {
  std::cerr << what << "\n";
  std::exit(1);
}

std::uint64_t rss_anon_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("RssAnon:")) return std::stoull(line.substr(8));
  }
  return 0;
}

double ms_since(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

queue::Options options(const std::filesystem::path& dir, std::uint64_t map_gb, std::size_t window) {
  queue::Options o;
  o.path = dir;
  o.map_size_bytes = map_gb << 30;
  o.max_queued_bytes = 1ull << 40;
  o.max_queued_messages = 1'000'000'000;
  o.retention_max_bytes = 64ull << 20;
  o.schedule_window = window;
  return o;
}

std::unique_ptr<queue::Store> open_store(queue::Options o) {
  auto s = queue::Store::open(std::move(o));
  if (!s) die("open: " + s.error().describe());
  return std::move(*s);
}

// Appends messages [from, to) from four producers, `window` in flight each.
void append_range(queue::Store& store, std::uint64_t from, std::uint64_t to, std::size_t size,
                  std::uint64_t cases) {
  constexpr int kProducers = 4;
  constexpr std::uint64_t kWindow = 512;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      SecureRandom& random = SecureRandom::instance();
      std::mutex mu;
      std::condition_variable cv;
      std::uint64_t in_flight = 0;
      for (std::uint64_t i = from + p; i < to && !failed.load(); i += kProducers) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return in_flight < kWindow; });
          ++in_flight;
        }
        queue::NewMessage m;
        m.message_id = new_uuid(random);
        m.sender = "440604/approval";
        m.sender_message_id = "SBLSH-" + std::to_string(i);
        m.doc_type = "case.accept";
        if (i % 4 != 3) m.ordering_key = "440604/SBLSH-" + std::to_string(i % cases);
        m.destinations = {kDest};
        m.payload.assign(size, 'p');
        m.attributes["digest"] = std::string(44, 'd');
        store.append_async(std::move(m), [&](Result<queue::Appended> r) {
          if (!r) {
            std::cerr << "append: " << r.error().describe() << "\n";
            failed.store(true);
          }
          std::lock_guard lock(mu);
          --in_flight;
          cv.notify_one();
        });
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (auto& t : threads) t.join();
  if (failed.load()) die("appends failed");
}

// The breaker's probe while the destination is down: one lease, deferred for a minute.
void probe(queue::Store& store) {
  auto leases = store.lease(kDest, 1);
  for (const auto& l : leases) {
    std::promise<Result<void>> done;
    auto f = done.get_future();
    store.defer(l, "connect: connection refused", SystemClock::instance().now_ms() + 60'000,
                [&done](Result<void> r) { done.set_value(std::move(r)); });
    if (auto r = f.get(); !r) die("defer: " + r.error().describe());
  }
}

// Opens the store at `dir` and leases one delivery: the time a restarted half needs before it
// can deliver again. The lease is not settled (leases are not stored).
double timed_open(const std::filesystem::path& dir, std::uint64_t map_gb, std::size_t window,
                  std::uint64_t* pending = nullptr) {
  auto start = Steady::now();
  auto store = open_store(options(dir, map_gb, window));
  auto leases = store->lease(kDest, 1);
  double ms = ms_since(start);
  if (pending != nullptr) *pending = store->stats().queued_messages;
  store->close();
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-backlog-bench - memory and open time with a deep backlog"};
  std::uint64_t messages = 10'000'000, step = 1'000'000, cases = 100'000, map_gb = 24;
  std::size_t size = 256, window = 4096;
  int opens = 5;
  bool open_only = false;
  std::string dir = "build/backlog";
  cli.add_option("--messages", messages, "messages queued in the end");
  cli.add_option("--step", step, "messages between measurements");
  cli.add_option("--cases", cases, "distinct ordering keys");
  cli.add_option("--size", size, "document bytes");
  cli.add_option("--window", window, "store.schedule_window");
  cli.add_option("--map-gb", map_gb, "store.map_size_mb / 1024");
  cli.add_option("--opens", opens, "timed opens of the full and the empty store");
  cli.add_option("--dir", dir, "scratch directory; <dir>/store is kept for --open-only");
  cli.add_flag("--open-only", open_only, "only time opens of the existing <dir>/store");
  CLI11_PARSE(cli, argc, argv);

  const std::filesystem::path full = std::filesystem::path(dir) / "store";
  const std::filesystem::path empty = std::filesystem::path(dir) / "empty";
  if (!open_only) {
    std::filesystem::remove_all(full);
    auto store = open_store(options(full, map_gb, window));
    std::printf("{\"queued\":0,\"rss_anon_kb\":%llu}\n",
                static_cast<unsigned long long>(rss_anon_kb()));
    for (std::uint64_t at = 0; at < messages;) {
      std::uint64_t to = std::min(messages, at + step);
      const std::uint64_t n = to - at;
      auto start = Steady::now();
      append_range(*store, at, to, size, cases);
      double secs = ms_since(start) / 1000;
      probe(*store);
      at = to;
      auto st = store->stats();
      std::printf("{\"queued\":%llu,\"rss_anon_kb\":%llu,\"appends_per_s\":%.0f,\"map_mb\":%llu}\n",
                  static_cast<unsigned long long>(st.queued_messages),
                  static_cast<unsigned long long>(rss_anon_kb()), static_cast<double>(n) / secs,
                  static_cast<unsigned long long>(st.map_high_water_bytes >> 20));
      std::fflush(stdout);
    }
    store->close();
  }
  std::filesystem::remove_all(empty);
  open_store(options(empty, 1, window))->close();
  std::vector<double> full_ms, empty_ms;
  std::uint64_t pending = 0;
  for (int i = 0; i < opens; ++i) {  // interleaved
    full_ms.push_back(timed_open(full, map_gb, window, &pending));
    empty_ms.push_back(timed_open(empty, 1, window));
  }
  std::printf(
      "{\"open_pending\":%llu,\"open_to_first_lease_ms\":%.1f,\"empty_open_ms\":%.1f,"
      "\"rss_anon_kb_after_opens\":%llu}\n",
      static_cast<unsigned long long>(pending), median(full_ms), median(empty_ms),
      static_cast<unsigned long long>(rss_anon_kb()));
  return 0;
}
