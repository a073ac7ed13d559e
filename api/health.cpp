#include "api/health.h"

#include <boost/json.hpp>

namespace sluice::api {

bool is_health_path(std::string_view path) { return path == "/healthz" || path == "/readyz"; }

net::HttpResponse health_response(std::string_view path, const Readiness& readiness) {
  net::HttpResponse r;
  r.content_type = "application/json";
  if (path == "/healthz") {
    r.body = R"({"status":"alive"})";
    return r;
  }
  std::vector<std::string> reasons = readiness ? readiness() : std::vector<std::string>{};
  boost::json::object o;
  o["ready"] = reasons.empty();
  if (!reasons.empty()) {
    boost::json::array a;
    for (auto& why : reasons) a.emplace_back(std::move(why));
    o["reasons"] = std::move(a);
    r.status = 503;
    r.headers.emplace_back("Retry-After", "5");
  }
  r.body = boost::json::serialize(o);
  return r;
}

}  // namespace sluice::api
