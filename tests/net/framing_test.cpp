#include <catch2/catch.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/framing.h"

namespace sluice::net {
namespace {

// The fields as the server passes them: one string_view per header field, in order.
std::optional<FramingProblem> framing(std::initializer_list<std::string_view> te,
                                      std::initializer_list<std::string_view> cl,
                                      unsigned version = 11) {
  std::vector<std::string_view> te_fields(te);
  std::vector<std::string_view> cl_fields(cl);
  return check_request_framing(te_fields, cl_fields, version);
}

void require_bad_framing(const std::optional<FramingProblem>& p, std::string_view header) {
  REQUIRE(p);
  CHECK(p->status == 400);
  CHECK(p->code == "http.bad-framing");
  CHECK(p->message.find(header) != std::string::npos);
  CHECK(p->message.back() == '.');
}

TEST_CASE("a request without framing headers, or with one plain framing, is accepted",
          "[security]") {
  CHECK_FALSE(framing({}, {}));
  CHECK_FALSE(framing({"chunked"}, {}));
  CHECK_FALSE(framing({"Chunked"}, {}));
  CHECK_FALSE(framing({"CHUNKED"}, {}));
  CHECK_FALSE(framing({" chunked\t"}, {}));
  CHECK_FALSE(framing({}, {"5"}));
  CHECK_FALSE(framing({}, {"0"}));
  CHECK_FALSE(framing({}, {"1048576"}, 10));
  CHECK_FALSE(framing({}, {"9999999999999999999"}));  // 19 digits
}

TEST_CASE("empty list elements of Transfer-Encoding do not count (RFC 9110 5.6.1)", "[security]") {
  CHECK_FALSE(framing({"chunked,"}, {}));
  CHECK_FALSE(framing({", chunked"}, {}));
  CHECK_FALSE(framing({"", "chunked"}, {}));
}

TEST_CASE("Transfer-Encoding together with Content-Length is refused, whatever the coding",
          "[security]") {
  for (std::string_view te : {"chunked", "xchunked", "chunked, identity", "chunked, chunked"}) {
    INFO(te);
    auto p = framing({te}, {"5"});
    require_bad_framing(p, "Transfer-Encoding");
    CHECK(p->message.find("Content-Length") != std::string::npos);
  }
}

TEST_CASE("chunked repeated or beside identity is refused as bad framing", "[security]") {
  for (std::string_view te : {"chunked, chunked", "chunked,chunked", "chunked, identity",
                              "identity, chunked", "identity", "CHUNKED , Chunked"}) {
    INFO(te);
    require_bad_framing(framing({te}, {}), "Transfer-Encoding");
  }
  // The same list split over several fields is the same list (RFC 9110 5.3).
  require_bad_framing(framing({"chunked", "chunked"}, {}), "Transfer-Encoding");
  require_bad_framing(framing({"identity", "chunked"}, {}), "Transfer-Encoding");
}

TEST_CASE("chunked with parameters, or a Transfer-Encoding naming no coding, is refused",
          "[security]") {
  require_bad_framing(framing({"chunked;x=1"}, {}), "Transfer-Encoding");
  require_bad_framing(framing({"chunked ;"}, {}), "Transfer-Encoding");
  require_bad_framing(framing({""}, {}), "Transfer-Encoding");
  require_bad_framing(framing({" , ,"}, {}), "Transfer-Encoding");
}

TEST_CASE("an unknown transfer coding is answered 501 naming the coding", "[security]") {
  for (std::string_view te : {"xchunked", "gzip", "gzip, chunked", "chunked, gzip", "chunked2"}) {
    INFO(te);
    auto p = framing({te}, {});
    REQUIRE(p);
    CHECK(p->status == 501);
    CHECK(p->code == "http.unsupported-transfer-coding");
    CHECK(p->message.find("Transfer-Encoding") != std::string::npos);
  }
  CHECK(framing({"xchunked"}, {})->message.find("'xchunked'") != std::string::npos);
  CHECK(framing({"gzip, chunked"}, {})->message.find("'gzip'") != std::string::npos);
}

TEST_CASE("the echoed coding is printable ASCII safe in a JSON string, at most 64 characters",
          "[security]") {
  std::string hostile = "x\"}\\\x01\x7f\xff" + std::string(500, 'a');
  auto p = framing({hostile}, {});
  REQUIRE(p);
  CHECK(p->status == 501);
  auto open = p->message.find('\'');
  auto close = p->message.find('\'', open + 1);
  REQUIRE(close != std::string::npos);
  std::string echoed = p->message.substr(open + 1, close - open - 1);
  CHECK(echoed.size() <= 64);
  CHECK(echoed.starts_with("x?}????aaa"));
  CHECK(echoed.ends_with("..."));
  for (char c : p->message) {
    INFO(static_cast<int>(static_cast<unsigned char>(c)));
    CHECK((c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'));
  }
}

TEST_CASE("Transfer-Encoding in an HTTP/1.0 request is refused", "[security]") {
  require_bad_framing(framing({"chunked"}, {}, 10), "Transfer-Encoding");
  require_bad_framing(framing({"chunked"}, {"5"}, 10), "Transfer-Encoding");
  require_bad_framing(framing({"gzip"}, {}, 10), "HTTP/1.0");
}

TEST_CASE("more than one Content-Length field is refused, even with equal values", "[security]") {
  require_bad_framing(framing({}, {"5", "5"}), "Content-Length");
  require_bad_framing(framing({}, {"5", "6"}), "Content-Length");
}

TEST_CASE("a Content-Length that is not only digits is refused", "[security]") {
  for (std::string_view cl : {"5, 5", "5,5", "+5", "-1", " 5x", "5x", "0x10", "", " ", "5 5", "1e3",
                              "5.0", "\xd9\xa5", "12345678901234567890", "00000000000000000000"}) {
    INFO(cl);
    require_bad_framing(framing({}, {cl}), "Content-Length");
  }
}

}  // namespace
}  // namespace sluice::net
