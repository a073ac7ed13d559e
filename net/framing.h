// How a request's body is delimited, decided once on its header (RFC 9112 §6). A gateway
// that frames a request differently from the proxy in front of it lets a client smuggle a
// second request inside the first; so every framing that is not plainly one Content-Length
// or plainly `Transfer-Encoding: chunked` is refused, and the connection is closed.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sluice::net {

// Why a request's framing is refused: the HTTP status to answer (400 or 501), a stable
// error code ("http.bad-framing", "http.unsupported-transfer-coding") and a sentence for
// the client that names the header. The message is printable ASCII without double quotes
// or backslashes, and echoes at most 64 client bytes, so it can be put into a JSON string
// or a log line as is.
struct FramingProblem {
  unsigned status;
  std::string code;
  std::string message;
};

// RFC 9112 §6: how a request's body is delimited. `transfer_encoding_fields` and
// `content_length_fields` are the values of every Transfer-Encoding and Content-Length
// field of the header, in order (none: the header has no such field); `http_version` is
// 10 * major + minor (10, 11), as Beast reports it.
//
// std::nullopt when the framing is unambiguous: no framing header, exactly one
// Content-Length of 1 to 19 digits, or Transfer-Encoding whose codings (all fields joined,
// case-insensitive, empty list elements ignored) are exactly `chunked`, in HTTP/1.1 and
// without Content-Length. Otherwise the problem to answer with, after which the server
// must close the connection, since where this request ends is unknown:
//   - Transfer-Encoding together with Content-Length, or in an HTTP/1.0 request: 400;
//   - a transfer coding other than chunked (and identity), e.g. xchunked, gzip: 501;
//   - chunked repeated, not alone (identity), with parameters, or no coding at all: 400;
//   - more than one Content-Length field, or one that is not only digits: 400.
// Pure; safe to call from any thread.
std::optional<FramingProblem> check_request_framing(
    std::span<const std::string_view> transfer_encoding_fields,
    std::span<const std::string_view> content_length_fields, unsigned http_version);

}  // namespace sluice::net
