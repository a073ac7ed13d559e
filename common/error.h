// Errors as values. Every fallible call in Sluice returns Result<T>; a non-OK result carries
// an error code from sluice::Errc (mixable with std/Beast error codes through its category)
// and a human sentence that names what is wrong. Messages never contain personal data in
// clear (see common/pii.h).
#pragma once

#include <expected>
#include <string>
#include <system_error>
#include <utility>

namespace sluice {

enum class Errc {
  kOk = 0,
  kInvalidArgument,  // caller passed something malformed
  kNotFound,         // the named object does not exist
  kAlreadyExists,    // the object exists and may not be replaced
  kIo,               // a file-system or socket call failed
  kStoreFull,        // LMDB map is full: refuse new data, keep what is stored
  kQueueFull,        // configured queue bound reached: backpressure
  kStoreFailed,      // a commit/sync failed: the store is read-only until restart
  kShuttingDown,     // the component is stopping and takes no new work
  kTimeout,          // a bounded wait expired
  kMalformed,        // input is not what its format requires (not XML, bad envelope, ...)
  kTooLarge,         // input exceeds a configured size/depth/count bound
  kInvalidDocument,  // schema or semantic validation failed
  kUnauthenticated,  // no or untrusted identity
  kForbidden,        // identity known, action not allowed
  kNoRoute,          // nothing is configured to receive this document
  kCrypto,           // signature or certificate check failed
  kUnavailable,      // a peer or resource is temporarily unavailable
  kInternal,         // a bug or an impossible state
};

const std::error_category& sluice_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::Errc> : std::true_type {};

namespace sluice {}  // namespace sluice

namespace sluice {

// A failed result: what kind of failure (code) and a sentence for a human (message).
struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(Errc e, std::string msg) : code(make_error_code(e)), message(std::move(msg)) {}
  Error(std::error_code c, std::string msg) : code(c), message(std::move(msg)) {}

  bool is(Errc e) const noexcept { return code == make_error_code(e); }
  // "message (category: code text)" for logs.
  std::string describe() const;
};

template <class T>
using Result = std::expected<T, Error>;

// Shorthand for returning a failure: `return fail(Errc::kIo, "open ", path, ": ", err)`.
inline std::unexpected<Error> fail(Errc e, std::string msg) {
  return std::unexpected<Error>(Error(e, std::move(msg)));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }

}  // namespace sluice
