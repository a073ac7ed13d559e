#include <catch2/catch.hpp>

#include "queue/index.h"

using sluice::queue::DeliveryIndex;

namespace {
DeliveryIndex::Item item(std::uint64_t seq, std::int64_t at = 0) {
  return DeliveryIndex::Item{
      .seq = seq, .message_id = std::string(16, 'x'), .next_at_ms = at, .payload_bytes = 10};
}

std::vector<std::uint64_t> seqs(const std::vector<DeliveryIndex::Item>& items) {
  std::vector<std::uint64_t> out;
  for (const auto& i : items) out.push_back(i.seq);
  return out;
}
}  // namespace

TEST_CASE("window respects next attempt time and reclaims expired leases") {
  DeliveryIndex idx(16, true);
  idx.add(item(1, 500));
  std::vector<DeliveryIndex::Item> expired;
  CHECK(idx.lease(499, 100, 10, expired).empty());
  REQUIRE(idx.next_due_ms() == 500);
  auto first = idx.lease(500, 100, 10, expired);
  REQUIRE(first.size() == 1);
  CHECK(idx.lease(550, 100, 10, expired).empty());
  auto again = idx.lease(600, 100, 10, expired);  // lease ran out at 600
  REQUIRE(again.size() == 1);
  CHECK(again[0].seq == 1);
}

TEST_CASE("window hands out expired deliveries for expiry, not delivery") {
  DeliveryIndex idx(16, true);
  auto it = item(7);
  it.expires_ms = 50;
  idx.add(it);
  idx.add(item(8));
  std::vector<DeliveryIndex::Item> expired;
  auto leased = idx.lease(100, 1000, 10, expired);
  CHECK(seqs(leased) == std::vector<std::uint64_t>{8});
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].seq == 7);
  idx.finish(7);
  CHECK_FALSE(idx.holds(7));
}

TEST_CASE("window retry reschedules a leased item") {
  DeliveryIndex idx(16, true);
  idx.add(item(1));
  std::vector<DeliveryIndex::Item> expired;
  REQUIRE(idx.lease(0, 1000, 1, expired).size() == 1);
  REQUIRE(idx.begin_finish(1));
  idx.retry(1, 2000, 1);
  CHECK(idx.lease(1999, 1000, 1, expired).empty());
  auto l = idx.lease(2000, 1000, 1, expired);
  REQUIRE(l.size() == 1);
  CHECK(l[0].attempts == 1);
}

TEST_CASE("window holds at most its capacity and knows when the store holds more") {
  DeliveryIndex idx(4, true);
  for (std::uint64_t s = 1; s <= 6; ++s) idx.add(item(s, static_cast<std::int64_t>(s)));
  CHECK(idx.held() == 4);
  CHECK_FALSE(idx.complete());
  // The latest left: 5 and 6 are in the store only, and the window says when they are due.
  CHECK(idx.holds(4));
  CHECK_FALSE(idx.holds(5));
  std::vector<DeliveryIndex::Item> expired;
  CHECK(seqs(idx.lease(100, 1000, 10, expired)) == std::vector<std::uint64_t>{1, 2, 3, 4});
  CHECK(idx.next_due_ms() == 5);
  CHECK(idx.wants_refill(100, 10));
  // An earlier delivery takes the place of the latest unleased one held.
  DeliveryIndex early(2, true);
  early.add(item(10, 50));
  early.add(item(11, 60));
  early.add(item(12, 10));
  CHECK(early.holds(12));
  CHECK(early.holds(10));
  CHECK_FALSE(early.holds(11));
  CHECK(early.next_due_ms() == 10);
}

TEST_CASE("window refills from the store in schedule order and becomes complete") {
  // The stored schedule: (next_at, seq), as the Store reads it from LMDB.
  std::vector<std::pair<std::int64_t, std::uint64_t>> stored;
  for (std::uint64_t s = 1; s <= 10; ++s) stored.emplace_back(static_cast<std::int64_t>(s), s);
  DeliveryIndex idx(3);  // a new window knows nothing
  CHECK(idx.wants_refill(0, 1));
  auto refill = [&] {
    idx.begin_refill();
    for (auto [at, seq] : stored) {
      if (idx.holds(seq)) continue;
      if (!idx.takes(at, seq)) {
        idx.refilled(false, at);
        return;
      }
      idx.add_from_store(item(seq, at));
    }
    idx.refilled(true, 0);
  };
  std::vector<std::uint64_t> delivered;
  std::vector<DeliveryIndex::Item> expired;
  for (int round = 0; round < 10 && delivered.size() < 10; ++round) {
    if (idx.wants_refill(100, 2)) refill();
    CHECK(idx.held() <= 3);
    for (const auto& l : idx.lease(100, 1000, 2, expired)) {
      REQUIRE(idx.begin_finish(l.seq));
      idx.finish(l.seq);
      std::erase(stored, std::pair(l.next_at_ms, l.seq));
      delivered.push_back(l.seq);
    }
  }
  CHECK(delivered == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(idx.complete());
  CHECK_FALSE(idx.wants_refill(100, 2));
  CHECK_FALSE(idx.next_due_ms());
}
