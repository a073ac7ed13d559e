#include "gateway/api.h"

#include "gateway/config.h"
#include "gateway/ingest.h"
#include "gateway/json.h"
#include "gateway/metrics.h"
#include "queue/queue.h"

namespace sluice::gateway {

std::size_t DataApi::body_limit(std::string_view method, std::string_view path) const {
  if (method == "POST" && path.starts_with("/v1/submit/")) {
    return config_.data.max_batch_bytes;
  }
  if (method == "POST") {
    return config_.data.max_body_bytes;
  }
  return 0;
}

void DataApi::handle(HttpRequest req, Respond respond) {
  metrics_.add("sluice_http_requests_total", "listener=\"data\"");
  std::string_view path = req.path;
  if (path == "/v1/messages") {
    if (req.method != "POST") {
      respond(error_response(405, "http.method", "use POST to submit a message"));
      return;
    }
    Submission s;
    s.bytes = std::move(req.body);
    s.peer = req.peer;
    s.source = "api";
    ingest_.submit(std::move(s), [respond = std::move(respond)](IngestResult r) mutable {
      respond(r ? accepted_response(*r) : rejection_response(r.error()));
    });
    return;
  }
  if (path.starts_with("/v1/messages/")) {
    if (req.method != "GET") {
      respond(error_response(405, "http.method", "use GET to read a message's status"));
      return;
    }
    std::string_view rest = path.substr(std::string_view("/v1/messages/").size());
    if (rest.ends_with("/receipt")) {
      receipt(req, rest.substr(0, rest.size() - 8), respond);
    } else {
      status(req, rest, respond);
    }
    return;
  }
  if (path == "/v1/health") {
    respond(json_response(
        200, store_.stats().read_only ? R"({"status":"read-only"})" : R"({"status":"ok"})"));
    return;
  }
  respond(error_response(404, "http.not-found", "no such endpoint: " + std::string(path)));
}

void DataApi::status(const HttpRequest& req, std::string_view id, Respond& respond) {
  auto s = store_.status(id);
  // A sender sees only its own messages; others get the same answer as a missing one.
  if (!s || (req.peer.authenticated && !req.peer.is_admin() && s->sender != req.peer.sender())) {
    if (!s && s.error().is(Errc::kInvalidArgument)) {
      respond(error_response(400, "message.bad-id", s.error().message));
    } else {
      respond(error_response(404, "message.not-found", "no message " + std::string(id)));
    }
    return;
  }
  respond(json_response(200, status_json(*s)));
}

void DataApi::receipt(const HttpRequest& req, std::string_view id, Respond& respond) {
  auto s = store_.status(id);
  if (!s || (req.peer.authenticated && !req.peer.is_admin() && s->sender != req.peer.sender())) {
    respond(error_response(404, "message.not-found", "no message " + std::string(id)));
    return;
  }
  auto it = s->attributes.find("receipt");
  if (it == s->attributes.end()) {
    respond(
        error_response(404, "receipt.none", "no receipt is stored for message " + std::string(id)));
    return;
  }
  HttpResponse r;
  r.status = 200;
  r.content_type = "application/xml; charset=utf-8";
  r.body = it->second;
  respond(std::move(r));
}

}  // namespace sluice::gateway
