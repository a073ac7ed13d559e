#include "api/admin_api.h"

#include <algorithm>
#include <charconv>

#include <boost/json.hpp>

#include "api/json.h"
#include "common/metrics.h"
#include "ops/audit.h"
#include "queue/queue.h"

namespace sluice::api {

using net::HttpHandler;
using net::HttpRequest;
using net::HttpResponse;
using net::PeerIdentity;
using net::Respond;
using ops::AuditLog;
namespace json = boost::json;

constexpr std::size_t kMaxAdminBody = 64u << 20;  // a corrected quarantine input

std::string query_param(std::string_view query, std::string_view name) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) {
      continue;
    }
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size()) {
        int h = hex(raw[i + 1]);
        int l = hex(raw[i + 2]);
        if (h >= 0 && l >= 0) {
          out.push_back(static_cast<char>(h << 4 | l));
          i += 2;
          continue;
        }
      }
      out.push_back(raw[i] == '+' ? ' ' : raw[i]);
    }
    return out;
  }
  return {};
}

std::expected<std::size_t, HttpResponse> query_count(std::string_view query, std::string_view name,
                                                     std::size_t fallback, std::size_t max) {
  std::string text = query_param(query, name);
  if (text.empty()) return fallback;
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::unexpected(error_response(400, "query.invalid",
                                          "query parameter " + std::string(name) +
                                              " must be a whole number up to " +
                                              std::to_string(max)));
  }
  return std::min(value, max);
}

std::optional<HttpResponse> AdminApi::refusal(const PeerIdentity& peer, std::string_view method,
                                              std::string_view path) const {
  auto role = roles_.role_of(peer);
  const std::string who = peer.authenticated ? peer.sender() : "unauthenticated";
  std::string why;
  HttpResponse r;
  if (!role) {
    why = "not an admin certificate";
    r = error_response(403, "auth.not-admin",
                       "the admin API needs an admin client certificate that an [[admin_role]] "
                       "rule gives a role; " +
                           who + " has none");
  } else {
    auto allowed = roles_for(method, path);
    if (std::find(allowed.begin(), allowed.end(), *role) != allowed.end()) return std::nullopt;
    std::string names;
    for (Role a : allowed) names += (names.empty() ? "" : " or ") + std::string(to_string(a));
    why = "the " + std::string(to_string(*role)) + " role may not";
    r = error_response(403, "auth.role",
                       std::string(method) + " " + std::string(path) + " needs the " + names +
                           " role; " + who + " has the " + std::string(to_string(*role)) +
                           " role (separated admin roles: system, security, audit, monitor)");
  }
  if (audit_ != nullptr) {
    audit_->record_refusal(who, "admin.refused", std::string(method) + " " + std::string(path),
                           why);
  }
  return r;
}

net::RequestPlan AdminApi::plan(const net::RequestHead& head) const {
  net::RequestPlan p;
  if (head.method == "GET" && is_health_path(head.path) && head.peer.authenticated) {
    return p;  // any certificate the listener trusts: load balancers and monitors
  }
  if (auto refused = refusal(head.peer, head.method, head.path)) {
    // Refused on the header: the body of a request that may not be made is never read.
    metrics_.add("sluice_http_requests_total", "listener=\"admin\"");
    p.refuse = std::move(*refused);
    return p;
  }
  p.body_limit = head.method == "POST" || head.method == "PUT" ? kMaxAdminBody : 0;
  // Metrics, health and stats are cheap reads; everything else (backups, audit checks,
  // redrives, resubmissions) runs on the worker pool.
  p.on_worker =
      !(head.method == "GET" && (head.path == "/metrics" || head.path == "/admin/v1/health" ||
                                 head.path == "/admin/v1/stats"));
  return p;
}

void AdminApi::handle(HttpRequest req, Respond respond) {
  metrics_.add("sluice_http_requests_total", "listener=\"admin\"");
  if (req.method == "GET" && is_health_path(req.path) && req.peer.authenticated) {
    respond(health_response(req.path, readiness_));
    return;
  }
  const auto role = roles_.role_of(req.peer);
  const auto allowed = roles_for(req.method, req.path);
  if (!role || std::find(allowed.begin(), allowed.end(), *role) == allowed.end()) {
    // plan() refused it already; kept as a second line (without a second audit entry).
    respond(error_response(403, "auth.role", "this certificate may not make this request"));
    return;
  }
  const std::string actor = req.peer.sender();
  std::string_view path = req.path;
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.render();
    respond(std::move(r));
    return;
  }
  if (path == "/admin/v1/health") {
    auto st = store_.stats();
    json::object o;
    o["status"] = st.read_only ? "read-only" : "ok";
    if (st.read_only) o["reason"] = kReadOnlyReason;
    o["queuedMessages"] = st.queued_messages;
    o["queuedBytes"] = st.queued_bytes;
    respond(json_response(st.read_only ? 503 : 200, json::serialize(o)));
    return;
  }
  if (path == "/admin/v1/stats") {
    auto st = store_.stats();
    json::object o;
    o["queuedMessages"] = st.queued_messages;
    o["queuedBytes"] = st.queued_bytes;
    o["commits"] = st.commits;
    o["committedOperations"] = st.committed_ops;
    o["readOnly"] = st.read_only;
    json::array dests;
    for (const auto& d : st.destinations) {
      dests.push_back(json::object{{"destination", d.destination},
                                   {"pending", d.pending},
                                   {"leased", d.leased},
                                   {"due", d.due},
                                   {"bytes", d.bytes}});
    }
    o["destinations"] = std::move(dests);
    respond(json_response(200, json::serialize(o)));
    return;
  }
  if (path == "/admin/v1/dead-letters" && req.method == "GET") {
    auto limit = query_count(req.query, "limit", 100, 10'000);
    if (!limit) {
      respond(std::move(limit.error()));
      return;
    }
    auto dead = store_.dead_letters(query_param(req.query, "destination"), *limit);
    if (!dead) {
      respond(error_response(dead.error().is(Errc::kNotFound) ? 404 : 500, "dead.error",
                             dead.error().message));
      return;
    }
    std::string body = "[";
    for (std::size_t i = 0; i < dead->size(); ++i) {
      if (i > 0) body += ",";
      body += status_json((*dead)[i]);
    }
    body += "]";
    respond(json_response(200, body));
    return;
  }
  if (path.starts_with("/admin/v1/messages/")) {
    std::string_view rest = path.substr(std::string_view("/admin/v1/messages/").size());
    if (rest.ends_with("/redrive") && req.method == "POST") {
      std::string id(rest.substr(0, rest.size() - 8));
      std::string dest = query_param(req.query, "destination");
      auto r = store_.redrive(id, dest);
      if (audit_ != nullptr) {
        audit_->record_sync(actor, "dead.redrive", id + " -> " + dest,
                            r ? "ok" : r.error().message);
      }
      if (!r) {
        respond(error_response(r.error().is(Errc::kNotFound) ? 404 : 400, "redrive.error",
                               r.error().message));
        return;
      }
      respond(json_response(200, R"({"status":"redriven"})"));
      return;
    }
    if (req.method == "GET") {
      auto s = store_.status(rest);
      if (!s) {
        respond(error_response(s.error().is(Errc::kNotFound) ? 404 : 400, "message.not-found",
                               s.error().message));
        return;
      }
      respond(json_response(200, status_json(*s)));
      return;
    }
  }
  if (path == "/admin/v1/backup" && req.method == "POST") {
    boost::system::error_code ec;
    auto v = json::parse(req.body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::string* dir =
        o != nullptr && o->contains("dir") ? o->at("dir").if_string() : nullptr;
    if (dir == nullptr) {
      respond(error_response(400, "backup.bad-request",
                             "body must be {\"dir\": \"/path/to/empty/dir\"}"));
      return;
    }
    auto r = store_.backup(std::string(dir->c_str()));
    if (audit_ != nullptr) {
      audit_->record_sync(actor, "store.backup", std::string(dir->c_str()),
                          r ? "ok" : r.error().message);
    }
    if (!r) {
      respond(error_response(400, "backup.failed", r.error().message));
      return;
    }
    respond(json_response(200, R"({"status":"copied"})"));
    return;
  }
  if (path == "/admin/v1/audit/verify" && audit_ != nullptr) {
    auto report = audit_->verify();
    if (!report) {
      respond(error_response(500, "audit.error", report.error().message));
      return;
    }
    json::object o;
    o["entries"] = report->entries;
    o["intact"] = report->intact;
    o["head"] = report->head;
    if (!report->intact) {
      o["firstBadEntry"] = report->first_bad;
      o["problem"] = report->problem;
    }
    respond(json_response(report->intact ? 200 : 409, json::serialize(o)));
    return;
  }
  if (path == "/admin/v1/audit" && audit_ != nullptr) {
    auto n = query_count(req.query, "n", 20, 10'000);
    if (!n) {
      respond(std::move(n.error()));
      return;
    }
    auto entries = audit_->tail(*n);
    if (!entries) {
      respond(error_response(500, "audit.error", entries.error().message));
      return;
    }
    json::array arr;
    for (const auto& e : *entries) {
      arr.push_back(json::object{{"seq", e.seq},
                                 {"time", e.time},
                                 {"actor", e.actor},
                                 {"action", e.action},
                                 {"object", e.object},
                                 {"outcome", e.outcome},
                                 {"hash", e.hash}});
    }
    respond(json_response(200, json::serialize(arr)));
    return;
  }
  for (auto& route : routes_) {
    if (route(req, respond)) {
      return;
    }
  }
  respond(error_response(404, "http.not-found", "no such admin endpoint: " + std::string(path)));
}

}  // namespace sluice::api
