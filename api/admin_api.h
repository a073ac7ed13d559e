// The admin listener's API (admin client certificates only), used by sluicectl:
//   GET  /admin/v1/health                      store state, listeners
//   GET  /admin/v1/stats                       queues per destination, store counters
//   GET  /admin/v1/messages/{id}               any message's status
//   GET  /admin/v1/dead-letters?destination=&limit=
//   POST /admin/v1/messages/{id}/redrive?destination=
//   POST /admin/v1/backup                      {"dir": "..."}: online compacting copy
//   GET  /metrics                              Prometheus text
// Feature modules (quarantine, audit, TLS reload) register further routes with add_route().
#pragma once

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/handler.h"
#include "api/health.h"
#include "api/roles.h"

namespace sluice::api {

class AdminApi final : public HttpHandler {
 public:
  // Returns true if it handled the request (prefix match on method + path).
  using Route = std::function<bool(HttpRequest& req, Respond& respond)>;

  AdminApi(queue::Store& store, Metrics& metrics, ops::AuditLog* audit, RoleMap roles)
      : store_(store), metrics_(metrics), audit_(audit), roles_(std::move(roles)) {}
  void add_route(Route route) { routes_.push_back(std::move(route)); }
  const RoleMap& roles() const { return roles_; }
  // Before the listener starts.
  void set_readiness(Readiness readiness) { readiness_ = std::move(readiness); }
  void handle(HttpRequest request, Respond respond) override;
  net::RequestPlan plan(const net::RequestHead& head) const override;

 private:
  // Why `peer` may not make this request (nullopt: it may): no role, or not one it needs.
  std::optional<HttpResponse> refusal(const PeerIdentity& peer, std::string_view method,
                                      std::string_view path) const;
  queue::Store& store_;
  Metrics& metrics_;
  ops::AuditLog* audit_;
  RoleMap roles_;
  std::vector<Route> routes_;
  Readiness readiness_;
};

// Value of `name` in a query string ("a=1&b=2"), percent-decoded; empty if absent.
std::string query_param(std::string_view query, std::string_view name);
// A count from the query: `fallback` when absent, at most `max`; a value that is not a
// decimal number (or overflows) is an error that names the parameter.
std::expected<std::size_t, HttpResponse> query_count(std::string_view query, std::string_view name,
                                                     std::size_t fallback, std::size_t max);

}  // namespace sluice::api
