#include "net/framing.h"

#include <cstddef>
#include <utility>

namespace sluice::net {
namespace {

constexpr std::size_t kMaxEcho = 64;
// 19 digits always fit in 64 bits; a longer number is no body length this gateway takes.
constexpr std::size_t kMaxLengthDigits = 19;

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// Client bytes made safe to quote in a message that goes into a JSON string and a log line
// unescaped: control bytes, non-ASCII, double quotes and backslashes become '?', and a long
// value is cut (the client knows what it sent; the answer only has to point at it).
std::string echo(std::string_view s) {
  std::string out;
  bool cut = s.size() > kMaxEcho;
  if (cut) s = s.substr(0, kMaxEcho - 3);
  for (char c : s) {
    bool printable = c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
    out += printable ? c : '?';
  }
  if (cut) out += "...";
  return out;
}

FramingProblem bad_framing(std::string message) {
  return FramingProblem{400, "http.bad-framing", std::move(message)};
}

std::optional<FramingProblem> check_transfer_codings(std::span<const std::string_view> fields) {
  std::size_t codings = 0;
  std::size_t plain_chunked = 0;
  for (std::string_view field : fields) {
    while (true) {
      std::size_t comma = field.find(',');
      std::string_view element = trim_ows(field.substr(0, comma));
      // RFC 9110 §5.6.1: empty list elements do not count.
      if (!element.empty()) {
        ++codings;
        std::size_t semi = element.find(';');
        std::string_view name = trim_ows(element.substr(0, semi));
        if (iequals(name, "chunked")) {
          // chunked takes no parameters; one with them is not the chunked a proxy knows.
          if (semi == std::string_view::npos) ++plain_chunked;
        } else if (!iequals(name, "identity")) {
          // RFC 9112 §6.1: a coding the server does not understand is answered with 501.
          return FramingProblem{501, "http.unsupported-transfer-coding",
                                "Transfer-Encoding names the transfer coding '" + echo(element) +
                                    "', which is not supported; only chunked is accepted."};
        }
      }
      if (comma == std::string_view::npos) break;
      field.remove_prefix(comma + 1);
    }
  }
  if (codings == 0) {
    return bad_framing("Transfer-Encoding names no transfer coding.");
  }
  // identity (withdrawn by RFC 7230), chunked twice or chunked with parameters: a peer may
  // read the body differently, so where this request ends is not certain.
  if (codings != 1 || plain_chunked != 1) {
    return bad_framing("Transfer-Encoding must name the chunked coding once and alone.");
  }
  return std::nullopt;
}

std::optional<FramingProblem> check_content_length(std::span<const std::string_view> fields) {
  // Equal repeated values are refused too: a proxy that keeps the first field and one
  // that keeps the last agree only by luck.
  if (fields.size() > 1) {
    return bad_framing("A request must carry at most one Content-Length field.");
  }
  // Field values exclude surrounding whitespace (RFC 9110 §5.5); inside, only digits.
  std::string_view value = trim_ows(fields.front());
  bool digits = !value.empty() && value.size() <= kMaxLengthDigits;
  for (char c : value) {
    digits = digits && c >= '0' && c <= '9';
  }
  if (!digits) {
    return bad_framing("Content-Length must be a decimal number of at most 19 digits.");
  }
  return std::nullopt;
}

}  // namespace

std::optional<FramingProblem> check_request_framing(
    std::span<const std::string_view> transfer_encoding_fields,
    std::span<const std::string_view> content_length_fields, unsigned http_version) {
  if (!transfer_encoding_fields.empty()) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing, and
    // a request with both headers may be read either way; both are refused, not guessed.
    if (http_version < 11) {
      return bad_framing("Transfer-Encoding is not allowed in an HTTP/1.0 request.");
    }
    if (!content_length_fields.empty()) {
      return bad_framing("A request must not carry both Transfer-Encoding and Content-Length.");
    }
    return check_transfer_codings(transfer_encoding_fields);
  }
  if (!content_length_fields.empty()) {
    return check_content_length(content_length_fields);
  }
  return std::nullopt;
}

}  // namespace sluice::net
