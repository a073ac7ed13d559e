// A destination as configured: where delivered documents go and how hard to try. Plain
// values, filled by the gateway's configuration loader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace sluice::delivery {

enum class SinkKind { kHttp, kSpool, kFerry };

struct DestinationConfig {
  std::string name;
  SinkKind kind = SinkKind::kHttp;
  std::string url;             // http://host:port/path or https://...
  std::filesystem::path path;  // spool directory
  int concurrency = 4;         // connections (http) or writers (spool)
  int pipeline = 1;            // http: requests in flight per connection (HTTP/1.1 pipelining)
  std::int64_t timeout_ms = 10'000;  // connect + request + response
  // Circuit breaking: after `breaker_failures` failures in a row (unreachable, 5xx, 429,
  // timeouts) the destination backs off as a whole, from breaker_min_ms doubling to
  // breaker_max_ms (or the receiver's Retry-After, up to breaker_max_ms), then one request
  // probes it. Deliveries that fail while it is backed off (probes included) keep their
  // attempts.
  int breaker_failures = 3;
  std::int64_t breaker_min_ms = 1'000;
  std::int64_t breaker_max_ms = 60'000;
  std::filesystem::path ca;           // https: trust store for the destination's certificate
  std::filesystem::path client_cert;  // https: our certificate, when the destination asks
  std::filesystem::path client_key;
  bool operator==(const DestinationConfig&) const = default;
};

}  // namespace sluice::delivery
