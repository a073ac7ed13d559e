#include "api/roles.h"

#include <algorithm>

namespace sluice::api {

std::string_view to_string(Role r) {
  switch (r) {
    case Role::kSystem:
      return "system";
    case Role::kSecurity:
      return "security";
    case Role::kAudit:
      return "audit";
    case Role::kMonitor:
      return "monitor";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : {Role::kSystem, Role::kSecurity, Role::kAudit, Role::kMonitor}) {
    if (to_string(r) == name) return r;
  }
  return std::nullopt;
}

std::optional<Role> RoleMap::role_of(const PeerIdentity& peer) const {
  if (!peer.authenticated) return std::nullopt;
  const std::string id = peer.sender();  // "OU/CN"
  for (const auto& rule : rules_) {
    const std::string& c = rule.certificate;
    if (c == id) return rule.role;
    if (c.ends_with("/*") && id.starts_with(std::string_view(c).substr(0, c.size() - 1))) {
      return rule.role;
    }
  }
  return std::nullopt;
}

std::vector<Role> roles_for(std::string_view method, std::string_view path) {
  using enum Role;
  if (method == "GET" && (path == "/metrics" || path == "/admin/v1/health" ||
                          path == "/admin/v1/stats" || path == "/healthz" || path == "/readyz")) {
    return {kSystem, kSecurity, kAudit, kMonitor};
  }
  if (path == "/admin/v1/audit" || path.starts_with("/admin/v1/audit/")) return {kAudit};
  if (path == "/admin/v1/tls/reload") return {kSecurity};
  // Run-time configuration: everyone but the monitor reads it; the gate's rules are the
  // security admin's, the rest the system admin's. An import or a rollback is either's, and
  // may change only what its role owns (checked where it is applied, gateway/config_api).
  if (path == "/admin/v1/config" || path.starts_with("/admin/v1/config/")) {
    if (method == "GET") return {kSystem, kSecurity, kAudit};
    if (path.starts_with("/admin/v1/config/gate.")) return {kSecurity};
    if (path == "/admin/v1/config/import" || path == "/admin/v1/config/rollback") {
      return {kSystem, kSecurity};
    }
    return {kSystem};
  }
  if (method == "GET" && path == "/admin/v1/ferry") return {kSystem, kSecurity, kMonitor};
  return {kSystem};
}

}  // namespace sluice::api
