// What a listener is configured with: address, TLS material, and the bound on every
// resource a client can make it spend (body and header bytes, connections, time per step).
// Plain values, filled by the gateway's configuration loader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sluice::net {

struct TlsServerConfig {
  std::filesystem::path cert;       // PEM chain (leaf first)
  std::filesystem::path key;        // PEM private key, mode 0600
  std::filesystem::path client_ca;  // trust store for client certificates; empty: none asked
  std::vector<std::filesystem::path> crls;  // PEM CRLs checked for every client chain
  bool require_client_cert = false;
};

struct ListenerConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (tests read the bound port back)
  TlsServerConfig tls;
  std::size_t max_body_bytes = 1u << 20;    // one document
  std::size_t max_batch_bytes = 64u << 20;  // multipart / batch submissions
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_connections = 1024;
  // Connections without a verified client certificate (still in the TLS handshake, or
  // without one): their share in all and from one address (net/admission.h).
  std::size_t max_anonymous_connections = 256;
  std::size_t max_anonymous_per_address = 32;
  std::int64_t request_timeout_ms = 30'000;  // reading one request (header + body)
  std::int64_t idle_timeout_ms = 60'000;     // keep-alive idle time
  std::int64_t handshake_timeout_ms = 5'000;
  std::int64_t handler_timeout_ms = 30'000;  // deadline for answering one request (504 after)
  std::int64_t batch_timeout_ms = 300'000;   // the same for a feed submission of many records
};

}  // namespace sluice::net
