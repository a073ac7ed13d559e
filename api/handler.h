// What the API handlers share: the HTTP handler interface (net/http.h) under the names the
// handlers use, and forward declarations of the libraries behind them.
#pragma once

#include "net/http.h"

namespace sluice {
class Metrics;
}
namespace sluice::ops {
class AuditLog;
class Quarantine;
}  // namespace sluice::ops
namespace sluice::pipeline {
class Ingest;
}
namespace sluice::ingress {
class FeedIngest;
}
namespace sluice::queue {
class Store;
}

namespace sluice::api {

using net::HttpHandler;
using net::HttpRequest;
using net::HttpResponse;
using net::PeerIdentity;
using net::Respond;

// What health answers say while the store is latched read-only.
inline constexpr const char* kReadOnlyReason =
    "the store is read-only after a failed commit (disk full, map full or an I/O error): "
    "nothing is accepted or delivered; free disk space or raise [store] map_size_mb, then "
    "restart sluiced (the log names the cause; nothing acknowledged is lost)";

}  // namespace sluice::api
