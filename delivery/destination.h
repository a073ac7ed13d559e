// A destination as configured: where delivered documents go and how hard to try. Plain
// values, filled by the gateway's configuration loader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace sluice::delivery {

enum class SinkKind { kHttp, kSpool };

struct DestinationConfig {
  std::string name;
  SinkKind kind = SinkKind::kHttp;
  std::string url;             // http://host:port/path or https://...
  std::filesystem::path path;  // spool directory
  int concurrency = 4;         // connections (http) or writers (spool)
  int pipeline = 1;            // http: requests in flight per connection (HTTP/1.1 pipelining)
  std::int64_t timeout_ms = 10'000;   // connect + request + response
  std::filesystem::path ca;           // https: trust store for the destination's certificate
  std::filesystem::path client_cert;  // https: our certificate, when the destination asks
  std::filesystem::path client_key;
};

}  // namespace sluice::delivery
