// The schedule lives in LMDB; memory holds a bounded window of it (Options::schedule_window).
// These tests run backlogs many times deeper than the window: every delivery goes out once,
// in per-case order, and open reads counters, not the backlog.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <set>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

using namespace sluice;
using namespace sluice::queue;

namespace {

struct Fixture {
  test::TempDir dir{"schedule"};
  ManualClock clock;
  SeededRandom random{7};

  Options options(std::size_t window) {
    Options o;
    o.path = dir / "store";
    o.map_size_bytes = 256ull << 20;
    o.clock = &clock;
    o.random = &random;
    o.retry.max_attempts = 1000;
    o.retry.initial_backoff_ms = 10;
    o.retry.max_backoff_ms = 50;
    o.retry.jitter = 0;
    o.lease_timeout_ms = 60'000;
    o.schedule_window = window;
    return o;
  }

  std::unique_ptr<Store> open(Options o) {
    auto s = Store::open(std::move(o));
    REQUIRE(s);
    return std::move(*s);
  }

  std::string append(Store& store, const std::string& key, const std::string& dest = "sink") {
    NewMessage m;
    m.message_id = new_uuid(random);
    m.sender = "440604/approval";
    m.doc_type = "case.accept";
    m.ordering_key = key;
    m.destinations = {dest};
    m.payload = std::string(100, 'p');
    auto r = store.append(std::move(m));
    REQUIRE(r);
    return r->message_id;
  }
};

void settle(Store& store, const Lease& l, bool ok) {
  std::promise<Result<void>> p;
  auto f = p.get_future();
  auto done = [&p](Result<void> r) { p.set_value(std::move(r)); };
  if (ok) {
    store.ack(l, done);
  } else {
    store.nack(l, "unavailable", false, done);
  }
  REQUIRE(f.get());
}

const DestinationStats* find(const Stats& s, const std::string& dest) {
  for (const auto& d : s.destinations) {
    if (d.destination == dest) return &d;
  }
  return nullptr;
}

}  // namespace

TEST_CASE_METHOD(Fixture,
                 "a backlog fifty times the window goes out once each and in per-case order") {
  constexpr std::size_t kWindow = 16;
  auto store = open(options(kWindow));
  // 800 messages: 40 cases of 15 events each, interleaved, and 200 without a case.
  std::map<std::string, std::string> key_of;  // message id -> case
  std::map<std::string, std::vector<std::string>> order;
  for (int i = 0; i < 800; ++i) {
    std::string key = i % 4 == 3 ? "" : "440604/SBLSH-" + std::to_string(i % 40);
    std::string id = append(*store, key);
    key_of[id] = key;
    if (!key.empty()) order[key].push_back(id);
  }
  std::map<std::string, std::vector<std::string>> delivered_order;
  std::set<std::string> delivered;
  std::size_t failures = 0;
  for (int round = 0; round < 10'000 && delivered.size() < 800; ++round) {
    clock.advance_ms(20);
    auto leases = store->lease("sink", 8);
    auto st = store->stats();
    const auto* d = find(st, "sink");
    REQUIRE(d != nullptr);
    CHECK(d->due <= kWindow);  // memory holds the window, not the backlog
    std::set<std::string> cases_in_lease;
    for (const auto& l : leases) {
      CHECK(l.doc_type == "case.accept");  // read back from the store for the window
      const std::string& key = key_of.at(l.message_id);
      if (!key.empty()) {
        // Never two of one case at once.
        CHECK(cases_in_lease.insert(key).second);
      }
      // Every fifth attempt fails and comes back after its backoff.
      bool ok = (round + l.seq) % 5 != 0;
      settle(*store, l, ok);
      if (!ok) {
        ++failures;
        continue;
      }
      CHECK(delivered.insert(l.message_id).second);
      if (!key.empty()) delivered_order[key].push_back(l.message_id);
    }
  }
  CHECK(delivered.size() == 800);
  CHECK(failures > 0);
  CHECK(delivered_order == order);
  auto st = store->stats();
  CHECK(st.queued_messages == 0);
  CHECK(st.queued_bytes == 0);
}

TEST_CASE_METHOD(Fixture, "open reads the pending counts, not the backlog, and leases in order") {
  constexpr std::size_t kWindow = 64;
  std::vector<std::string> ids;
  {
    auto store = open(options(kWindow));
    for (int i = 0; i < 3000; ++i) {
      ids.push_back(append(*store, i % 2 == 0 ? "" : "case-" + std::to_string(i % 10),
                           i % 3 == 0 ? "archive" : "sink"));
    }
    store->close();
  }
  auto store = open(options(kWindow));
  auto st = store->stats();
  CHECK(st.queued_messages == 3000);
  CHECK(st.queued_bytes == 300'000);
  const auto* sink = find(st, "sink");
  const auto* archive = find(st, "archive");
  REQUIRE(sink != nullptr);
  REQUIRE(archive != nullptr);
  CHECK(sink->pending == 2000);
  CHECK(archive->pending == 1000);
  CHECK(sink->bytes == 200'000);
  // Nothing of the schedule was read at open: the window fills on the first lease.
  CHECK(sink->due == 0);
  CHECK(store->next_due_ms("sink").has_value());
  // The first lease takes the earliest: the first messages appended.
  auto leases = store->lease("sink", 4);
  REQUIRE(leases.size() == 4);
  CHECK(leases[0].message_id == ids[1]);
  CHECK(leases[0].doc_type == "case.accept");
  CHECK(leases[1].message_id == ids[2]);
  st = store->stats();
  CHECK(find(st, "sink")->due <= kWindow);
  CHECK(find(st, "sink")->leased == 4);
  CHECK(find(st, "archive")->due == 0);  // untouched
  for (const auto& l : leases) settle(*store, l, true);
  CHECK(store->stats().queued_messages == 2996);
}

TEST_CASE_METHOD(Fixture, "a message appended behind a full window is still delivered in time") {
  auto store = open(options(4));
  // Four messages whose deliveries failed and wait out a backoff fill the window ...
  for (int i = 0; i < 4; ++i) append(*store, "");
  for (const auto& l : store->lease("sink", 4)) settle(*store, l, false);
  CHECK(store->lease("sink", 4).empty());
  // ... a new one is due now and goes out at once, not after theirs.
  std::string fresh = append(*store, "");
  auto next = store->next_due_ms("sink");
  REQUIRE(next);
  CHECK(*next <= clock.now_ms());
  auto leases = store->lease("sink", 4);
  REQUIRE(leases.size() == 1);
  CHECK(leases[0].message_id == fresh);
}
