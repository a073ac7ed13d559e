#include "api/status.h"

namespace sluice::api {

unsigned http_status(pipeline::RefusalKind kind) {
  using K = pipeline::RefusalKind;
  switch (kind) {
    case K::kMalformed:
      return 400;
    case K::kTooLarge:
      return 413;
    case K::kForbidden:
      return 403;
    case K::kNotFound:
      return 404;
    case K::kInvalid:
      return 422;
    case K::kBusy:
      return 503;
    case K::kDeadline:
      return 504;
    case K::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace sluice::api
