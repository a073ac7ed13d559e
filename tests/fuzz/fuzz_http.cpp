// libFuzzer: the request path of the HTTPS server, without the socket. The first two bytes of
// the input (little-endian) choose where the rest is split into two reads, so that a header,
// a chunk size or a chunk's data is cut across reads as a network cuts it; the rest is the
// request as sent. It goes to a Beast request parser limited as the server limits it; a
// parsed header goes to check_request_framing, a parsed multipart body to the multipart
// parser of batch uploads.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ingress/multipart.h"
#include "net/framing.h"

namespace {

namespace http = boost::beast::http;

constexpr std::uint32_t kHeaderLimit = 16u << 10;  // ListenerConfig::max_header_bytes
constexpr std::uint64_t kBodyLimit = 1u << 20;     // ListenerConfig::max_body_bytes

// Safe in a JSON string and a log line without escaping.
bool plain(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; });
}

// `parsed`: Beast took the header without error, so its framing can be compared.
void check_framing(const http::request_parser<http::string_body>& parser, bool parsed) {
  const auto& header = parser.get();
  std::vector<std::string_view> te;
  std::vector<std::string_view> cl;
  for (const auto& f : header) {
    if (f.name() == http::field::transfer_encoding) te.push_back(f.value());
    if (f.name() == http::field::content_length) cl.push_back(f.value());
  }
  auto problem = sluice::net::check_request_framing(te, cl, header.version());
  if (problem) {
    // The answer goes back to the client and into the log as it is.
    if ((problem->status != 400 && problem->status != 501) || problem->code.empty() ||
        !plain(problem->message) || problem->message.size() > 256) {
      __builtin_trap();
    }
    return;
  }
  if (!parsed) return;
  // Accepted framing must be the framing Beast reads: chunked exactly when
  // Transfer-Encoding is present, otherwise the one Content-Length (or none).
  if (parser.chunked() != !te.empty()) __builtin_trap();
  if (te.empty() && parser.content_length().has_value() != !cl.empty()) __builtin_trap();
}

void check_body(const http::request_parser<http::string_body>& parser) {
  const auto& req = parser.get();
  std::string boundary = sluice::ingress::multipart_boundary(req[http::field::content_type]);
  if (boundary.empty()) return;
  std::string_view body = req.body();
  auto parts = sluice::ingress::parse_multipart(body, boundary);
  if (!parts) return;
  for (const auto& p : *parts) {
    if (p.data.data() < body.data() || p.data.data() + p.data.size() > body.data() + body.size()) {
      __builtin_trap();  // a part must be a view into the body
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t split = data[0] | (std::size_t{data[1]} << 8);
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  split = std::min(split, in.size());

  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);

  // What a read has delivered and the parser has not consumed yet, like the server's
  // flat_buffer: Beast takes a header only whole, so unconsumed bytes wait for the next read.
  std::string pending;
  bool framing_checked = false;
  boost::beast::error_code ec;
  for (std::string_view read : {in.substr(0, split), in.substr(split)}) {
    pending.append(read);
    while (!pending.empty() && !parser.is_done()) {
      std::size_t used = parser.put(boost::asio::buffer(pending), ec);
      pending.erase(0, used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (parser.is_header_done() && !framing_checked) {
        framing_checked = true;
        check_framing(parser, !ec);
      }
      if (ec) return 0;
      if (used == 0) break;  // nothing more to take from these bytes: wait for the next read
    }
    if (parser.is_done()) break;
  }
  if (!parser.is_done()) {
    // The connection ends here; a body delimited by the close is complete, others are not.
    if (!parser.got_some()) return 0;
    parser.put_eof(ec);
    if (ec) return 0;
  }
  if (parser.is_done()) check_body(parser);
  return 0;
}
