#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "common/clock.h"
#include "ops/audit.h"
#include "queue/queue.h"
#include "tests/support/temp_dir.h"

namespace sluice::ops {
namespace {

std::size_t count(const std::vector<AuditEntry>& entries, const std::string& action) {
  return static_cast<std::size_t>(std::count_if(
      entries.begin(), entries.end(), [&](const AuditEntry& e) { return e.action == action; }));
}

// Attack: 200 refused admin requests wrote 200 audit entries in 0.66 s, without limit. Now a
// refused actor gets `burst` entries per window and one summary with the count of the rest.
TEST_CASE("refusals are audited within a bound per actor, the rest summarised", "[security]") {
  test::TempDir dir("audit-refusals");
  queue::Options o;
  o.path = dir.path() / "store";
  o.map_size_bytes = 64ull << 20;
  o.extension_tables = {AuditLog::kTable};
  auto store = queue::Store::open(o);
  REQUIRE(store);
  ManualClock clock;
  AuditLog audit(**store, clock);
  audit.set_refusal_bound({.burst = 5, .window_ms = 60'000, .max_keys = 3});

  for (int i = 0; i < 200; ++i) {
    audit.record_refusal("440604/approval", "admin.refused",
                         "GET /admin/v1/stats #" + std::to_string(i), "not an admin certificate");
  }
  // Another actor has its own share.
  audit.record_refusal("440605/tax", "admin.refused", "GET /admin/v1/stats", "not an admin");
  REQUIRE(audit.record_sync("system", "sync", "", ""));
  auto entries = audit.tail(1000);
  REQUIRE(entries);
  CHECK(count(*entries, "admin.refused") == 6);
  CHECK(count(*entries, "admin.refused.suppressed") == 0);  // the window has not ended

  // The window ends: the maintenance flush writes one summary naming the count and the last.
  clock.advance_ms(60'000);
  audit.flush_refusals();
  REQUIRE(audit.record_sync("system", "sync", "", ""));
  entries = audit.tail(1000);
  REQUIRE(entries);
  REQUIRE(count(*entries, "admin.refused.suppressed") == 1);
  auto summary = std::find_if(entries->begin(), entries->end(), [](const AuditEntry& e) {
    return e.action == "admin.refused.suppressed";
  });
  CHECK(summary->actor == "440604/approval");
  CHECK(summary->outcome.find("195 more admin.refused refusals") != std::string::npos);
  CHECK(summary->object == "last: GET /admin/v1/stats #199");
  // A new window writes again.
  audit.record_refusal("440604/approval", "admin.refused", "GET /x", "not an admin certificate");
  REQUIRE(audit.record_sync("system", "sync", "", ""));
  CHECK(count(*audit.tail(1000), "admin.refused") == 7);

  // Many distinct actors cannot grow the bookkeeping: beyond max_keys (3, one of them taken by
  // 440604/approval's new window) they share one window.
  for (int i = 0; i < 100; ++i) {
    audit.record_refusal("actor-" + std::to_string(i), "feed.refused", "f", "no");
  }
  audit.flush_refusals(true);
  REQUIRE(audit.record_sync("system", "sync", "", ""));
  entries = audit.tail(1000);
  CHECK(count(*entries, "feed.refused") == 2 + 5);
  auto many = std::find_if(entries->begin(), entries->end(), [](const AuditEntry& e) {
    return e.action == "feed.refused.suppressed";
  });
  REQUIRE(many != entries->end());
  CHECK(many->actor == "(many actors)");
  CHECK(many->outcome.find("93 more") != std::string::npos);
}

}  // namespace
}  // namespace sluice::ops
