// What one message takes in the LMDB map, measured rather than assumed: the pages of every
// table after many messages of realistic size went through the store, divided by their
// number, against what estimate_capacity() says. SLUICE_FOOTPRINT_MESSAGES=20000 measures
// more messages and prints the tables (the numbers in docs/architecture.md).
#include <lmdb.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "queue/queue.h"
#include "queue/record.h"
#include "tests/support/temp_dir.h"

using namespace sluice;
using namespace sluice::queue;

namespace {

// Sizes of the documents of deploy/demo.sh: a signed standard document of 3.1 KB and its
// signed receipt of 2.25 KB (kept as the "receipt" attribute), the digest and routing
// attributes the pipeline adds.
constexpr std::size_t kPayloadBytes = 3100;
constexpr std::size_t kReceiptBytes = 2255;

struct TableUse {
  std::string name;
  std::uint64_t pages = 0;
  std::uint64_t entries = 0;
};

// Pages in use per named table (branch + leaf + overflow), read after the store closed.
std::vector<TableUse> table_use(const std::filesystem::path& path, std::uint64_t& psize) {
  std::vector<TableUse> out;
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 64);
  mdb_env_set_mapsize(env, 1ull << 32);
  REQUIRE(mdb_env_open(env, path.c_str(), MDB_RDONLY | MDB_NOTLS, 0600) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0);
  MDB_stat st;
  mdb_env_stat(env, &st);
  psize = st.ms_psize;
  MDB_dbi main_dbi;
  REQUIRE(mdb_dbi_open(txn, nullptr, 0, &main_dbi) == 0);
  MDB_cursor* cur = nullptr;
  REQUIRE(mdb_cursor_open(txn, main_dbi, &cur) == 0);
  MDB_val k, v;
  std::vector<std::string> names;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    names.emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  mdb_cursor_close(cur);
  for (const auto& name : names) {
    MDB_dbi dbi;
    if (mdb_dbi_open(txn, name.c_str(), 0, &dbi) != 0) {
      continue;
    }
    MDB_stat s;
    mdb_stat(txn, dbi, &s);
    out.push_back({name, s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages, s.ms_entries});
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return out;
}

}  // namespace

TEST_CASE("the capacity estimate agrees with what messages take in the map") {
  const char* env = std::getenv("SLUICE_FOOTPRINT_MESSAGES");
  const int messages = env != nullptr ? std::max(200, std::atoi(env)) : 2000;
  const bool verbose = env != nullptr;
  constexpr int kPerRound = 200;
  const int rounds = messages / kPerRound;
  const int total = rounds * kPerRound;
  test::TempDir dir{"footprint"};
  ManualClock clock;
  SeededRandom random{11};
  Options o;
  o.path = dir / "store";
  o.map_size_bytes = 1ull << 30;
  o.max_queued_bytes = 1ull << 30;
  o.clock = &clock;
  o.random = &random;
  const std::string receipt(kReceiptBytes, 'r');
  auto message = [&](int i) {
    NewMessage m;
    m.message_id = new_uuid_v7(random, clock.now_ms());
    m.sender = "440604/approval";
    m.sender_message_id = "CC-SCJG-ACC-20261120-" + std::to_string(1'000'000 + i);
    m.doc_type = "case.accept";
    m.ordering_key = "440604/SBLSH-" + std::to_string(1'000'000 + i);
    m.destinations = {"supervision"};
    m.payload = std::string(kPayloadBytes, 'p');
    m.attributes["receiver"] = "440600/supervision";
    m.attributes["source"] = "https";
    m.attributes["digest"] = std::string(44, 'd');
    m.attributes["receipt"] = receipt;
    return m;
  };
  // The record such a message gets (queue/FORMAT.md), for the estimate.
  auto sample = message(0);
  record::Message rec;
  rec.sender = sample.sender;
  rec.sender_message_id = sample.sender_message_id;
  rec.doc_type = sample.doc_type;
  rec.ordering_key = sample.ordering_key;
  rec.deliveries.resize(1);
  rec.attributes = sample.attributes;
  MessageShape shape{.payload_bytes = static_cast<std::uint32_t>(kPayloadBytes),
                     .record_bytes = static_cast<std::uint32_t>(record::encode(rec).size()),
                     .key_bytes = static_cast<std::uint32_t>(sample.sender.size() +
                                                             sample.sender_message_id.size())};
  const Capacity estimate = estimate_capacity(o, shape);

  auto measure = [&](bool deliver) {
    auto store = Store::open(o);
    REQUIRE(store);
    for (int r = 0; r < rounds; ++r) {
      std::vector<std::future<Result<Appended>>> appended;
      for (int i = 0; i < kPerRound; ++i) {
        auto p = std::make_shared<std::promise<Result<Appended>>>();
        appended.push_back(p->get_future());
        (*store)->append_async(message(r * kPerRound + i),
                               [p](Result<Appended> a) { p->set_value(std::move(a)); });
      }
      for (auto& f : appended) {
        REQUIRE(f.get());
      }
      clock.advance_ms(1);
      if (!deliver) {
        continue;
      }
      auto leases = (*store)->lease("supervision", kPerRound);
      REQUIRE(leases.size() == kPerRound);
      std::vector<std::future<Result<void>>> acked;
      for (const auto& l : leases) {
        auto p = std::make_shared<std::promise<Result<void>>>();
        acked.push_back(p->get_future());
        (*store)->ack(l, [p](Result<void> a) { p->set_value(std::move(a)); });
      }
      for (auto& f : acked) {
        REQUIRE(f.get());
      }
    }
    (*store)->close();
    std::uint64_t psize = 0;
    auto use = table_use(o.path, psize);
    std::uint64_t bytes = 0;
    for (const auto& t : use) {
      bytes += t.pages * psize;
      if (verbose) {
        std::printf("  %-14s %8llu pages %8llu entries %8.0f B/message\n", t.name.c_str(),
                    static_cast<unsigned long long>(t.pages),
                    static_cast<unsigned long long>(t.entries),
                    static_cast<double>(t.pages * psize) / total);
      }
    }
    double per_message = static_cast<double>(bytes) / total;
    if (verbose) {
      std::printf("%s: %d messages, %.0f bytes per message in the map (estimated %llu)\n",
                  deliver ? "delivered" : "pending", total, per_message,
                  static_cast<unsigned long long>(deliver ? estimate.delivered_message_bytes
                                                          : estimate.pending_message_bytes));
    }
    std::filesystem::remove_all(o.path);
    return per_message;
  };
  const double pending = measure(false);
  const double delivered = measure(true);
  INFO("pending " << pending << " B (estimated " << estimate.pending_message_bytes
                  << "), delivered " << delivered << " B (estimated "
                  << estimate.delivered_message_bytes << ")");
  CHECK(pending == Approx(estimate.pending_message_bytes).epsilon(0.05));
  CHECK(delivered == Approx(estimate.delivered_message_bytes).epsilon(0.05));
  // History keeps about half of what the pending message took: the payload is gone.
  CHECK(delivered < 0.6 * pending);
}
