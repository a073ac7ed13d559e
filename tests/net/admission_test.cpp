#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "net/admission.h"

namespace sluice::net {
namespace {

// Attack: 1,100 idle connections without a handshake made 14 of 15 legitimate posts fail.
// Idle anonymous connections are now closed, oldest first, to make room for new ones; those
// with a verified client certificate are never closed for room.
TEST_CASE("idle anonymous connections make room, authenticated ones keep theirs", "[security]") {
  ConnectionAdmission a({.max_connections = 6, .max_anonymous = 4, .max_anonymous_per_address = 2});
  std::vector<std::string> closed;
  auto admit = [&](const std::string& address, const std::string& name) {
    return a.admit(address, [&closed, name] { closed.push_back(name); });
  };
  auto a1 = admit("10.0.0.1", "a1");
  auto a2 = admit("10.0.0.1", "a2");
  REQUIRE(a1 != 0);
  REQUIRE(a2 != 0);
  // A third from the same address closes that address's oldest, not anybody else's.
  auto b1 = admit("10.0.0.2", "b1");
  auto a3 = admit("10.0.0.1", "a3");
  REQUIRE(a3 != 0);
  CHECK(closed == std::vector<std::string>{"a1"});
  a.release(a1);  // the closed session ends later; its release is harmless
  CHECK(a.anonymous() == 3);
  // Authenticated: out of the anonymous share, never closed for room.
  a.authenticated(a2);
  a.authenticated(b1);
  CHECK(a.anonymous() == 1);
  CHECK(admit("10.0.0.3", "c1") != 0);
  auto c2 = admit("10.0.0.3", "c2");
  auto d1 = admit("10.0.0.4", "d1");
  CHECK(a.open() == 6);
  CHECK(a.anonymous() == 4);
  // Full in all: the oldest idle anonymous (a3) goes; a busy one is never taken.
  a.busy(a3, true);
  auto e1 = admit("10.0.0.5", "e1");
  REQUIRE(e1 != 0);
  CHECK(closed.back() == "c1");
  a.authenticated(c2);
  a.authenticated(d1);
  a.authenticated(e1);
  // Now every slot is authenticated or busy: a newcomer is refused, nothing is closed.
  std::size_t before = closed.size();
  CHECK(admit("10.0.0.6", "f1") == 0);
  CHECK(closed.size() == before);
  CHECK(a.evicted() == 2);
  // A released slot is free again.
  a.release(a2);
  CHECK(admit("10.0.0.6", "f2") != 0);
}

// A flood of silent sockets cannot close a handshake in progress: connections that never sent
// a byte are closed first, however new.
TEST_CASE("silent connections are closed for room before a handshake in progress", "[security]") {
  ConnectionAdmission a(
      {.max_connections = 100, .max_anonymous = 3, .max_anonymous_per_address = 3});
  std::vector<std::string> closed;
  auto admit = [&](const std::string& address, const std::string& name) {
    return a.admit(address, [&closed, name] { closed.push_back(name); });
  };
  auto legit = admit("10.0.0.1", "legit");
  a.spoke(legit);  // its ClientHello arrived
  REQUIRE(admit("10.0.0.2", "s1") != 0);
  REQUIRE(admit("10.0.0.3", "s2") != 0);
  for (int i = 0; i < 50; ++i) REQUIRE(admit("10.0.0.4", "flood") != 0);
  CHECK(std::find(closed.begin(), closed.end(), "legit") == closed.end());
  CHECK(closed.size() == 50);
  // When every anonymous one has spoken, the oldest goes.
  ConnectionAdmission b(
      {.max_connections = 100, .max_anonymous = 2, .max_anonymous_per_address = 2});
  std::vector<std::string> gone;
  auto x = b.admit("10.0.0.1", [&] { gone.push_back("x"); });
  auto y = b.admit("10.0.0.2", [&] { gone.push_back("y"); });
  b.spoke(x);
  b.spoke(y);
  REQUIRE(b.admit("10.0.0.3", [&] { gone.push_back("z"); }) != 0);
  CHECK(gone == std::vector<std::string>{"x"});
}

// The server may not have read a new client's first bytes yet while a flood arrives: the
// victims come from the address holding the most, so that client is never the one closed.
TEST_CASE("room is made from the address that holds the most anonymous connections", "[security]") {
  ConnectionAdmission a(
      {.max_connections = 100, .max_anonymous = 10, .max_anonymous_per_address = 8});
  std::vector<std::string> closed;
  auto legit = a.admit("10.0.0.1", [&] { closed.push_back("legit"); });
  REQUIRE(legit != 0);  // silent: its ClientHello not read yet
  for (int i = 0; i < 1000; ++i) {
    const std::string from = i % 2 == 0 ? "10.0.0.2" : "10.0.0.3";
    REQUIRE(a.admit(from, [&closed, from] { closed.push_back(from); }) != 0);
  }
  CHECK(std::find(closed.begin(), closed.end(), "legit") == closed.end());
  CHECK(a.anonymous() == 10);
}

TEST_CASE("the body budget reserves what fits and gives it back", "[security]") {
  BodyBudget b(100);
  CHECK(b.try_reserve(60));
  CHECK_FALSE(b.try_reserve(41));
  CHECK(b.used() == 60);
  {
    BodyBudget::Lease lease(&b, 40);
    REQUIRE(b.try_reserve(40));
    CHECK(b.used() == 100);
    CHECK_FALSE(b.try_reserve(1));
  }
  CHECK(b.used() == 60);
  CHECK_FALSE(b.try_reserve(static_cast<std::size_t>(-1)));
  b.release(60);
  CHECK(b.used() == 0);
}

}  // namespace
}  // namespace sluice::net
