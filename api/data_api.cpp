#include "api/data_api.h"

#include "api/feed_json.h"
#include "api/json.h"
#include "api/status.h"
#include "common/metrics.h"
#include "ingress/feeds.h"
#include "ingress/multipart.h"
#include "net/listener.h"
#include "pipeline/ingest.h"
#include "queue/queue.h"
#include "trust/signer.h"

#include <algorithm>

namespace sluice::api {

using ingress::FeedIngest;
using ingress::FeedOutcome;
using ingress::multipart_boundary;
using ingress::parse_multipart;
using net::HttpHandler;
using net::HttpRequest;
using net::HttpResponse;
using net::PeerIdentity;
using net::Respond;
using ops::AuditLog;
using ops::Quarantine;
using pipeline::Accepted;
using pipeline::Ingest;
using pipeline::IngestResult;
using pipeline::Rejection;
using pipeline::Submission;

net::RequestPlan DataApi::plan(const net::RequestHead& head) const {
  net::RequestPlan p;
  if (head.method == "POST" && head.path.starts_with("/v1/submit/")) {
    std::string feed(head.path.substr(std::string_view("/v1/submit/").size()));
    if (feeds_ == nullptr || !feeds_->has_feed(feed)) {
      p.refuse = error_response(404, "feed.unknown", "no feed named " + feed);
      return p;
    }
    p.body_limit = config_.max_batch_bytes;
    p.timeout = std::chrono::milliseconds(config_.batch_timeout_ms);
    return p;
  }
  if (head.method == "POST" && head.path == "/v1/messages") {
    p.body_limit = config_.max_body_bytes;
    return p;
  }
  if (head.method == "POST") {
    p.refuse = error_response(404, "http.not-found", "no such resource");
    return p;
  }
  // Reads are store look-ups; only a delivery receipt is signed on request.
  p.on_worker = head.path.ends_with("/receipt");
  return p;
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
    s.deadline = req.deadline;
    ingest_.submit(std::move(s), [respond = std::move(respond)](IngestResult r) mutable {
      respond(r ? accepted_response(*r) : rejection_response(r.error()));
    });
    return;
  }
  if (path.starts_with("/v1/submit/")) {
    if (req.method != "POST") {
      respond(error_response(405, "http.method", "use POST to submit to a feed"));
      return;
    }
    std::string feed(path.substr(std::string_view("/v1/submit/").size()));
    if (feeds_ == nullptr || !feeds_->has_feed(feed)) {
      respond(error_response(404, "feed.unknown", "no feed named " + feed));
      return;
    }
    std::vector<std::string> inputs, names;
    std::string boundary = multipart_boundary(req.header("content-type"));
    if (!boundary.empty()) {
      auto parts = parse_multipart(req.body, boundary);
      if (!parts) {
        respond(error_response(400, "multipart.malformed", parts.error().message));
        return;
      }
      bool any_file = std::any_of(parts->begin(), parts->end(),
                                  [](const ingress::Part& p) { return !p.filename.empty(); });
      for (const auto& part : *parts) {
        if (any_file && part.filename.empty()) continue;
        inputs.emplace_back(part.data);
        names.push_back(!part.filename.empty() ? part.filename : part.name);
      }
      if (inputs.empty()) {
        respond(error_response(400, "multipart.empty", "the upload holds no file"));
        return;
      }
    } else {
      inputs.push_back(std::move(req.body));
    }
    auto deadline = req.deadline;
    feeds_->submit(
        feed, std::move(inputs), req.peer, "feed:" + feed,
        [respond = std::move(respond),
         names = std::move(names)](std::vector<FeedOutcome> outcomes) mutable {
          auto [status, body] = feed_outcome_json(outcomes, names);
          respond(json_response(status, body));
        },
        deadline);
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
    // Unhealthy while the store cannot write: nothing can be accepted or delivered, and a
    // load balancer or monitor must see it (the log has the failed commit's cause).
    if (store_.read_only()) {
      respond(json_response(
          503, std::string(R"({"status":"read-only","reason":")") + kReadOnlyReason + R"("})"));
    } else {
      respond(json_response(200, R"({"status":"ok"})"));
    }
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
  if (req.query.find("status=delivered") != std::string::npos) {
    if (signer_ == nullptr) {
      respond(error_response(404, "receipt.none", "receipts are not signed on this gateway"));
      return;
    }
    if (s->state != "delivered") {
      respond(error_response(409, "receipt.not-delivered",
                             "message " + std::string(id) + " is " + s->state +
                                 "; a delivery receipt exists once every destination confirmed"));
      return;
    }
    std::int64_t delivered_at = 0;
    for (const auto& d : s->deliveries) delivered_at = std::max(delivered_at, d.done_ms);
    auto digest = s->attributes.find("digest");
    auto receipt = signer_->receipt(
        {.message_id = s->message_id,
         .sender = s->sender,
         .sender_message_id = s->sender_message_id,
         .doc_type = s->doc_type,
         .digest = digest != s->attributes.end() ? digest->second : std::string(),
         .status = "delivered",
         .reason_text = "delivered to " + std::to_string(s->deliveries.size()) + " destination(s)",
         .time_ms = delivered_at});
    if (!receipt) {
      respond(error_response(500, "receipt.failed", receipt.error().message));
      return;
    }
    HttpResponse r;
    r.content_type = "application/xml; charset=utf-8";
    r.body = std::move(*receipt);
    respond(std::move(r));
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

}  // namespace sluice::api
