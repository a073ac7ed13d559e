#include "common/error.h"

namespace sluice {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk:
        return "ok";
      case Errc::kInvalidArgument:
        return "invalid argument";
      case Errc::kNotFound:
        return "not found";
      case Errc::kAlreadyExists:
        return "already exists";
      case Errc::kIo:
        return "i/o error";
      case Errc::kStoreFull:
        return "store full";
      case Errc::kQueueFull:
        return "queue full";
      case Errc::kStoreFailed:
        return "store failed (read-only until restart)";
      case Errc::kShuttingDown:
        return "shutting down";
      case Errc::kTimeout:
        return "timeout";
      case Errc::kMalformed:
        return "malformed input";
      case Errc::kTooLarge:
        return "too large";
      case Errc::kInvalidDocument:
        return "invalid document";
      case Errc::kUnauthenticated:
        return "unauthenticated";
      case Errc::kForbidden:
        return "forbidden";
      case Errc::kNoRoute:
        return "no route";
      case Errc::kCrypto:
        return "cryptographic check failed";
      case Errc::kUnavailable:
        return "unavailable";
      case Errc::kInternal:
        return "internal error";
    }
    return "unknown";
  }
};

}  // namespace

const std::error_category& sluice_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), sluice_category()};
}

std::string Error::describe() const {
  return message + " (" + code.category().name() + ": " + code.message() + ")";
}

}  // namespace sluice
