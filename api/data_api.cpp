#include "api/data_api.h"

#include "api/feed_json.h"
#include "api/json.h"
#include "api/status.h"
#include "common/encoding.h"
#include "common/metrics.h"
#include "ingress/feeds.h"
#include "ingress/multipart.h"
#include "net/listener.h"
#include "pipeline/ingest.h"
#include "queue/queue.h"
#include "trust/signer.h"

#include <boost/json.hpp>

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
  if (req.method == "GET" && is_health_path(path)) {
    respond(health_response(path, readiness_));
    return;
  }
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

namespace {

// Whether `s` was delivered to the other half of the gate (so the other half knows it).
bool crossed(const queue::MessageStatus& s, const std::string& destination) {
  for (const auto& d : s.deliveries) {
    if (d.destination == destination && d.state == queue::DeliveryState::kDelivered) return true;
  }
  return false;
}

// Where a document routed across the gate is, from this half's side: "queued" (not yet
// sent over the link), "ferried" (sent, the other half has not stored it yet), "refused"
// (the other half refused it: dead here), or "peer-received" (in the other half's synced
// store); "peer-delivered" once the other half reports every destination there delivered.
// Empty when the document was not routed to the ferry.
boost::json::object crossing_json(const queue::MessageStatus& s, const std::string& destination,
                                  const std::string& other_state) {
  boost::json::object c;
  for (const auto& d : s.deliveries) {
    if (d.destination != destination) continue;
    c["via"] = destination;
    switch (d.state) {
      case queue::DeliveryState::kPending:
        c["state"] = d.attempts == 0 ? "queued" : "ferried";
        if (d.last_attempt_ms != 0) c["ferriedAt"] = format_time_cn(d.last_attempt_ms);
        break;
      case queue::DeliveryState::kDelivered:
        c["state"] = other_state == "delivered" ? "peer-delivered" : "peer-received";
        c["peerReceivedAt"] = format_time_cn(d.done_ms);
        break;
      case queue::DeliveryState::kDead:
      case queue::DeliveryState::kExpired:
      case queue::DeliveryState::kDiscarded:
        c["state"] = d.state == queue::DeliveryState::kDead
                         ? "refused"
                         : std::string(queue::to_string(d.state));
        if (!d.last_error.empty()) c["reason"] = d.last_error;
        break;
    }
  }
  return c;
}

}  // namespace

Result<std::string> delivery_receipt(const trust::DocumentSigner& signer,
                                     const queue::MessageStatus& s) {
  std::int64_t delivered_at = 0;
  for (const auto& d : s.deliveries) delivered_at = std::max(delivered_at, d.done_ms);
  auto digest = s.attributes.find("digest");
  return signer.receipt(
      {.message_id = s.message_id,
       .sender = s.sender,
       .sender_message_id = s.sender_message_id,
       .doc_type = s.doc_type,
       .digest = digest != s.attributes.end() ? digest->second : std::string(),
       .status = "delivered",
       .reason_text = "delivered to " + std::to_string(s.deliveries.size()) + " destination(s)",
       .time_ms = delivered_at});
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
  if (!peer_ || !crossed(*s, peer_->destination)) {
    boost::json::object crossing;
    if (peer_) crossing = crossing_json(*s, peer_->destination, "");
    if (crossing.empty()) {
      respond(json_response(200, status_json(*s)));
      return;
    }
    boost::json::object o = boost::json::parse(status_json(*s)).as_object();
    o["crossing"] = std::move(crossing);
    respond(json_response(200, boost::json::serialize(o)));
    return;
  }
  // Crossed the gate: add what the other half knows of it.
  peer_->ask(std::string(id), [here = status_json(*s), name = peer_->name,
                               destination = peer_->destination, status = *s,
                               respond = std::move(respond)](Result<PeerAnswer> a) mutable {
    boost::json::object o = boost::json::parse(here).as_object();
    boost::json::value there;
    if (!a) {
      there = boost::json::object{{"unavailable", a.error().message}};
    } else if (!a->found) {
      there = boost::json::object{{"unavailable", "the other half has no such message"}};
    } else {
      boost::system::error_code ec;
      there = boost::json::parse(a->status_json, ec);
      if (ec) there = boost::json::object{{"unavailable", "the other half's answer is not JSON"}};
    }
    std::string other_state;
    if (const auto* t = there.if_object(); t != nullptr) {
      if (const auto* st = t->if_contains("state"); st != nullptr && st->is_string()) {
        other_state = std::string(st->as_string());
      }
    }
    o["crossing"] = crossing_json(status, destination, other_state);
    o[name] = std::move(there);
    respond(json_response(200, boost::json::serialize(o)));
  });
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
    if (peer_ && crossed(*s, peer_->destination)) {
      // Its receivers are on the other half: the receipt is the one that half signs.
      peer_->ask(std::string(id), [id = std::string(id), name = peer_->name,
                                   respond = std::move(respond)](Result<PeerAnswer> a) mutable {
        if (!a) {
          auto r =
              error_response(503, "receipt.peer-unavailable",
                             "the " + name + " half cannot be asked now: " + a.error().message);
          r.headers.emplace_back("Retry-After", "5");
          respond(std::move(r));
        } else if (!a->found || a->receipt.empty()) {
          respond(error_response(409, "receipt.not-delivered",
                                 "message " + id +
                                     " crossed the gate; a delivery receipt "
                                     "exists once every destination on the " +
                                     name + " half confirmed"));
        } else {
          HttpResponse r;
          r.content_type = "application/xml; charset=utf-8";
          r.body = std::move(a->receipt);
          respond(std::move(r));
        }
      });
      return;
    }
    auto receipt = delivery_receipt(*signer_, *s);
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
