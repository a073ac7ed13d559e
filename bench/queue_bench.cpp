// sluice-queue-bench: durable appends per second of the Sluice store, against three raw-LMDB
// references measured in the same run, interleaved:
//
//   store     Store::append_async from --producers client threads, --window in flight each,
//             the product's UUIDv7 message ids; an append counts when its callback reports it
//             durable.
//   fair      raw LMDB, one thread, writing the rows the store writes for each message (msg,
//             body, idem, dlv, the schedule's sched or next and ktail, same keys, same v7
//             ids, records pre-encoded) with the store's
//             batching: --batch messages per transaction, one durable commit per batch. The
//             bound for any store that keeps this format and this durability.
//   physical  raw LMDB, one MDB_APPEND put of the payload per message, --batch per durable
//             commit: the disk's bound for this batching.
//   single    raw LMDB, the fair rows with one durable commit per message (no batching).
//
//   sluice-queue-bench --messages 100000 --size 2048 --producers 4 --window 512 --runs 5
//
// producers x window should be at least twice --batch: while one batch waits on its sync, the
// next one fills. With exactly --batch in flight the writer alternates half batches.
//
// Every configuration uses a fresh environment in --dir with LMDB's default (synced) commits.
#include <lmdb.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
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
  std::uint64_t commits = 0;
};

RunResult rate(std::size_t n, std::size_t size, Steady::time_point start, std::uint64_t commits) {
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  return RunResult{n / secs, n * size / secs / 1e6, commits};
}

[[noreturn]] void die(const std::string& what) {
  std::cerr << what << "\n";
  std::exit(1);
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string sender_of(int producer) { return "bench/p" + std::to_string(producer); }
std::string ordering_key_of(std::size_t i) { return "440604/CASE-" + std::to_string(i % 1000); }

RunResult run_store(const std::filesystem::path& dir, std::size_t n, std::size_t size,
                    int producers, int window, std::size_t batch) {
  std::filesystem::remove_all(dir);
  queue::Options o;
  o.path = dir;
  o.map_size_bytes = std::max<std::uint64_t>(1ull << 30, n * (size + 4096) * 2);
  o.max_queued_bytes = o.map_size_bytes;
  o.max_queued_messages = n * 2;
  o.group_commit_max_count = batch;
  auto store = queue::Store::open(o);
  if (!store) die(store.error().describe());
  std::string payload(size, 'x');
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> failed{0};
  auto start = Steady::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      SeededRandom random(7 + p);  // one per client, as each request thread draws its own id
      std::mutex m;
      std::condition_variable cv;
      int in_flight = 0;
      for (;;) {
        std::size_t i = next.fetch_add(1);
        if (i >= n) break;
        {
          std::unique_lock lock(m);
          if (in_flight == window) cv.wait(lock, [&] { return in_flight <= window / 2; });
          ++in_flight;
        }
        queue::NewMessage msg;
        msg.message_id = new_uuid_v7(random, unix_ms());
        msg.sender = sender_of(p);
        msg.sender_message_id = std::to_string(i);
        msg.doc_type = "case.accept";
        msg.ordering_key = ordering_key_of(i);
        msg.destinations = {"sink"};
        msg.payload = payload;
        // The client sleeps while its window is full and is woken when half of it has
        // completed, as a pipelining client would, not once per completion.
        (*store)->append_async(std::move(msg), [&](Result<queue::Appended> r) {
          if (!r) failed.fetch_add(1);
          std::lock_guard lock(m);
          --in_flight;
          if (in_flight == window / 2 || in_flight == 0) cv.notify_one();
        });
      }
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (auto& t : threads) t.join();
  RunResult r = rate(n, size, start, 0);
  if (failed.load() != 0) die(std::to_string(failed.load()) + " appends failed");
  r.commits = (*store)->stats().commits;
  (*store)->close();
  std::filesystem::remove_all(dir);
  return r;
}

// --- raw LMDB ---------------------------------------------------------------------------------

// The rows the store writes for one single-destination message, laid out as in
// queue/FORMAT.md (encoded here: the record codec is internal to queue/).
struct Rows {
  std::string id16, msg, idem, dlv_key, dlv;
  // The stored schedule: the case's tail, and either a schedule entry (the first of its case)
  // or a link behind the case's previous message.
  std::string tail_key, seq_v, sched_key, link_key;
};

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_str(std::string& out, std::string_view s) {
  put_le(out, s.size(), 4);
  out.append(s);
}

std::vector<Rows> make_rows(std::size_t n, std::size_t size, int producers) {
  std::vector<Rows> rows(n);
  SeededRandom random(11);
  std::int64_t now = unix_ms();
  for (std::size_t i = 0; i < n; ++i) {
    Rows& r = rows[i];
    auto id = uuid_bytes(new_uuid_v7(random, now + static_cast<std::int64_t>(i / 64)));
    r.id16.assign(reinterpret_cast<const char*>(id.data()), id.size());
    std::string sender = sender_of(static_cast<int>(i % producers));
    std::string smid = std::to_string(i);
    std::uint64_t seq = i + 1;
    r.msg.push_back(1);
    put_le(r.msg, now, 8);
    put_le(r.msg, 0, 8);
    put_le(r.msg, size, 4);
    put_str(r.msg, sender);
    put_str(r.msg, smid);
    put_str(r.msg, "case.accept");
    put_str(r.msg, ordering_key_of(i));
    put_le(r.msg, 1, 4);
    put_le(r.msg, 1, 4);
    put_le(r.msg, seq, 8);
    put_le(r.msg, 0, 4);
    r.idem = sender + '\0' + smid;
    put_be(r.dlv_key, 1, 4);
    put_be(r.dlv_key, seq, 8);
    r.dlv.push_back(1);
    r.dlv.push_back(0);
    put_le(r.dlv, 0, 4);
    put_le(r.dlv, now, 8);
    put_le(r.dlv, 0, 8);
    put_le(r.dlv, 0, 8);
    put_le(r.dlv, 0, 8);
    put_le(r.dlv, size, 4);
    put_str(r.dlv, r.id16);
    put_str(r.dlv, ordering_key_of(i));
    put_str(r.dlv, "");
    std::string key = ordering_key_of(i);
    put_be(r.tail_key, 1, 4);
    put_be(r.tail_key, key.size(), 2);
    r.tail_key += key;
    put_be(r.seq_v, seq, 8);
    if (i < 1000) {
      put_be(r.sched_key, 1, 4);
      put_be(r.sched_key, static_cast<std::uint64_t>(now), 8);
      put_be(r.sched_key, seq, 8);
    } else {
      put_be(r.link_key, 1, 4);
      put_be(r.link_key, seq - 1000, 8);
    }
  }
  return rows;
}

struct RawEnv {
  MDB_env* env = nullptr;
  MDB_dbi meta = 0, msg = 0, body = 0, idem = 0, dlv = 0, dest = 0, flat = 0;
  MDB_dbi sched = 0, ktail = 0, next = 0, qlen = 0;

  explicit RawEnv(const std::filesystem::path& dir, std::uint64_t map_size) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    check(mdb_env_create(&env), "mdb_env_create");
    check(mdb_env_set_mapsize(env, map_size), "mdb_env_set_mapsize");
    check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
    check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open");
    MDB_txn* txn = begin();
    for (auto [name, dbi] :
         {std::pair{"meta", &meta}, std::pair{"msg", &msg}, std::pair{"body", &body},
          std::pair{"idem", &idem}, std::pair{"dlv", &dlv}, std::pair{"dest", &dest},
          std::pair{"flat", &flat}, std::pair{"sched", &sched}, std::pair{"ktail", &ktail},
          std::pair{"next", &next}, std::pair{"qlen", &qlen}}) {
      check(mdb_dbi_open(txn, name, MDB_CREATE, dbi), "mdb_dbi_open");
    }
    put(txn, dest, "sink", std::string("\0\0\0\1", 4));
    commit(txn);
  }
  ~RawEnv() { mdb_env_close(env); }

  static void check(int rc, const char* what) {
    if (rc != 0) die(std::string(what) + ": " + mdb_strerror(rc));
  }
  MDB_txn* begin() {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
    return txn;
  }
  void commit(MDB_txn* txn) { check(mdb_txn_commit(txn), "mdb_txn_commit"); }
  static void put(MDB_txn* txn, MDB_dbi dbi, std::string_view k, std::string_view v,
                  unsigned flags = 0) {
    MDB_val key{k.size(), const_cast<char*>(k.data())};
    MDB_val val{v.size(), const_cast<char*>(v.data())};
    check(mdb_put(txn, dbi, &key, &val, flags), "mdb_put");
  }
  void put_message(MDB_txn* txn, const Rows& r, std::string_view payload) {
    put(txn, dlv, r.dlv_key, r.dlv);
    put(txn, msg, r.id16, r.msg, MDB_NOOVERWRITE);
    put(txn, body, r.id16, payload);
    put(txn, idem, r.idem, r.id16);
    if (!r.sched_key.empty()) put(txn, sched, r.sched_key, "");
    if (!r.link_key.empty()) put(txn, next, r.link_key, r.seq_v);
    put(txn, ktail, r.tail_key, r.seq_v);
  }
  void put_counters(MDB_txn* txn, std::uint64_t next_seq) {
    std::string v;
    put_be(v, next_seq, 8);
    put(txn, meta, "next_seq", v);
    put(txn, meta, "next_dest", std::string("\0\0\0\2", 4));
    put(txn, qlen, std::string("\0\0\0\1", 4), std::string(16, '\0'));
  }
};

std::uint64_t raw_map_size(std::size_t n, std::size_t size) {
  return std::max<std::uint64_t>(1ull << 30, n * (size + 4096) * 2);
}

// (b) the store's rows and batching, without the store.
RunResult run_fair(const std::filesystem::path& dir, const std::vector<Rows>& rows,
                   std::size_t size, std::size_t batch) {
  RawEnv e(dir, raw_map_size(rows.size(), size));
  std::string payload(size, 'x');
  std::uint64_t commits = 0;
  auto start = Steady::now();
  for (std::size_t i = 0; i < rows.size(); i += batch) {
    MDB_txn* txn = e.begin();
    std::size_t end = std::min(rows.size(), i + batch);
    for (std::size_t j = i; j < end; ++j) e.put_message(txn, rows[j], payload);
    e.put_counters(txn, end + 1);
    e.commit(txn);
    ++commits;
  }
  RunResult r = rate(rows.size(), size, start, commits);
  std::filesystem::remove_all(dir);
  return r;
}

// (c) one appended 2 KB value per message.
RunResult run_physical(const std::filesystem::path& dir, std::size_t n, std::size_t size,
                       std::size_t batch) {
  RawEnv e(dir, raw_map_size(n, size));
  std::string payload(size, 'x');
  std::uint64_t commits = 0;
  auto start = Steady::now();
  for (std::size_t i = 0; i < n; i += batch) {
    MDB_txn* txn = e.begin();
    for (std::size_t j = i; j < std::min(n, i + batch); ++j) {
      std::string key;
      put_be(key, j, 8);
      RawEnv::put(txn, e.flat, key, payload, MDB_APPEND);
    }
    e.commit(txn);
    ++commits;
  }
  RunResult r = rate(n, size, start, commits);
  std::filesystem::remove_all(dir);
  return r;
}

// (d) the store's rows, one durable commit per message.
RunResult run_single(const std::filesystem::path& dir, const std::vector<Rows>& rows,
                     std::size_t size) {
  RawEnv e(dir, raw_map_size(rows.size(), size));
  std::string payload(size, 'x');
  auto start = Steady::now();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    MDB_txn* txn = e.begin();
    e.put_message(txn, rows[i], payload);
    e.put_counters(txn, i + 2);
    e.commit(txn);
  }
  RunResult r = rate(rows.size(), size, start, rows.size());
  std::filesystem::remove_all(dir);
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-queue-bench - durable appends/s: Sluice store vs raw LMDB bounds"};
  std::size_t messages = 100'000, baseline_messages = 5'000, size = 2048, batch = 1024;
  int producers = 4, window = 512, runs = 5;
  std::string dir = "/tmp/sluice-queue-bench";
  std::string only;
  cli.add_option("--messages", messages, "appends per store, fair and physical run");
  cli.add_option("--baseline-messages", baseline_messages,
                 "appends per one-commit-per-message run");
  cli.add_option("--size", size, "payload bytes");
  cli.add_option("--producers", producers, "client threads appending to the store");
  cli.add_option("--window", window, "appends in flight per client thread");
  cli.add_option("--batch", batch, "messages per transaction (the store's group commit bound)");
  cli.add_option("--runs", runs, "runs of each configuration (interleaved); medians reported");
  cli.add_option("--dir", dir, "scratch directory (same disk as production stores)");
  cli.add_option("--only", only, "run one configuration: store, fair, physical or single");
  CLI11_PARSE(cli, argc, argv);

  auto rows = make_rows(messages, size, producers);
  auto single_rows = make_rows(baseline_messages, size, producers);
  std::vector<double> store_rate, store_mb, fair_rate, phys_rate, single_rate, single_mb, batches;
  auto wants = [&](const char* name) { return only.empty() || only == name; };
  for (int r = 0; r < runs; ++r) {
    RunResult s, f, p, b;
    if (wants("store")) s = run_store(dir + "/store", messages, size, producers, window, batch);
    if (wants("fair")) f = run_fair(dir + "/fair", rows, size, batch);
    if (wants("physical")) p = run_physical(dir + "/physical", messages, size, batch);
    if (wants("single")) b = run_single(dir + "/single", single_rows, size);
    double avg_batch = s.commits > 0 ? static_cast<double>(messages) / s.commits : 0;
    std::printf(
        "{\"run\":%d,\"store_msgs_per_s\":%.0f,\"store_mb_per_s\":%.1f,\"store_commits\":%llu,"
        "\"avg_batch\":%.1f,\"fair_msgs_per_s\":%.0f,\"physical_msgs_per_s\":%.0f,"
        "\"raw_msgs_per_s\":%.0f,\"raw_mb_per_s\":%.2f}\n",
        r + 1, s.msgs_per_s, s.mb_per_s, static_cast<unsigned long long>(s.commits), avg_batch,
        f.msgs_per_s, p.msgs_per_s, b.msgs_per_s, b.mb_per_s);
    std::fflush(stdout);
    store_rate.push_back(s.msgs_per_s);
    store_mb.push_back(s.mb_per_s);
    fair_rate.push_back(f.msgs_per_s);
    phys_rate.push_back(p.msgs_per_s);
    single_rate.push_back(b.msgs_per_s);
    single_mb.push_back(b.mb_per_s);
    batches.push_back(avg_batch);
  }
  double st = median(store_rate), fa = median(fair_rate), ph = median(phys_rate);
  std::printf(
      "median of %d runs, %zu-byte messages, %zu per commit:\n"
      "  (a) Sluice store, %d client threads:        %8.0f msgs/s (%.1f MB/s, %.0f per commit)\n"
      "  (b) raw LMDB, same rows, same batching:     %8.0f msgs/s  store = %.0f%% of (b)\n"
      "  (c) raw LMDB, one MDB_APPEND put per msg:   %8.0f msgs/s  store = %.0f%% of (c)\n"
      "  (d) raw LMDB, same rows, commit per msg:    %8.0f msgs/s (%.2f MB/s)\n",
      runs, size, batch, producers, st, median(store_mb), median(batches), fa,
      fa > 0 ? 100 * st / fa : 0, ph, ph > 0 ? 100 * st / ph : 0, median(single_rate),
      median(single_mb));
  return 0;
}
