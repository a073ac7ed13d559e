#include "api/json.h"
#include "api/status.h"

#include <boost/json.hpp>

#include "common/encoding.h"

namespace sluice::api {
namespace json = boost::json;

namespace {

json::array problems_array(const xml::Problems& problems) {
  json::array arr;
  for (const auto& p : problems) {
    json::object o;
    o["code"] = p.code;
    if (!p.field.empty()) o["field"] = p.field;
    if (!p.path.empty()) o["path"] = p.path;
    if (p.line > 0) o["line"] = p.line;
    if (p.record >= 0) o["record"] = p.record;
    o["message"] = p.message;
    arr.push_back(std::move(o));
  }
  return arr;
}

}  // namespace

HttpResponse json_response(unsigned status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.body = body;
  return r;
}

HttpResponse error_response(unsigned status, const std::string& code, const std::string& message) {
  json::object err;
  err["code"] = code;
  err["message"] = message;
  return json_response(status, json::serialize(json::object{{"error", std::move(err)}}));
}

HttpResponse rejection_response(const Rejection& r) {
  json::object err;
  err["code"] = r.code;
  err["message"] = r.message;
  if (!r.problems.empty()) err["problems"] = problems_array(r.problems);
  if (!r.quarantine_id.empty()) err["quarantineId"] = r.quarantine_id;
  HttpResponse res =
      json_response(http_status(r.kind), json::serialize(json::object{{"error", std::move(err)}}));
  if (r.retry_after_s > 0) {
    res.headers.emplace_back("Retry-After", std::to_string(r.retry_after_s));
  }
  return res;
}

HttpResponse accepted_response(const Accepted& a) {
  json::object o;
  o["messageId"] = a.message_id;
  o["status"] = "accepted";
  o["duplicate"] = a.duplicate;
  o["docType"] = a.doc_type;
  o["senderMessageId"] = a.sender_message_id;
  json::array dests;
  for (const auto& d : a.destinations) dests.push_back(json::string(d));
  o["destinations"] = std::move(dests);
  if (!a.receipt.empty()) o["receipt"] = a.receipt;
  HttpResponse r = json_response(202, json::serialize(o));
  r.headers.emplace_back("Location", "/v1/messages/" + a.message_id);
  return r;
}

std::string status_json(const queue::MessageStatus& s) {
  json::object o;
  o["messageId"] = s.message_id;
  o["state"] = s.state;
  o["docType"] = s.doc_type;
  o["sender"] = s.sender;
  o["senderMessageId"] = s.sender_message_id;
  o["receivedAt"] = format_time_cn(s.received_ms);
  if (s.expires_ms != 0) o["expiresAt"] = format_time_cn(s.expires_ms);
  o["bytes"] = s.payload_bytes;
  if (auto it = s.attributes.find("receiver"); it != s.attributes.end()) o["receiver"] = it->second;
  json::array deliveries;
  for (const auto& d : s.deliveries) {
    json::object dj;
    dj["destination"] = d.destination;
    dj["state"] = std::string(queue::to_string(d.state));
    dj["attempts"] = d.attempts;
    if (d.last_attempt_ms != 0) dj["lastAttemptAt"] = format_time_cn(d.last_attempt_ms);
    if (d.state == queue::DeliveryState::kPending) {
      dj["nextAttemptAt"] = format_time_cn(d.next_attempt_ms);
    } else if (d.done_ms != 0) {
      dj["endedAt"] = format_time_cn(d.done_ms);
    }
    if (!d.last_error.empty()) dj["lastError"] = d.last_error;
    deliveries.push_back(std::move(dj));
  }
  o["deliveries"] = std::move(deliveries);
  return json::serialize(o);
}

std::string problems_json(const xml::Problems& problems) {
  return json::serialize(problems_array(problems));
}

}  // namespace sluice::api
