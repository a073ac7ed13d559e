#include "gateway/config_api.h"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>

#include "api/admin_api.h"
#include "api/json.h"
#include "api/roles.h"
#include "ops/audit.h"

namespace sluice::gateway {

namespace json = boost::json;
using api::error_response;
using api::json_response;
using net::HttpRequest;
using net::HttpResponse;

struct RunConfigService::Change {
  std::string actor;
  std::optional<api::Role> role;
  std::string action;  // config.import, config.rollback, config.add, ...
  std::string what;    // "destination sink2", "version 3", "the imported file"
  RunConfig to;
  bool dry_run = false;
};

namespace {

constexpr std::size_t kMaxAuditDiff = 8 * 1024;

bool gate_differs(const RunConfig& a, const RunConfig& b) {
  RunConfig ga, gb;
  ga.gate_inbound = a.gate_inbound;
  ga.gate_outbound = a.gate_outbound;
  gb.gate_inbound = b.gate_inbound;
  gb.gate_outbound = b.gate_outbound;
  return to_toml(ga) != to_toml(gb);
}

bool rest_differs(RunConfig a, RunConfig b) {
  a.gate_inbound.clear();
  a.gate_outbound.clear();
  b.gate_inbound.clear();
  b.gate_outbound.clear();
  return to_toml(a) != to_toml(b);
}

// The lines of an error message ("refused:\n  - a\n  - b") as problems.
json::array problems_of(const std::string& message) {
  json::array out;
  std::size_t at = 0;
  while ((at = message.find("\n  - ", at)) != std::string::npos) {
    at += 5;
    out.emplace_back(message.substr(at, message.find('\n', at) - at));
  }
  if (out.empty()) out.emplace_back(message);
  return out;
}

HttpResponse refused(unsigned status, const std::string& code, const std::string& message) {
  json::object e{{"code", code}, {"message", message}, {"problems", problems_of(message)}};
  return json_response(status, json::serialize(json::object{{"error", std::move(e)}}));
}

unsigned status_of(const Error& e) {
  if (e.is(Errc::kNotFound)) return 404;
  if (e.is(Errc::kAlreadyExists)) return 409;
  if (e.is(Errc::kInvalidArgument)) return 422;
  return 503;
}

json::array diff_json(const std::vector<std::string>& lines) {
  json::array a;
  for (const auto& l : lines) a.emplace_back(l);
  return a;
}

json::object version_json(const ConfigVersion& v) {
  json::object o{{"version", v.version},
                 {"time", v.time},
                 {"actor", v.actor},
                 {"action", v.action},
                 {"note", v.note}};
  if (!v.toml.empty()) o["toml"] = v.toml;
  return o;
}

std::optional<std::uint64_t> number(const std::string& s) {
  if (s.empty() || s.size() > 18 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoull(s);
}

bool dry_run_of(const HttpRequest& req) {
  std::string v = api::query_param(req.query, "dry_run");
  return v == "1" || v == "true";
}

}  // namespace

RunConfigService::RunConfigService(const Config& base, ConfigVersions& versions,
                                   ops::AuditLog& audit, Prepare prepare)
    : base_(base), versions_(versions), audit_(audit), prepare_(std::move(prepare)) {
  current_.store(std::make_shared<const RunConfig>(run_config_of(base_)));
}

std::filesystem::path RunConfigService::base_dir() const {
  std::error_code ec;
  if (base_.source.empty() || base_.source.string().starts_with("(")) {
    return std::filesystem::current_path(ec);
  }
  return std::filesystem::absolute(base_.source, ec).parent_path();
}

std::shared_ptr<const RunConfig> RunConfigService::current() const { return current_.load(); }

Result<Config> RunConfigService::open() {
  std::lock_guard lock(mutex_);
  auto latest = versions_.latest();
  if (!latest) return fail(latest.error());
  const RunConfig from_file = run_config_of(base_);
  if (!*latest) {
    for (const auto& p : check_change(from_file, from_file, base_)) {
      spdlog::warn("run-time configuration of {}: {}", base_.source.string(), p);
    }
    const std::string source = base_.source.string();
    auto v = versions_.commit(
        0, to_toml(from_file), "system", "config.seed", "from " + source, audit_,
        "version 1 from " + source + ": " + std::to_string(from_file.destinations.size()) +
            " destinations, " + std::to_string(from_file.routes.size()) + " routes, " +
            std::to_string(from_file.senders.size()) + " senders, " +
            std::to_string(from_file.feeds.size()) + " feeds, " +
            std::to_string(from_file.spool_in.size()) + " spool directories, " +
            std::to_string(from_file.gate_inbound.size() + from_file.gate_outbound.size()) +
            " gate rules");
    if (!v) return fail(v.error());
    version_ = v->version;
    spdlog::info("run-time configuration version 1 seeded from {}", source);
    return base_;
  }
  const ConfigVersion& v = **latest;
  auto parsed =
      parse_run_config(v.toml, "configuration version " + std::to_string(v.version), base_dir());
  if (!parsed) {
    return fail(
        Errc::kInvalidArgument,
        "the store's newest run-time configuration cannot be used: " + parsed.error().message);
  }
  version_ = v.version;
  current_.store(std::make_shared<const RunConfig>(*parsed));
  if (to_toml(from_file) != v.toml) {
    spdlog::warn(
        "the [[destination]], [[route]], [[sender]], [[feed]], [[spool_in]] and [gate] sections "
        "of {} differ from run-time configuration version {} in the store ({} by {}), which is "
        "in use; `sluicectl config import {}` applies the file's",
        base_.source.string(), v.version, v.time, v.actor, base_.source.string());
  } else {
    spdlog::info("run-time configuration version {} ({} by {})", v.version, v.time, v.actor);
  }
  return with_run_config(base_, *parsed);
}

Result<std::string> RunConfigService::change(const Change& c) {
  std::lock_guard lock(mutex_);
  auto from = current_.load();
  auto problems = check_change(*from, c.to, base_);
  // The ferry destination belongs to the link, which is set up at start.
  auto ferry_names = [](const RunConfig& r) {
    std::vector<std::string> out;
    for (const auto& d : r.destinations) {
      if (d.kind == SinkKind::kFerry) out.push_back(d.name);
    }
    return out;
  };
  if (ferry_names(*from) != ferry_names(c.to)) {
    problems.push_back(
        "the destination of kind \"ferry\" is the link's and is set at start: add, rename or "
        "remove it in sluiced's file");
  }
  if (!problems.empty()) {
    std::string msg = c.what + " refused:";
    for (const auto& p : problems) msg += "\n  - " + p;
    return fail(Errc::kInvalidArgument, msg);
  }
  // Separated roles: the gate's rules are the security admin's, the rest the system admin's.
  if (c.role != api::Role::kSecurity && gate_differs(*from, c.to)) {
    return fail(Errc::kUnauthenticated,
                c.what + " changes the gate's rules, which only the security admin may change");
  }
  if (c.role != api::Role::kSystem && rest_differs(*from, c.to)) {
    return fail(Errc::kUnauthenticated,
                c.what +
                    " changes destinations, routes, senders, feeds or spool directories, which "
                    "only the system admin may change");
  }
  auto lines = diff(*from, c.to);
  json::object answer{{"dryRun", c.dry_run}, {"diff", diff_json(lines)}};
  if (lines.empty()) {
    answer["version"] = version_;
    answer["changed"] = false;
    return json::serialize(answer);
  }
  auto put_in_use = prepare_(*from, c.to);
  if (!put_in_use) {
    return fail(Errc::kInvalidArgument, c.what + " refused:\n  - " + put_in_use.error().message);
  }
  if (c.dry_run) {
    answer["version"] = version_;
    answer["changed"] = true;
    return json::serialize(answer);
  }
  std::string outcome =
      "version " + std::to_string(version_ + 1) + " (was " + std::to_string(version_) + "):";
  for (const auto& l : lines) {
    if (outcome.size() + l.size() > kMaxAuditDiff) {
      outcome += " ... (the whole versions: sluicectl config diff)";
      break;
    }
    outcome += " " + l + ";";
  }
  auto v = versions_.commit(version_, to_toml(c.to), c.actor, c.action, c.what, audit_, outcome);
  if (!v) return fail(v.error());
  // On disk, with its audit entry: now it takes effect.
  (*put_in_use)();
  current_.store(std::make_shared<const RunConfig>(c.to));
  const std::uint64_t previous = version_;
  version_ = v->version;
  spdlog::info("run-time configuration version {} in use ({} by {}, was {}): {} change(s)",
               version_, c.action, c.actor, previous, lines.size());
  answer["version"] = version_;
  answer["previous"] = previous;
  answer["changed"] = true;
  return json::serialize(answer);
}

void RunConfigService::register_routes(api::AdminApi& admin) {
  admin.add_route([this, &admin](HttpRequest& req, net::Respond& respond) {
    constexpr std::string_view kPrefix = "/admin/v1/config";
    std::string_view path = req.path;
    if (path != kPrefix && !path.starts_with("/admin/v1/config/")) return false;
    std::string_view rest = path.substr(kPrefix.size());
    if (!rest.empty()) rest.remove_prefix(1);
    auto answer = [&](Result<std::string> r) {
      if (r) {
        respond(json_response(200, *r));
      } else if (r.error().is(Errc::kUnauthenticated)) {
        respond(refused(403, "auth.role", r.error().message));
      } else {
        unsigned status = status_of(r.error());
        respond(
            refused(status, status == 422 ? "config.invalid" : "config.failed", r.error().message));
      }
    };
    auto change = [&](std::string action, std::string what, Result<RunConfig> to) {
      if (!to) return answer(fail(to.error()));
      Change c{.actor = req.peer.sender(),
               .role = admin.roles().role_of(req.peer),
               .action = std::move(action),
               .what = std::move(what),
               .to = std::move(*to),
               .dry_run = dry_run_of(req)};
      answer(this->change(c));
    };
    auto version_of = [&](const std::string& name,
                          std::uint64_t fallback) -> Result<ConfigVersion> {
      std::string text = api::query_param(req.query, name);
      auto n = text.empty() ? std::optional<std::uint64_t>(fallback) : number(text);
      if (!n) return fail(Errc::kInvalidArgument, name + " must be a version number");
      auto v = versions_.get(*n);
      if (!v) return fail(v.error());
      if (!*v) {
        return fail(Errc::kNotFound, "there is no configuration version " + std::to_string(*n));
      }
      return **v;
    };
    std::uint64_t newest = 0;
    {
      std::lock_guard lock(mutex_);
      newest = version_;
    }
    const std::string& m = req.method;
    if (rest.empty() && m == "GET") {
      auto v = version_of("version", newest);
      if (!v) return answer(fail(v.error())), true;
      answer(json::serialize(version_json(*v)));
      return true;
    }
    if (rest == "history" && m == "GET") {
      auto limit = api::query_count(req.query, "limit", 20, 1000);
      if (!limit) return respond(std::move(limit.error())), true;
      auto h = versions_.history(*limit);
      if (!h) return answer(fail(h.error())), true;
      json::array a;
      for (const auto& v : *h) a.push_back(version_json(v));
      answer(json::serialize(json::object{{"version", newest}, {"versions", std::move(a)}}));
      return true;
    }
    if (rest == "diff" && m == "GET") {
      auto to = version_of("to", newest);
      if (!to) return answer(fail(to.error())), true;
      auto from = version_of("from", to->version > 1 ? to->version - 1 : 1);
      if (!from) return answer(fail(from.error())), true;
      auto a = parse_run_config(from->toml, "version " + std::to_string(from->version), base_dir());
      auto b = parse_run_config(to->toml, "version " + std::to_string(to->version), base_dir());
      if (!a) return answer(fail(a.error())), true;
      if (!b) return answer(fail(b.error())), true;
      answer(json::serialize(json::object{
          {"from", from->version}, {"to", to->version}, {"diff", diff_json(diff(*a, *b))}}));
      return true;
    }
    if (rest == "import" && m == "POST") {
      change("config.import", "the imported configuration",
             parse_run_config(req.body, "the imported configuration", base_dir()));
      return true;
    }
    if (rest == "rollback" && m == "POST") {
      if (api::query_param(req.query, "version").empty()) {
        answer(
            fail(Errc::kInvalidArgument, "rollback needs ?version=N (sluicectl config history)"));
        return true;
      }
      auto v = version_of("version", 0);
      if (!v) return answer(fail(v.error())), true;
      std::string what = "the rollback to version " + std::to_string(v->version);
      change("config.rollback", what,
             parse_run_config(v->toml, "version " + std::to_string(v->version), base_dir()));
      return true;
    }
    // /{kind} and /{kind}/{key}; a key may hold '/', percent-encoded or not (sender ids).
    std::string kind(rest.substr(0, rest.find('/')));
    std::string key;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
      key = api::query_param("k=" + std::string(rest.substr(slash + 1)), "k");
    }
    const auto& kinds = run_config_kinds();
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      answer(fail(Errc::kNotFound,
                  "no such configuration path; kinds are destination, route, sender, feed, "
                  "spool_in, gate.inbound and gate.outbound"));
      return true;
    }
    auto current = current_.load();
    if (m == "GET") {
      json::array list;
      for (const auto& o : objects(*current, kind)) {
        if (!key.empty() && o.key != key) continue;
        list.push_back(json::object{
            {"kind", o.kind}, {"key", o.key}, {"line", o.fields}, {"fields", json::parse(o.json)}});
      }
      if (!key.empty() && list.empty()) {
        answer(fail(Errc::kNotFound, "there is no " + kind + " \"" + key + "\""));
        return true;
      }
      answer(json::serialize(json::object{{"version", newest}, {"objects", std::move(list)}}));
      return true;
    }
    Edit op;
    if (m == "POST" && key.empty()) {
      op = Edit::kAdd;
    } else if (m == "PUT" && !key.empty()) {
      op = Edit::kUpdate;
    } else if (m == "DELETE" && !key.empty()) {
      op = Edit::kRemove;
    } else {
      answer(fail(Errc::kNotFound, "POST /admin/v1/config/" + kind +
                                       " adds; PUT and DELETE /admin/v1/config/" + kind +
                                       "/KEY update and remove"));
      return true;
    }
    static constexpr const char* kActions[] = {"config.add", "config.update", "config.remove"};
    std::string what = kind + (key.empty() ? "" : " " + key);
    change(kActions[static_cast<int>(op)], what,
           edit(*current, op, kind, key, req.body, base_dir()));
    return true;
  });
}

}  // namespace sluice::gateway
