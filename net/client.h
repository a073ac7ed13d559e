// A small synchronous HTTPS client (Beast) with a kept-alive connection and an optional
// client certificate: used by sluicectl, the integration tests and the demo tooling.
// Not thread-safe; one client per thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace sluice::net {

struct ClientOptions {
  std::string host = "localhost";
  std::string port;
  std::filesystem::path ca;    // trust store for the server certificate
  std::filesystem::path cert;  // our certificate chain (mTLS), optional
  std::filesystem::path key;
  std::chrono::milliseconds timeout{30'000};
  bool tls = true;
};

struct ClientResponse {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;
};

class HttpsClient {
 public:
  explicit HttpsClient(ClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Sends one request on the kept-alive connection (reconnecting if it was closed).
  Result<ClientResponse> request(
      const std::string& method, const std::string& target, const std::string& body = "",
      const std::string& content_type = "application/xml",
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::net
