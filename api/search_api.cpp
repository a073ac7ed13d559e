#include "api/search_api.h"

#include <boost/json.hpp>

#include <ctime>
#include <future>
#include <memory>

#include "api/admin_api.h"
#include "api/json.h"
#include "ops/audit.h"
#include "queue/queue.h"

namespace sluice::api {

namespace json = boost::json;
using queue::MessageFilter;
using queue::MessageState;

namespace {

constexpr std::size_t kPageMax = 1'000;
constexpr std::size_t kBulkMax = 100'000;

// Milliseconds since the epoch, or an RFC 3339 time with its offset.
std::optional<std::int64_t> parse_time(const std::string& text) {
  if (!text.empty() && text.size() <= 15 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::stoll(text);
  }
  std::tm tm{};
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  std::int64_t ms = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits++ < 3) ms = ms * 10 + (*rest - '0');
    }
    for (; digits < 3; ++digits) ms *= 10;
  }
  std::int64_t offset_s = 0;
  if (*rest == 'Z') {
    ++rest;
  } else if ((*rest == '+' || *rest == '-') && std::strlen(rest) == 6 && rest[3] == ':') {
    int h = (rest[1] - '0') * 10 + (rest[2] - '0'), m = (rest[4] - '0') * 10 + (rest[5] - '0');
    offset_s = (*rest == '+' ? 1 : -1) * (h * 3600 + m * 60);
    rest += 6;
  } else {
    return std::nullopt;  // a time without its offset is ambiguous
  }
  if (*rest != '\0') return std::nullopt;
  return (static_cast<std::int64_t>(::timegm(&tm)) - offset_s) * 1000 + ms;
}

// The filter of a request's query; an error names the parameter.
std::expected<MessageFilter, HttpResponse> filter_of(std::string_view query) {
  MessageFilter f;
  f.destination = query_param(query, "destination");
  f.doc_type = query_param(query, "doc_type");
  f.sender = query_param(query, "sender");
  f.case_id = query_param(query, "case_id");
  if (std::string s = query_param(query, "state"); !s.empty()) {
    f.state = queue::parse_message_state(s);
    if (!f.state) {
      return std::unexpected(error_response(
          400, "query.state",
          "state \"" + s +
              "\" is not one of queued, delivering, delivered, dead, expired, partial, "
              "discarded"));
    }
  }
  for (auto [name, out] : {std::pair{"from", &f.from_ms}, std::pair{"to", &f.to_ms}}) {
    if (std::string t = query_param(query, name); !t.empty()) {
      auto ms = parse_time(t);
      if (!ms) {
        return std::unexpected(error_response(
            400, std::string("query.") + name,
            std::string(name) + " \"" + t +
                "\" is not a time: RFC 3339 with its offset (2026-12-03T08:00:00+08:00) or "
                "milliseconds since the epoch"));
      }
      *out = *ms;
    }
  }
  if (f.from_ms != 0 && f.to_ms != 0 && f.to_ms <= f.from_ms) {
    return std::unexpected(error_response(400, "query.to", "to must be later than from"));
  }
  return f;
}

std::string describe(const MessageFilter& f) {
  std::string out;
  auto add = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    if (!out.empty()) out += ' ';
    out += k;
    out += '=';
    out += v;
  };
  add("destination", f.destination);
  add("doc_type", f.doc_type);
  add("sender", f.sender);
  add("case_id", f.case_id);
  if (f.from_ms != 0) add("from", std::to_string(f.from_ms));
  if (f.to_ms != 0) add("to", std::to_string(f.to_ms));
  return out.empty() ? "every dead letter" : out;
}

HttpResponse store_error(const Error& e) {
  return error_response(e.is(Errc::kInvalidArgument) ? 400 : 503, "store.error", e.message);
}

bool dry_run_of(std::string_view query) {
  std::string v = query_param(query, "dry_run");
  return v == "1" || v == "true";
}

// Redrives or discards every dead delivery that `f` matches (to f.destination only, when set).
HttpResponse bulk(queue::Store& store, ops::AuditLog* audit, const std::string& actor,
                  std::string_view query, bool redrive) {
  auto f = filter_of(query);
  if (!f) return f.error();
  auto limit = query_count(query, "limit", 10'000, kBulkMax);
  if (!limit) return limit.error();
  const std::string reason = query_param(query, "reason");
  if (!redrive && reason.empty()) {
    return error_response(400, "query.reason", "a discard needs reason=... (it is audited)");
  }
  const bool dry = dry_run_of(query);
  f->state = MessageState::kDead;
  std::uint64_t matched = 0, done = 0;
  json::array failed;
  bool more = false;
  std::string cursor;
  std::vector<std::pair<std::string, std::string>> work;  // (message, destination)
  do {
    auto page = store.find(*f, cursor, 500);
    if (!page) return store_error(page.error());
    for (const auto& m : page->messages) {
      for (const auto& d : m.deliveries) {
        if (d.state != queue::DeliveryState::kDead) continue;
        if (!f->destination.empty() && d.destination != f->destination) continue;
        if (matched >= *limit) {
          more = true;
          break;
        }
        ++matched;
        work.emplace_back(m.message_id, d.destination);
      }
    }
    cursor = page->next;
  } while (!cursor.empty() && !more);
  // Acting while reading the index would meet a redriven delivery again once it dies again.
  // All are submitted at once, so that they share group commits, then awaited.
  if (!dry) {
    std::vector<std::future<Result<void>>> results;
    results.reserve(work.size());
    for (const auto& [id, dest] : work) {
      auto p = std::make_shared<std::promise<Result<void>>>();
      results.push_back(p->get_future());
      auto settled = [p](Result<void> r) { p->set_value(std::move(r)); };
      if (redrive) {
        store.redrive_async(id, dest, std::move(settled));
      } else {
        store.discard_async(id, dest, "discarded by " + actor + ": " + reason, std::move(settled));
      }
    }
    for (std::size_t i = 0; i < work.size(); ++i) {
      const auto& [id, dest] = work[i];
      Result<void> r = results[i].get();
      if (audit != nullptr) {
        audit->record(actor, redrive ? "dead.redrive" : "dead.discard", id + " -> " + dest,
                      r ? (redrive ? "ok" : "ok: " + reason) : r.error().message);
      }
      if (r) {
        ++done;
      } else if (failed.size() < 100) {
        failed.push_back(
            json::object{{"messageId", id}, {"destination", dest}, {"error", r.error().message}});
      }
    }
    if (audit != nullptr) {
      audit->record_sync(actor, redrive ? "dead.redrive-bulk" : "dead.discard-bulk", describe(*f),
                         std::to_string(done) + " of " + std::to_string(matched) +
                             (redrive ? " redriven" : " discarded: " + reason) +
                             (more ? "; more match (limit " + std::to_string(*limit) + ")" : ""));
    }
  }
  json::object o{{"dryRun", dry},
                 {"matched", matched},
                 {redrive ? "redriven" : "discarded", done},
                 {"more", more},
                 {"failed", std::move(failed)}};
  return json_response(200, json::serialize(o));
}

}  // namespace

void register_search_api(AdminApi& admin, queue::Store& store, ops::AuditLog* audit) {
  admin.add_route([&store, audit](HttpRequest& req, Respond& respond) {
    const std::string actor = req.peer.sender();
    if (req.path == "/admin/v1/messages" && req.method == "GET") {
      auto f = filter_of(req.query);
      if (!f) return respond(std::move(f.error())), true;
      auto limit = query_count(req.query, "limit", 100, kPageMax);
      if (!limit) return respond(std::move(limit.error())), true;
      auto page = store.find(*f, query_param(req.query, "cursor"), *limit);
      if (!page) return respond(store_error(page.error())), true;
      std::string body = "{\"messages\":[";
      for (std::size_t i = 0; i < page->messages.size(); ++i) {
        if (i > 0) body += ",";
        body += status_json(page->messages[i]);
      }
      body += "],\"next\":" + json::serialize(json::value(page->next)) +
              ",\"scanned\":" + std::to_string(page->scanned) + "}";
      respond(json_response(200, body));
      return true;
    }
    if (req.method == "POST" && req.path.starts_with("/admin/v1/messages/") &&
        req.path.ends_with("/discard")) {
      constexpr std::size_t kPrefix = std::string_view("/admin/v1/messages/").size();
      const std::string id = req.path.substr(kPrefix, req.path.size() - kPrefix - 8);
      const std::string dest = query_param(req.query, "destination");
      const std::string reason = query_param(req.query, "reason");
      if (dest.empty() || reason.empty()) {
        respond(error_response(400, "query.reason",
                               "a discard needs destination=... and reason=... (it is audited)"));
        return true;
      }
      auto r = store.discard(id, dest, "discarded by " + actor + ": " + reason);
      if (audit != nullptr) {
        audit->record_sync(actor, "dead.discard", id + " -> " + dest,
                           r ? "ok: " + reason : r.error().message);
      }
      if (!r) {
        respond(error_response(r.error().is(Errc::kNotFound) ? 404 : 400, "discard.error",
                               r.error().message));
      } else {
        respond(json_response(200, R"({"status":"discarded"})"));
      }
      return true;
    }
    if (req.method == "POST" && (req.path == "/admin/v1/dead-letters/redrive" ||
                                 req.path == "/admin/v1/dead-letters/discard")) {
      respond(bulk(store, audit, actor, req.query, req.path.ends_with("redrive")));
      return true;
    }
    return false;
  });
}

}  // namespace sluice::api
