#include "api/quarantine_api.h"

#include <boost/json.hpp>

#include <future>

#include "api/admin_api.h"
#include "api/json.h"
#include "api/status.h"
#include "common/encoding.h"
#include "ingress/feeds.h"
#include "ops/audit.h"
#include "ops/quarantine.h"
#include "pipeline/ingest.h"

#include <spdlog/spdlog.h>

namespace sluice::api {

using ingress::FeedIngest;
using ingress::FeedOutcome;
using net::HttpHandler;
using net::HttpRequest;
using net::HttpResponse;
using net::PeerIdentity;
using net::Respond;
using ops::AuditLog;
using ops::Quarantine;
using ops::QuarantineEntry;
using pipeline::Accepted;
using pipeline::Ingest;
using pipeline::IngestResult;
using pipeline::Rejection;
using pipeline::Submission;

namespace json = boost::json;

namespace {

json::object entry_json(const QuarantineEntry& e, bool with_raw) {
  json::object o;
  o["id"] = e.id;
  o["time"] = format_time_cn(e.time_ms);
  o["sender"] = e.sender;
  o["source"] = e.source;
  if (!e.feed.empty()) o["feed"] = e.feed;
  o["kind"] = e.kind;
  if (e.record >= 0) o["record"] = e.record;
  if (e.line > 0) o["line"] = e.line;
  o["code"] = e.code;
  o["message"] = e.message;
  o["resubmissions"] = e.resubmissions;
  o["bytes"] = e.raw.size();
  json::array ps;
  for (const auto& p : e.problems) {
    json::object po{{"code", p.code}, {"message", p.message}};
    if (!p.field.empty()) po["field"] = p.field;
    if (!p.path.empty()) po["path"] = p.path;
    if (p.line > 0) po["line"] = p.line;
    if (p.record >= 0) po["record"] = p.record;
    ps.push_back(std::move(po));
  }
  o["problems"] = std::move(ps);
  if (with_raw) {
    if (is_valid_utf8(e.raw)) {
      o["raw"] = e.raw;
    } else {
      o["rawBase64"] = base64_encode(e.raw);
    }
  }
  return o;
}

PeerIdentity identity_of(const QuarantineEntry& e) {
  PeerIdentity p;
  auto slash = e.sender.find('/');
  if (e.sender == "unauthenticated" || slash == std::string::npos) return p;
  p.authenticated = true;
  p.node = e.sender.substr(0, slash);
  p.system = e.sender.substr(slash + 1);
  p.subject = "quarantine resubmission";
  return p;
}

}  // namespace

void register_quarantine_api(AdminApi& admin, Quarantine& quarantine_ref, Ingest& ingest_ref,
                             FeedIngest& feeds_ref, AuditLog& audit_ref) {
  // All four outlive the admin API (owned by the App).
  Quarantine* qp = &quarantine_ref;
  Ingest* ip = &ingest_ref;
  FeedIngest* fp = &feeds_ref;
  AuditLog* ap = &audit_ref;
  admin.add_route([qp, ip, fp, ap](HttpRequest& req, Respond& respond) {
    Quarantine& quarantine = *qp;
    FeedIngest& feeds = *fp;
    AuditLog& audit = *ap;
    constexpr std::string_view kPrefix = "/admin/v1/quarantine";
    if (!req.path.starts_with(kPrefix)) return false;
    std::string actor = req.peer.sender();
    std::string_view rest = std::string_view(req.path).substr(kPrefix.size());
    if (rest.empty() && req.method == "GET") {
      auto limit = query_count(req.query, "limit", 100, 10'000);
      if (!limit) {
        respond(std::move(limit.error()));
        return true;
      }
      auto list = quarantine.list(*limit);
      if (!list) {
        respond(error_response(500, "quarantine.error", list.error().message));
        return true;
      }
      json::array arr;
      for (const auto& e : *list) arr.push_back(entry_json(e, false));
      respond(json_response(200, json::serialize(json::object{{"entries", std::move(arr)},
                                                              {"total", quarantine.count()},
                                                              {"bytes", quarantine.bytes()}})));
      return true;
    }
    if (!rest.starts_with("/")) return false;
    rest.remove_prefix(1);
    std::string id(rest.substr(0, rest.find('/')));
    std::string action = rest.find('/') == std::string_view::npos
                             ? ""
                             : std::string(rest.substr(rest.find('/') + 1));
    auto entry = quarantine.get(id);
    if (!entry) {
      respond(error_response(entry.error().is(Errc::kNotFound) ? 404 : 500, "quarantine.not-found",
                             entry.error().message));
      return true;
    }
    if (action.empty() && req.method == "GET") {
      audit.record_sync(actor, "quarantine.show", id, "ok");
      respond(json_response(200, json::serialize(entry_json(*entry, true))));
      return true;
    }
    boost::system::error_code ec;
    json::value body = req.body.empty() ? json::value(json::object()) : json::parse(req.body, ec);
    const json::object* obj = ec ? nullptr : body.if_object();
    if (obj == nullptr) {
      respond(error_response(400, "admin.bad-request", "the body must be a JSON object"));
      return true;
    }
    if (action == "discard" && req.method == "POST") {
      const json::string* reason =
          obj->contains("reason") ? obj->at("reason").if_string() : nullptr;
      if (reason == nullptr || reason->empty()) {
        respond(error_response(400, "admin.bad-request", "discarding needs {\"reason\": \"...\"}"));
        return true;
      }
      auto r = quarantine.remove(id);
      audit.record_sync(actor, "quarantine.discard",
                        id + " (" + entry->code + " from " + entry->sender + ")",
                        r ? "discarded: " + std::string(reason->c_str()) : r.error().message);
      if (!r) {
        respond(error_response(500, "quarantine.error", r.error().message));
        return true;
      }
      respond(json_response(200, R"({"status":"discarded"})"));
      return true;
    }
    if (action == "resubmit" && req.method == "POST") {
      std::string content = entry->raw;
      bool corrected = false;
      if (obj->contains("content")) {
        const json::string* c = obj->at("content").if_string();
        if (c == nullptr) {
          respond(error_response(400, "admin.bad-request", "content must be a string"));
          return true;
        }
        content.assign(c->data(), c->size());
        corrected = true;
      }
      feeds.post([qp, ip, fp, ap, entry = std::move(*entry), content = std::move(content),
                  corrected, actor, respond = std::move(respond)]() mutable {
        Quarantine& quarantine = *qp;
        Ingest& ingest = *ip;
        FeedIngest& feeds = *fp;
        AuditLog& audit = *ap;
        PeerIdentity peer = identity_of(entry);
        std::string source = "resubmit:" + entry.id;
        xml::Problems problems;
        std::string code, message;
        json::array messages;
        bool ok = false;
        pipeline::RefusalKind kind = pipeline::RefusalKind::kInvalid;
        if (entry.kind == "document") {
          Submission s;
          s.bytes = content;
          s.peer = peer;
          s.source = source;
          s.quarantine_on_failure = false;
          std::promise<IngestResult> p;
          auto f = p.get_future();
          ingest.submit(std::move(s), [&p](IngestResult r) { p.set_value(std::move(r)); });
          IngestResult r = f.get();
          if (r) {
            ok = true;
            messages.push_back(
                json::object{{"messageId", r->message_id}, {"duplicate", r->duplicate}});
          } else {
            kind = r.error().kind;
            code = r.error().code;
            message = r.error().message;
            problems = r.error().problems;
          }
        } else {
          // Refused again: answered, not quarantined a second time (the entry stays).
          FeedOutcome o = feeds.run(entry.feed, content, peer, source, entry.kind == "feed-record",
                                    FeedIngest::kNoDeadline, false);
          for (const auto& a : o.accepted) {
            messages.push_back(json::object{
                {"record", a.record}, {"messageId", a.message_id}, {"duplicate", a.duplicate}});
          }
          ok = !o.fatal && o.rejected.empty() && !o.accepted.empty();
          if (!ok) {
            const Rejection& rej = o.fatal ? *o.fatal : o.rejected.front().rejection;
            kind = rej.kind;
            code = rej.code;
            message = rej.message;
            problems = rej.problems;
          }
        }
        if (ok) {
          auto removed = quarantine.remove(entry.id);
          audit.record_sync(
              actor, "quarantine.resubmit", entry.id + (corrected ? " (corrected)" : ""),
              "accepted" +
                  std::string(removed ? "" : "; entry not removed: " + removed.error().message));
          respond(
              json_response(202, json::serialize(json::object{{"status", "accepted"},
                                                              {"messages", std::move(messages)}})));
          return;
        }
        entry.resubmissions += 1;
        entry.code = code;
        entry.message = message;
        entry.problems = problems;
        entry.raw = content;
        if (auto r = quarantine.replace(entry); !r) {
          spdlog::error("quarantine entry {} could not record its failed resubmission: {}",
                        entry.id, r.error().describe());
        }
        audit.record_sync(actor, "quarantine.resubmit",
                          entry.id + (corrected ? " (corrected)" : ""),
                          "refused again: " + message);
        Rejection rej;
        rej.kind = kind;
        rej.code = code;
        rej.message = message;
        rej.problems = problems;
        rej.quarantine_id = entry.id;
        respond(rejection_response(rej));
      });
      return true;
    }
    respond(error_response(404, "http.not-found", "no such quarantine action: " + action));
    return true;
  });
}

}  // namespace sluice::api
