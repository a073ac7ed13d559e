#include <catch2/catch.hpp>

#include "net/url.h"

namespace sluice::net {
namespace {

TEST_CASE("destination URLs are parsed by Boost.URL, IPv6 literals included") {
  auto v6 = parse_url("https://[::1]:8443/in?x=1");
  REQUIRE(v6);
  CHECK(v6->tls);
  CHECK(v6->host == "::1");
  CHECK(v6->port == "8443");
  CHECK(v6->target == "/in?x=1");
  CHECK(v6->authority() == "[::1]:8443");

  auto plain = parse_url("http://supervision.example:9000");
  REQUIRE(plain);
  CHECK_FALSE(plain->tls);
  CHECK(plain->host == "supervision.example");
  CHECK(plain->port == "9000");
  CHECK(plain->target == "/");

  auto defaults = parse_url("https://10.0.0.1/api/v1/receive");
  REQUIRE(defaults);
  CHECK(defaults->port == "443");
  CHECK(defaults->authority() == "10.0.0.1:443");
  CHECK(parse_url("http://h/")->port == "80");
}

TEST_CASE("a URL that is not an absolute http(s) URL with a host is refused with the reason") {
  for (const char* bad : {"ftp://h/x", "//h/x", "http:///x", "not a url", "http://u:p@h/x",
                          "http://[::1/x", "http://h:0/x"}) {
    INFO(bad);
    auto r = parse_url(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::kInvalidArgument));
    CHECK_FALSE(r.error().message.empty());
  }
}

}  // namespace
}  // namespace sluice::net
