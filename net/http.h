// Plain request/response values passed between the HTTPS server and the handlers, so that
// handlers (ingest, admin API) never see Beast or Asio types.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/identity.h"

namespace sluice::net {

using sluice::PeerIdentity;

struct HttpRequest {
  std::string method;
  std::string target;  // as received, e.g. /v1/messages/abc?x=1
  std::string path;    // target without the query
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  PeerIdentity peer;
  std::string remote;  // peer address:port

  std::string_view header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
      if (k == lower_name) return v;
    }
    return {};
  }
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using Respond = std::move_only_function<void(HttpResponse)>;

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Handles one request; must call `respond` exactly once, from any thread.
  virtual void handle(HttpRequest request, Respond respond) = 0;
  // The body limit for a request, decided from its header (e.g. batches get more).
  virtual std::size_t body_limit(std::string_view method, std::string_view path) const = 0;
};

}  // namespace sluice::net
