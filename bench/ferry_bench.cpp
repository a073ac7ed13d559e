// sluice-ferry-bench: documents/s over the ferry link against the receiving store's own append
// rate, measured in the same run, interleaved.
//
//   ferry   an outer Link (ROUTER, CURVE server, ZAP handler) and an inner Link (DEALER, the
//           server key pinned) over TCP loopback, as two halves run them. The outer sends N
//           documents; the inner appends each to a fresh Sluice store (durable group commit)
//           and answers kStored from the append's callback, as sluiced does once a document is
//           on disk. A document counts when the sender's SendDone reports it stored. Every
//           frame is CURVE-encrypted and every payload's SHA-256 is computed by the sender and
//           checked by the receiver.
//   append  the same store, the same documents and fields, appended by one local producer
//           keeping as many appends in flight as the link's credit allows (--credit-docs):
//           the rate the receiving half could store documents if the link cost nothing.
//
//   sluice-ferry-bench --messages 100000 --size 2048 --runs 5
//
// What it leaves out, on purpose: the receiving half's Ingest (hardened parse, XSD + GB checks,
// signature verification and re-signing: sluice-loadgen --gate measures the whole path) and
// the sending half's delivery lease; both are measured elsewhere.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/random.h"
#include "ferry/keys.h"
#include "ferry/link.h"
#include "queue/queue.h"

using namespace sluice;
using Steady = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::cerr << what << "\n";
  std::exit(1);
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::size_t messages = 100'000;
  std::size_t size = 2048;
  std::uint32_t credit_docs = 256;
  std::size_t batch_docs = 64;
  int runs = 5;
  std::string dir = "/tmp/sluice-ferry-bench";
};

std::unique_ptr<queue::Store> open_store(const std::filesystem::path& dir, const Options& o) {
  std::filesystem::remove_all(dir);
  queue::Options q;
  q.path = dir;
  q.map_size_bytes = std::max<std::uint64_t>(1ull << 30, o.messages * (o.size + 4096) * 2);
  q.max_queued_bytes = q.map_size_bytes;
  q.max_queued_messages = o.messages * 2;
  auto store = queue::Store::open(q);
  if (!store) die(store.error().describe());
  return std::move(*store);
}

// The fields the receiving half stores for a document that crossed (sluiced fills them from
// the envelope; here they are fixed, so both runs store the same rows).
queue::NewMessage arrival(std::string message_id, std::string payload, std::size_t i) {
  queue::NewMessage m;
  m.message_id = std::move(message_id);
  m.sender = "bench-outer";
  m.sender_message_id = std::to_string(i);
  m.doc_type = "case.accept";
  m.ordering_key = "440604/CASE-" + std::to_string(i % 1000);
  m.destinations = {"supervision"};
  m.payload = std::move(payload);
  return m;
}

struct Ids {
  std::vector<std::string> ids;
  explicit Ids(std::size_t n) {
    SeededRandom random(11);
    ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) ids.push_back(new_uuid_v7(random, unix_ms()));
  }
};

double run_append(const Options& o, const Ids& ids, const std::string& payload) {
  auto store = open_store(o.dir + "/append", o);
  std::mutex m;
  std::condition_variable cv;
  std::size_t in_flight = 0, failed = 0;
  const std::size_t window = o.credit_docs;
  auto start = Steady::now();
  for (std::size_t i = 0; i < o.messages; ++i) {
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    store->append_async(arrival(ids.ids[i], payload, i), [&](Result<queue::Appended> r) {
      std::lock_guard lock(m);
      if (!r) ++failed;
      --in_flight;
      cv.notify_one();
    });
  }
  std::unique_lock lock(m);
  if (!cv.wait_for(lock, std::chrono::minutes(5), [&] { return in_flight == 0; })) {
    die("appends did not finish in 5 minutes");
  }
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  if (failed != 0) die(std::to_string(failed) + " appends failed");
  lock.unlock();
  store->close();
  return o.messages / secs;
}

struct FerryResult {
  double docs_per_s = 0;
  std::uint64_t commits = 0;
};

FerryResult run_ferry(const Options& o, const Ids& ids, const std::string& payload) {
  auto store = open_store(o.dir + "/ferry", o);
  auto outer_keys = ferry::generate_key_pair();
  auto inner_keys = ferry::generate_key_pair();
  if (!outer_keys || !inner_keys) die("cannot make CURVE keys");

  ferry::LinkConfig oc;
  oc.side = ferry::Side::kOuter;
  oc.endpoint = "tcp://127.0.0.1:*";
  oc.public_key = outer_keys->public_key;
  oc.secret_key = outer_keys->secret_key;
  oc.allowed_keys = {inner_keys->public_key};
  oc.gateway_id = "bench-outer";
  oc.credit_docs = o.credit_docs;
  oc.batch_docs = o.batch_docs;
  auto outer =
      ferry::Link::start(oc, ferry::Direction::kInbound, [](ferry::Received, ferry::Reply reply) {
        reply({ferry::Fate::kRefused, "bench", "nothing goes out"});
      });
  if (!outer) die(outer.error().describe());

  std::atomic<std::size_t> received{0};
  ferry::LinkConfig ic;
  ic.side = ferry::Side::kInner;
  ic.endpoint = (*outer)->bound_endpoint();
  ic.public_key = inner_keys->public_key;
  ic.secret_key = inner_keys->secret_key;
  ic.server_key = outer_keys->public_key;
  ic.gateway_id = "bench-inner";
  ic.credit_docs = o.credit_docs;
  ic.batch_docs = o.batch_docs;
  queue::Store* s = store.get();
  auto inner = ferry::Link::start(
      ic, ferry::Direction::kOutbound, [&, s](ferry::Received doc, ferry::Reply reply) {
        std::size_t i = received.fetch_add(1);
        s->append_async(
            arrival(std::move(doc.message_id), std::move(doc.payload), i),
            [reply = std::move(reply)](Result<queue::Appended> r) mutable {
              if (r) {
                reply({r->duplicate ? ferry::Fate::kDuplicate : ferry::Fate::kStored, "", ""});
              } else {
                reply({ferry::Fate::kRetry, "store", r.error().message});
              }
            });
      });
  if (!inner) die(inner.error().describe());
  // Wait for the link to come up before the clock starts.
  auto up_deadline = Steady::now() + std::chrono::seconds(10);
  while (!(*inner)->status().up || !(*outer)->status().up) {
    if (Steady::now() > up_deadline)
      die("the link did not come up: " + (*inner)->status().last_error);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  std::mutex m;
  std::condition_variable cv;
  std::size_t done = 0, stored = 0;
  std::string first_error;
  auto start = Steady::now();
  for (std::size_t i = 0; i < o.messages; ++i) {
    (*outer)->send(ids.ids[i], payload, [&](ferry::Sent sent) {
      std::lock_guard lock(m);
      ++done;
      if (sent.kind == ferry::Sent::Kind::kStored) {
        ++stored;
      } else if (first_error.empty()) {
        first_error = sent.code + ": " + sent.reason;
      }
      if (done == o.messages) cv.notify_one();
    });
  }
  std::unique_lock lock(m);
  if (!cv.wait_for(lock, std::chrono::minutes(5), [&] { return done == o.messages; })) {
    die("the ferry did not answer every document in 5 minutes (" + std::to_string(done) + ")");
  }
  double secs = std::chrono::duration<double>(Steady::now() - start).count();
  if (stored != o.messages) {
    die(std::to_string(o.messages - stored) + " documents not stored: " + first_error);
  }
  lock.unlock();
  (*inner)->stop();
  (*outer)->stop();
  FerryResult r{o.messages / secs, s->stats().commits};
  if (s->stats().queued_messages != o.messages)
    die("the receiving store does not hold every document");
  store->close();
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-ferry-bench - documents/s over the ferry vs the receiving store's appends"};
  Options o;
  cli.add_option("--messages", o.messages, "documents per run");
  cli.add_option("--size", o.size, "payload bytes");
  cli.add_option("--credit-docs", o.credit_docs,
                 "the receiver's grant (documents in flight); the append run keeps as many");
  cli.add_option("--batch-docs", o.batch_docs, "documents per DOCS message");
  cli.add_option("--runs", o.runs, "runs of each (interleaved); medians reported");
  cli.add_option("--dir", o.dir, "scratch directory (same disk as production stores)");
  CLI11_PARSE(cli, argc, argv);
  if (o.runs < 1 || o.messages == 0) die("--runs and --messages must be at least 1");

  Ids ids(o.messages);
  std::string payload(o.size, 'x');
  std::vector<double> ferry_rate, append_rate;
  for (int r = 0; r < o.runs; ++r) {
    FerryResult f = run_ferry(o, ids, payload);
    double a = run_append(o, ids, payload);
    std::printf(
        "{\"run\":%d,\"ferry_docs_per_s\":%.0f,\"ferry_store_commits\":%llu,"
        "\"append_msgs_per_s\":%.0f,\"credit_docs\":%u,\"size\":%zu,\"messages\":%zu}\n",
        r + 1, f.docs_per_s, static_cast<unsigned long long>(f.commits), a, o.credit_docs, o.size,
        o.messages);
    std::fflush(stdout);
    ferry_rate.push_back(f.docs_per_s);
    append_rate.push_back(a);
  }
  std::filesystem::remove_all(o.dir);
  double f = median(ferry_rate), a = median(append_rate);
  std::printf(
      "median of %d runs, %zu-byte documents, %u in flight:\n"
      "  ferry (CURVE link + receiver's durable append):  %8.0f docs/s\n"
      "  the receiving store's appends alone:             %8.0f msgs/s   ferry = %.0f%%\n",
      o.runs, o.size, o.credit_docs, f, a, 100 * f / a);
  return 0;
}
