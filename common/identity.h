// Who sent something: the verified client certificate of a connection, or the identity
// configured for a spool directory. Pipeline stages decide on it; they never see TLS.
#pragma once

#include <string>

namespace sluice {

struct PeerIdentity {
  bool authenticated = false;  // a client certificate was presented and verified
  std::string subject;         // RFC 2253 subject
  std::string node;            // OU: exchange-node code (senders) or "admin"
  std::string system;          // CN: system code (senders) or admin name
  std::string serial;          // certificate serial, hex
  std::string fingerprint;     // SHA-256 of the certificate, hex
  bool is_admin() const { return authenticated && node == "admin"; }
  // "node/system" for senders.
  std::string sender() const { return node + "/" + system; }
};

}  // namespace sluice
