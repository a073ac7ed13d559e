// TLS contexts from configuration (OpenSSL through Asio): TLS 1.2+ with a modern cipher
// list, the private key refused when readable by group or others, client certificates
// verified against the configured CA bundle with CRL checks on the whole chain (a missing
// or expired CRL fails the handshake). reload() re-reads certificates and CRLs; connections
// accepted afterwards use the new context, existing ones keep theirs.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/error.h"
#include "net/http.h"
#include "net/listener.h"

namespace boost::asio::ssl {
class context;
}
struct ssl_st;

namespace sluice::net {

class ServerTls {
 public:
  static Result<std::shared_ptr<ServerTls>> create(const TlsServerConfig& config);
  std::shared_ptr<boost::asio::ssl::context> context() const;
  Result<void> reload();
  const TlsServerConfig& config() const { return config_; }

 private:
  explicit ServerTls(TlsServerConfig config) : config_(std::move(config)) {}
  TlsServerConfig config_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;  // Guarded by mutex_.
};

// Client context for outgoing HTTPS (egress, sluicectl, tests): verifies the server against
// `ca` (system store when empty) and presents `cert`/`key` when given.
Result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const std::filesystem::path& ca, const std::filesystem::path& cert,
    const std::filesystem::path& key);

// The identity of a verified peer on an established connection.
PeerIdentity peer_identity(ssl_st* ssl);

// Refuses a private key file that group or others may read.
Result<void> check_key_permissions(const std::filesystem::path& key);

}  // namespace sluice::net
