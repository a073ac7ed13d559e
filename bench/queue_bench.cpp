// sluice-queue-bench: durable appends per second of the Sluice store (group commit), against a
// baseline measured in the same run: raw LMDB with one synced commit per message.
//
//   sluice-queue-bench --messages 100000 --size 2048 --producers 4 --window 256 --runs 5
//
// Each run uses a fresh store in --dir. A producer keeps up to --window appends in flight
// (append_async); an append counts when its callback reports it durable.
#include <lmdb.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "common/random.h"
#include "queue/queue.h"

using namespace sluice;
using Steady = std::chrono::steady_clock;

namespace {

struct RunResult {
  double msgs_per_s = 0;
  double mb_per_s = 0;
  double seconds = 0;
  std::uint64_t commits = 0;
};

RunResult run_store(const std::filesystem::path& dir, std::size_t n, std::size_t size,
                    int producers, int window) {
  std::filesystem::remove_all(dir);
  queue::Options o;
  o.path = dir;
  o.map_size_bytes = std::max<std::uint64_t>(1ull << 30, n * (size + 4096) * 2);
  o.max_queued_bytes = o.map_size_bytes;
  o.max_queued_messages = n * 2;
  auto store = queue::Store::open(o);
  if (!store) {
    std::cerr << store.error().describe() << "\n";
    std::exit(1);
  }
  SeededRandom random(7);
  std::string payload(size, 'x');
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> failed{0};
  auto start = Steady::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mutex m;
      std::condition_variable cv;
      int in_flight = 0;
      for (;;) {
        std::size_t i = next.fetch_add(1);
        if (i >= n) break;
        {
          std::unique_lock lock(m);
          cv.wait(lock, [&] { return in_flight < window; });
          ++in_flight;
        }
        queue::NewMessage msg;
        msg.message_id = new_uuid(random);
        msg.sender = "bench/p" + std::to_string(p);
        msg.sender_message_id = std::to_string(i);
        msg.doc_type = "case.accept";
        msg.ordering_key = "440604/CASE-" + std::to_string(i % 1000);
        msg.destinations = {"sink"};
        msg.payload = payload;
        (*store)->append_async(std::move(msg), [&](Result<queue::Appended> r) {
          if (!r) failed.fetch_add(1);
          std::lock_guard lock(m);
          --in_flight;
          cv.notify_one();
        });
      }
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  if (failed.load() != 0) {
    std::cerr << failed.load() << " appends failed\n";
    std::exit(1);
  }
  RunResult r;
  r.seconds = secs;
  r.msgs_per_s = n / secs;
  r.mb_per_s = n * size / secs / 1e6;
  r.commits = (*store)->stats().commits;
  (*store)->close();
  std::filesystem::remove_all(dir);
  return r;
}

RunResult run_raw_lmdb(const std::filesystem::path& dir, std::size_t n, std::size_t size) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  MDB_env* env;
  mdb_env_create(&env);
  mdb_env_set_mapsize(env, 1ull << 30);
  if (mdb_env_open(env, dir.c_str(), 0, 0600) != 0) {
    std::cerr << "mdb_env_open failed\n";
    std::exit(1);
  }
  MDB_dbi dbi;
  MDB_txn* txn;
  mdb_txn_begin(env, nullptr, 0, &txn);
  mdb_dbi_open(txn, nullptr, 0, &dbi);
  mdb_txn_commit(txn);
  std::string payload(size, 'x');
  auto start = Steady::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t key = __builtin_bswap64(i);
    MDB_val k{sizeof key, &key};
    MDB_val v{payload.size(), payload.data()};
    mdb_txn_begin(env, nullptr, 0, &txn);
    if (mdb_put(txn, dbi, &k, &v, 0) != 0 || mdb_txn_commit(txn) != 0) {
      std::cerr << "raw LMDB put/commit failed\n";
      std::exit(1);
    }
  }
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  mdb_env_close(env);
  std::filesystem::remove_all(dir);
  RunResult r;
  r.seconds = secs;
  r.msgs_per_s = n / secs;
  r.mb_per_s = n * size / secs / 1e6;
  r.commits = n;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-queue-bench - durable appends/s: Sluice store vs raw LMDB"};
  std::size_t messages = 100'000, baseline_messages = 5'000, size = 2048;
  int producers = 4, window = 256, runs = 5;
  std::string dir = "/tmp/sluice-queue-bench";
  cli.add_option("--messages", messages, "appends per Sluice run");
  cli.add_option("--baseline-messages", baseline_messages, "appends per raw-LMDB run");
  cli.add_option("--size", size, "payload bytes");
  cli.add_option("--producers", producers, "producer threads");
  cli.add_option("--window", window, "appends in flight per producer");
  cli.add_option("--runs", runs, "runs of each (interleaved); medians are reported");
  cli.add_option("--dir", dir, "scratch directory (same disk as production stores)");
  CLI11_PARSE(cli, argc, argv);

  std::vector<double> store_rate, store_mb, raw_rate, raw_mb, batch;
  for (int r = 0; r < runs; ++r) {
    auto s = run_store(dir + "/store", messages, size, producers, window);
    auto b = run_raw_lmdb(dir + "/raw", baseline_messages, size);
    std::printf(
        "{\"run\":%d,\"store_msgs_per_s\":%.0f,\"store_mb_per_s\":%.1f,\"store_commits\":%llu,"
        "\"avg_batch\":%.1f,\"raw_msgs_per_s\":%.0f,\"raw_mb_per_s\":%.2f}\n",
        r + 1, s.msgs_per_s, s.mb_per_s, static_cast<unsigned long long>(s.commits),
        static_cast<double>(messages) / s.commits, b.msgs_per_s, b.mb_per_s);
    std::fflush(stdout);
    store_rate.push_back(s.msgs_per_s);
    store_mb.push_back(s.mb_per_s);
    raw_rate.push_back(b.msgs_per_s);
    raw_mb.push_back(b.mb_per_s);
    batch.push_back(static_cast<double>(messages) / s.commits);
  }
  std::printf(
      "median of %d runs, %zu-byte messages: Sluice store %.0f appends/s (%.1f MB/s, %.0f per "
      "commit) | raw LMDB, one synced commit per message: %.0f appends/s (%.2f MB/s) | ratio "
      "%.1fx\n",
      runs, size, median(store_rate), median(store_mb), median(batch), median(raw_rate),
      median(raw_mb), median(store_rate) / median(raw_rate));
  return 0;
}
