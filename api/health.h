// Liveness and readiness for load balancers and monitors: /healthz and /readyz on both
// listeners, answered to any client certificate the listener admits (no admin role needed),
// and saying no more than whether, and why not.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http.h"

namespace sluice::api {

// Why this gateway should not be sent new documents now (empty: ready), e.g. the store
// latched read-only, the store is full, the gateway is stopping.
using Readiness = std::function<std::vector<std::string>()>;

bool is_health_path(std::string_view path);
// /healthz: 200 while the process answers. /readyz: 200 when `readiness` has no reason,
// else 503 with the reasons and Retry-After.
net::HttpResponse health_response(std::string_view path, const Readiness& readiness);

}  // namespace sluice::api
