// sluiced's configuration: one TOML file per half (deploy/sluiced.toml is the annotated
// example; gateway/default.toml is compiled in as the embedded defaults). load_config()
// validates everything it reads and names the key and line of anything wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "api/roles.h"
#include "common/error.h"
#include "delivery/destination.h"
#include "ingress/config.h"
#include "net/listener.h"
#include "pipeline/config.h"
#include "queue/queue.h"
#include "xml/limits.h"

namespace sluice::gateway {

using delivery::DestinationConfig;
using delivery::SinkKind;
using ingress::FeedConfig;
using ingress::SpoolInConfig;
using net::ListenerConfig;
using net::TlsServerConfig;
using pipeline::RouteConfig;
using pipeline::SenderConfig;

// The gateway's own signature on every accepted document and receipt, and the trust store
// that senders' signatures are checked against.
struct SigningConfig {
  bool enabled = true;
  std::filesystem::path cert;               // PEM chain, leaf first
  std::filesystem::path key;                // PEM private key, mode 0600
  std::filesystem::path trust;              // CA bundle for senders' signatures
  std::vector<std::filesystem::path> crls;  // current CRLs for every CA in it
};

// The ferry link to the other half (docs/ferry.md). The outer half listens, the inner half
// connects; each names the other half's gateway identity, whose signature documents must carry.
struct FerryConfig {
  std::string listen;                // outer: "tcp://ADDR:PORT" for the ROUTER (CURVE server)
  std::string connect;               // inner: "tcp://HOST:PORT" of the outer half
  std::filesystem::path secret_key;  // our CURVE secret key (Z85, 0600)
  std::filesystem::path server_key;  // inner: the outer's public key, pinned
  std::vector<std::filesystem::path> allowed_keys;  // outer: inner public keys admitted
  std::string peer;  // the other half's identity: node/system of its signing certificate
  std::uint32_t credit_docs = 256;
  std::uint64_t credit_bytes = 64ull << 20;
  std::int64_t heartbeat_ms = 1'000;
  std::int64_t stall_ms = 10'000;
  std::int64_t answer_timeout_ms = 30'000;
  std::int64_t reconnect_min_ms = 100;
  std::int64_t reconnect_max_ms = 10'000;
  bool enabled() const { return !listen.empty() || !connect.empty(); }
};

struct Config {
  std::filesystem::path source;  // the file it came from, or "(embedded defaults)"
  std::string role = "outer";
  std::string gateway_id = "sluice-outer";  // written into Trace hops
  std::filesystem::path state_dir = "var";
  std::string log_level = "info";
  std::string log_format = "text";  // or "json": one object per line
  int threads = 2;                  // io threads: they only move bytes
  int workers = 2;                  // threads for CPU work (parse, validate, sign, admin jobs)
  int worker_queue = 4096;          // jobs waiting for a worker; beyond it requests get 503
  // Request-body bytes all listeners together may be reading at once; beyond it 503.
  std::size_t max_body_bytes_in_flight = 256u << 20;
  // Refusals written to the audit trail one by one, per actor and action and window; the rest
  // are counted into one summary entry (ops/audit.h).
  std::size_t audit_refusal_burst = 20;
  std::int64_t audit_refusal_window_ms = 60'000;
  // SIGTERM: how long the listeners may take to answer every request already read before the
  // rest is cut (App::begin_shutdown). Below the unit's TimeoutStopSec (deploy/sluiced.service,
  // 30 s), with room for the final commit.
  std::int64_t shutdown_timeout_ms = 10'000;
  std::filesystem::path schema_dir = "schemas";
  ListenerConfig data;
  ListenerConfig admin;
  queue::Options store;  // path, bounds, group commit, retry (clock unset)
  std::int64_t purge_interval_ms = 60'000;
  xml::ParseLimits xml;
  std::vector<DestinationConfig> destinations;
  std::vector<RouteConfig> routes;
  std::vector<FeedConfig> feeds;
  std::vector<SenderConfig> senders;
  std::vector<SpoolInConfig> spool_in;
  std::uint64_t quarantine_max_bytes = 256ull << 20;  // refused inputs kept for operators
  std::size_t max_batch_records = 100'000;            // records in one feed input
  int feed_threads = 1;                               // workers translating feed inputs
  SigningConfig signing;
  std::vector<std::string> peer_gateways;  // [gateway] peers: identities of peer gateways
  FerryConfig ferry;                       // [ferry]; its peer joins peer_gateways
  pipeline::GateConfig gate;               // [[gate.inbound]], [[gate.outbound]]
  // [[admin_role]]: which admin certificate has which of the separated roles (api/roles.h).
  // None configured: every OU=admin certificate has the system role only, and nobody the
  // security or audit role (sluiced warns at start).
  std::vector<api::RoleRule> admin_roles;
  // The line where each section began and each file was named, by key: "listen.data",
  // "signing.trust", "destination[0].ca" (the first [[destination]]), so that --check-config
  // can say the line of every problem it reports.
  std::map<std::string, int> file_lines;
  int line_of(const std::string& key) const;

  pipeline::IngestOptions ingest_options() const;
  ingress::FeedOptions feed_options() const;
};

// Parses TOML text (`source` names it in messages). Relative paths are resolved against
// `base_dir`. Unknown keys are errors (a typo must not silently fall back to a default).
Result<Config> parse_config(std::string_view toml_text, const std::string& source,
                            const std::filesystem::path& base_dir);
Result<Config> load_config(const std::filesystem::path& file);
// The compiled-in defaults (gateway/default.toml), relative to the current directory.
Result<Config> default_config();
std::string_view embedded_default_toml();

}  // namespace sluice::gateway
