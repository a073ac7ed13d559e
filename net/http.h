// Plain request/response values passed between the HTTPS server and the handlers, so that
// handlers (ingest, admin API) never see Beast or Asio types.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
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
  // When the answer is due: work not yet stored by then is refused (504), not half-done.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

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

// What the server knows of a request once its header is read, before any body byte.
struct RequestHead {
  std::string_view method;
  std::string_view path;
  const PeerIdentity& peer;
  std::optional<std::uint64_t> content_length;  // nullopt: chunked
};

// The handler's decision on a request head.
struct RequestPlan {
  std::size_t body_limit = 0;  // larger bodies are refused with 413
  // CPU-bound work (parsing, validation, signing, backups): run on the worker pool. Cheap
  // answers (health, status) run on the connection's strand.
  bool on_worker = true;
  // The request's deadline from the end of its header; zero: the listener's
  // handler_timeout_ms. A batch of many records gets longer (batch_timeout_ms).
  std::chrono::milliseconds timeout{0};
  // Set to answer at once, without reading the body (unknown path, wrong role).
  std::optional<HttpResponse> refuse;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Handles one request; must call `respond` exactly once, from any thread. Exceptions that
  // escape are answered with 500 by the server.
  virtual void handle(HttpRequest request, Respond respond) = 0;
  // Decides from the header alone: body limit, where to run, or an answer without the body.
  virtual RequestPlan plan(const RequestHead& head) const = 0;
};

}  // namespace sluice::net
