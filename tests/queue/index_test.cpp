#include <catch2/catch.hpp>

#include "queue/index.h"

using sluice::queue::DeliveryIndex;

namespace {
DeliveryIndex::Item item(std::uint64_t seq, std::string key, std::int64_t at = 0) {
  return DeliveryIndex::Item{.seq = seq,
                             .message_id = std::string(16, 'x'),
                             .key = std::move(key),
                             .next_at_ms = at,
                             .payload_bytes = 10};
}
}  // namespace

TEST_CASE("index leases only the head of each ordering key") {
  DeliveryIndex idx;
  idx.add(item(1, "case-a"));
  idx.add(item(2, "case-a"));
  idx.add(item(3, "case-b"));
  idx.add(item(4, ""));
  std::vector<DeliveryIndex::Item> expired;
  auto leased = idx.lease(100, 1000, 10, expired);
  std::vector<std::uint64_t> seqs;
  for (auto& i : leased) seqs.push_back(i.seq);
  std::sort(seqs.begin(), seqs.end());
  CHECK(seqs == std::vector<std::uint64_t>{1, 3, 4});
  CHECK(expired.empty());
  REQUIRE(idx.begin_finish(1));
  CHECK(idx.finish(1));  // promotes seq 2
  auto next = idx.lease(100, 1000, 10, expired);
  REQUIRE(next.size() == 1);
  CHECK(next[0].seq == 2);
  CHECK(idx.bytes() == 30);
}

TEST_CASE("index respects next attempt time and reclaims expired leases") {
  DeliveryIndex idx;
  idx.add(item(1, "", 500));
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

TEST_CASE("index hands out expired messages for expiry, not delivery") {
  DeliveryIndex idx;
  auto it = item(7, "k");
  it.expires_ms = 50;
  idx.add(it);
  idx.add(item(8, "k"));
  std::vector<DeliveryIndex::Item> expired;
  auto leased = idx.lease(100, 1000, 10, expired);
  CHECK(leased.empty());
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].seq == 7);
  CHECK(idx.finish(7));
  auto next = idx.lease(100, 1000, 10, expired);
  REQUIRE(next.size() == 1);
  CHECK(next[0].seq == 8);
}

TEST_CASE("index retry reschedules a leased item") {
  DeliveryIndex idx;
  idx.add(item(1, "k"));
  std::vector<DeliveryIndex::Item> expired;
  REQUIRE(idx.lease(0, 1000, 1, expired).size() == 1);
  REQUIRE(idx.begin_finish(1));
  idx.retry(1, 2000, 1);
  CHECK(idx.lease(1999, 1000, 1, expired).empty());
  auto l = idx.lease(2000, 1000, 1, expired);
  REQUIRE(l.size() == 1);
  CHECK(l[0].attempts == 1);
}
