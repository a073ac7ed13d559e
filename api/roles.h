// Separated admin roles (三员分立): which admin certificate may do what on the admin API.
//   system    routes, destinations, senders, feeds, spool directories (run-time configuration),
//             queues, dead letters, quarantine, backup
//   security  trust store, CRLs and TLS material (reload), the gate's rules
//   audit     reads and verifies the audit trail and changes nothing; the only role that can
//   monitor   metrics and health only
// A certificate's role comes from the configured [[admin_role]] rules, matched on its
// "OU/CN" ("admin/netadmin"; a trailing "*" matches any CN). Every admin endpoint names the
// roles it admits (roles_for); a certificate without a role is refused everywhere but the
// health checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/identity.h"

namespace sluice::api {

enum class Role : std::uint8_t { kSystem, kSecurity, kAudit, kMonitor };

std::string_view to_string(Role r);
std::optional<Role> parse_role(std::string_view name);

struct RoleRule {
  std::string certificate;  // "OU/CN", or "OU/*"
  Role role = Role::kSystem;
};

class RoleMap {
 public:
  RoleMap() = default;
  explicit RoleMap(std::vector<RoleRule> rules) : rules_(std::move(rules)) {}
  // The first rule that matches the certificate, if any.
  std::optional<Role> role_of(const PeerIdentity& peer) const;
  const std::vector<RoleRule>& rules() const { return rules_; }

 private:
  std::vector<RoleRule> rules_;
};

// The roles that may make this admin request (never empty: an unknown path is the system
// role's, and gets its 404 there).
std::vector<Role> roles_for(std::string_view method, std::string_view path);

}  // namespace sluice::api
