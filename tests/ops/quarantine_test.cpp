#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "ops/quarantine.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

namespace sluice::ops {
namespace {

struct Fixture {
  test::TempDir dir{"quarantine"};
  std::unique_ptr<queue::Store> store;
  std::unique_ptr<Quarantine> quarantine;

  explicit Fixture(std::uint64_t max_bytes) {
    queue::Options o;
    o.path = dir.path() / "store";
    o.map_size_bytes = 64ull << 20;
    o.extension_tables = {Quarantine::kTable};
    auto s = queue::Store::open(o);
    REQUIRE(s);
    store = std::move(*s);
    quarantine = std::make_unique<Quarantine>(*store, SystemClock::instance(),
                                              SecureRandom::instance(), max_bytes);
    REQUIRE(quarantine->open());
  }
};

QuarantineEntry entry(std::size_t raw_bytes) {
  QuarantineEntry e;
  e.sender = "440604/approval";
  e.source = "api";
  e.kind = "document";
  e.code = "document.invalid";
  e.message = "invalid";
  e.raw.assign(raw_bytes, 'x');
  return e;
}

TEST_CASE("concurrent discards of one entry count it once and leave the quarantine usable") {
  Fixture f(64 * 1024);
  for (int round = 0; round < 20; ++round) {
    auto id = f.quarantine->put(entry(20'000));
    REQUIRE(id);
    REQUIRE(f.quarantine->count() == 1);
    std::atomic<int> removed{0}, not_found{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        auto r = f.quarantine->remove(*id);
        if (r) {
          removed.fetch_add(1);
        } else if (r.error().is(Errc::kNotFound)) {
          not_found.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    INFO("round " << round);
    CHECK(removed.load() == 1);
    CHECK(not_found.load() == 3);
    CHECK(f.quarantine->bytes() == 0);
    CHECK(f.quarantine->count() == 0);
  }
  // Had a discard been counted twice, the bytes would have wrapped and the quarantine would
  // report itself full for ever; it still takes entries up to its bound.
  CHECK(f.quarantine->put(entry(20'000)));
  CHECK(f.quarantine->put(entry(20'000)));
}

TEST_CASE("replacing an entry accounts its new size, and a replaced missing entry is refused") {
  Fixture f(1 << 20);
  auto id = f.quarantine->put(entry(1000));
  REQUIRE(id);
  std::uint64_t before = f.quarantine->bytes();
  auto e = f.quarantine->get(*id);
  REQUIRE(e);
  e->raw.assign(5000, 'y');
  REQUIRE(f.quarantine->replace(*e));
  CHECK(f.quarantine->bytes() == before + 4000);
  REQUIRE(f.quarantine->remove(*id));
  CHECK(f.quarantine->bytes() == 0);
  auto again = f.quarantine->replace(*e);
  REQUIRE_FALSE(again);
  CHECK(again.error().is(Errc::kNotFound));
  CHECK(f.quarantine->bytes() == 0);
}

}  // namespace
}  // namespace sluice::ops
