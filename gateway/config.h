// sluiced's configuration: one TOML file per half (deploy/sluiced.toml is the annotated
// example; gateway/default.toml is compiled in as the embedded defaults). load_config()
// validates everything it reads and names the key and line of anything wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "queue/queue.h"
#include "xml/parse.h"

namespace sluice::gateway {

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
  std::uint16_t port = 0;  // 0: any free port (tests)
  TlsServerConfig tls;
  std::size_t max_body_bytes = 1u << 20;    // one document
  std::size_t max_batch_bytes = 64u << 20;  // multipart / batch submissions
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_connections = 1024;
  std::int64_t request_timeout_ms = 30'000;  // reading one request (header + body)
  std::int64_t idle_timeout_ms = 60'000;     // keep-alive idle time
  std::int64_t handshake_timeout_ms = 10'000;
};

struct DestinationConfig {
  std::string name;
  std::string kind;            // "http" or "spool"
  std::string url;             // http://host:port/path or https://...
  std::filesystem::path path;  // spool directory
  int concurrency = 4;         // connections (http) or writers (spool)
  int pipeline = 1;            // http: requests in flight per connection (HTTP/1.1 pipelining)
  std::int64_t timeout_ms = 10'000;   // connect + request + response
  std::filesystem::path ca;           // https: trust store for the destination's certificate
  std::filesystem::path client_cert;  // https: our certificate, when the destination asks
  std::filesystem::path client_key;
};

struct RouteConfig {
  std::string doc_type = "*";  // exact, "*", or a prefix pattern like "case.*"
  std::string sender = "*";    // "node/system", "node/*" or "*"
  std::string receiver = "*";
  std::vector<std::string> destinations;
};

// A department feed: its own format, translated by the adapter its mapping file names.
struct FeedConfig {
  std::string name;
  std::filesystem::path mapping;
};

// What an authenticated sender may do. Patterns as in routes ("*", "case.*", "440600/*").
struct SenderConfig {
  std::string id;  // "node/system" from its certificate
  std::vector<std::string> doc_types{"*"};
  std::vector<std::string> receivers{"*"};
  std::vector<std::string> feeds;  // feed names it may submit to
};

// A directory that a system which can only drop files writes into: files renamed into
// <path>/incoming are translated by `feed` as sender `sender`, then moved to done/ or
// failed/ (with <file>.errors.json).
struct SpoolInConfig {
  std::string name;
  std::filesystem::path path;
  std::string feed;
  std::string sender;
};

// The gateway's own signature on every accepted document and receipt, and the trust store
// that senders' signatures are checked against.
struct SigningConfig {
  bool enabled = true;
  std::filesystem::path cert;               // PEM chain, leaf first
  std::filesystem::path key;                // PEM private key, mode 0600
  std::filesystem::path trust;              // CA bundle for senders' signatures
  std::vector<std::filesystem::path> crls;  // current CRLs for every CA in it
};

struct Config {
  std::filesystem::path source;  // the file it came from, or "(embedded defaults)"
  std::string role = "outer";
  std::string gateway_id = "sluice-outer";  // written into Trace hops
  std::filesystem::path state_dir = "var";
  std::string log_level = "info";
  int threads = 2;
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
