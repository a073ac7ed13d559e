#include "gateway/run_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "pipeline/routes.h"
#include "xml/envelope.h"

namespace sluice::gateway {
namespace {

using pipeline::GateRule;

toml::array string_array(const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  return a;
}

void put_path(toml::table& t, const char* key, const std::filesystem::path& p) {
  if (!p.empty()) t.insert(key, p.string());
}

std::string_view kind_name(SinkKind k) {
  switch (k) {
    case SinkKind::kHttp:
      return "http";
    case SinkKind::kSpool:
      return "spool";
    case SinkKind::kFerry:
      return "ferry";
  }
  return "http";
}

toml::table table_of(const DestinationConfig& d) {
  toml::table t;
  t.insert("name", d.name);
  t.insert("kind", std::string(kind_name(d.kind)));
  if (!d.url.empty()) t.insert("url", d.url);
  put_path(t, "path", d.path);
  t.insert("concurrency", d.concurrency);
  t.insert("pipeline", d.pipeline);
  t.insert("timeout_ms", d.timeout_ms);
  t.insert("breaker_failures", d.breaker_failures);
  t.insert("breaker_min_ms", d.breaker_min_ms);
  t.insert("breaker_max_ms", d.breaker_max_ms);
  put_path(t, "ca", d.ca);
  put_path(t, "client_cert", d.client_cert);
  put_path(t, "client_key", d.client_key);
  return t;
}

toml::table table_of(const RouteConfig& r) {
  toml::table t;
  t.insert("doc_type", r.doc_type);
  t.insert("sender", r.sender);
  t.insert("receiver", r.receiver);
  t.insert("destinations", string_array(r.destinations));
  return t;
}

toml::table table_of(const SenderConfig& s) {
  toml::table t;
  t.insert("id", s.id);
  t.insert("doc_types", string_array(s.doc_types));
  t.insert("receivers", string_array(s.receivers));
  t.insert("feeds", string_array(s.feeds));
  return t;
}

toml::table table_of(const FeedConfig& f) {
  toml::table t;
  t.insert("name", f.name);
  put_path(t, "mapping", f.mapping);
  return t;
}

toml::table table_of(const SpoolInConfig& s) {
  toml::table t;
  t.insert("name", s.name);
  put_path(t, "path", s.path);
  t.insert("feed", s.feed);
  t.insert("sender", s.sender);
  if (!s.owner.empty()) t.insert("owner", s.owner);
  return t;
}

toml::table table_of(const GateRule& g) {
  toml::table t;
  t.insert("doc_types", string_array(g.doc_types));
  t.insert("max_kb", static_cast<std::int64_t>(g.max_bytes / 1024));
  t.insert("personal_data_fields", string_array(g.personal_data_fields));
  return t;
}

template <class T>
toml::array array_of(const std::vector<T>& items) {
  toml::array a;
  for (const auto& i : items) a.push_back(table_of(i));
  return a;
}

toml::table root_of(const RunConfig& r) {
  toml::table root;
  if (!r.destinations.empty()) root.insert("destination", array_of(r.destinations));
  if (!r.routes.empty()) root.insert("route", array_of(r.routes));
  if (!r.senders.empty()) root.insert("sender", array_of(r.senders));
  if (!r.feeds.empty()) root.insert("feed", array_of(r.feeds));
  if (!r.spool_in.empty()) root.insert("spool_in", array_of(r.spool_in));
  if (!r.gate_inbound.empty() || !r.gate_outbound.empty()) {
    toml::table gate;
    if (!r.gate_inbound.empty()) gate.insert("inbound", array_of(r.gate_inbound));
    if (!r.gate_outbound.empty()) gate.insert("outbound", array_of(r.gate_outbound));
    root.insert("gate", std::move(gate));
  }
  return root;
}

std::string format(const toml::table& root) {
  std::ostringstream os;
  os << toml::toml_formatter{root};
  return os.str();
}

std::string one_line(const toml::table& t) {
  toml::table copy = t;
  copy.is_inline(true);
  toml::table wrap;
  wrap.insert("x", std::move(copy));
  std::string s = format(wrap);
  s = s.substr(s.find('=') + 2);  // "x = {...}"
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string json_of(const toml::table& t) {
  std::ostringstream os;
  os << toml::json_formatter{t, toml::format_flags::none};
  return os.str();
}

// The array of tables of `kind` in `root`, created when `create`; null when there is none.
toml::array* array_in(toml::table& root, std::string_view kind, bool create) {
  toml::table* parent = &root;
  std::string_view key = kind;
  if (kind.starts_with("gate.")) {
    key = kind.substr(5);
    if (!root.contains("gate")) {
      if (!create) return nullptr;
      root.insert("gate", toml::table{});
    }
    parent = root["gate"].as_table();
  }
  if (!parent->contains(key)) {
    if (!create) return nullptr;
    parent->insert(key, toml::array{});
  }
  return (*parent)[key].as_array();
}

const char* name_key(std::string_view kind) {
  if (kind == "sender") return "id";
  if (kind == "destination" || kind == "feed" || kind == "spool_in") return "name";
  return nullptr;  // routes and gate rules: by place
}

// The place of the object named `key` in `arr`, or an error saying there is none.
Result<std::size_t> find_object(const toml::array& arr, std::string_view kind,
                                std::string_view key) {
  if (const char* field = name_key(kind)) {
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const toml::table* t = arr[i].as_table();
      if (t != nullptr && t->get(field) != nullptr && t->get(field)->value<std::string>() == key) {
        return i;
      }
    }
    return fail(Errc::kNotFound, "there is no " + std::string(kind) + " with " + field + " \"" +
                                     std::string(key) + "\"");
  }
  std::size_t place = 0;
  bool number = !key.empty() &&
                std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (number && key.size() < 10) place = std::stoul(std::string(key));
  if (place == 0 || place > arr.size()) {
    return fail(Errc::kNotFound, std::string(kind) + " \"" + std::string(key) +
                                     "\": name it by its place, 1 to " +
                                     std::to_string(arr.size()) + " (sluicectl config list " +
                                     std::string(kind) + ")");
  }
  return place - 1;
}

bool any_type_matches(std::string_view pattern) {
  for (auto t : xml::doc_types()) {
    if (pipeline::pattern_matches(pattern, t)) return true;
  }
  return false;
}

// The first rule of `rules` whose patterns match `doc_type`: "rule 2 (\"case.*\")", or "".
std::string rule_for(const std::vector<GateRule>& rules, std::string_view doc_type) {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    for (const auto& p : rules[i].doc_types) {
      if (pipeline::pattern_matches(p, doc_type)) {
        return "rule " + std::to_string(i + 1) + " (\"" + p + "\")";
      }
    }
  }
  return "";
}

}  // namespace

RunConfig run_config_of(const Config& c) {
  return {.destinations = c.destinations,
          .routes = c.routes,
          .senders = c.senders,
          .feeds = c.feeds,
          .spool_in = c.spool_in,
          .gate_inbound = c.gate.inbound,
          .gate_outbound = c.gate.outbound};
}

Config with_run_config(Config c, const RunConfig& r) {
  c.destinations = r.destinations;
  c.routes = r.routes;
  c.senders = r.senders;
  c.feeds = r.feeds;
  c.spool_in = r.spool_in;
  c.gate.inbound = r.gate_inbound;
  c.gate.outbound = r.gate_outbound;
  return c;
}

std::string to_toml(const RunConfig& r) { return format(root_of(r)); }

const std::vector<std::string_view>& run_config_kinds() {
  static const std::vector<std::string_view> kinds{
      "destination", "route", "sender", "feed", "spool_in", "gate.inbound", "gate.outbound"};
  return kinds;
}

std::vector<ConfigObject> objects(const RunConfig& r, std::string_view only) {
  toml::table root = root_of(r);
  std::vector<ConfigObject> out;
  for (auto kind : run_config_kinds()) {
    if (!only.empty() && only != kind) continue;
    const toml::array* arr = array_in(root, kind, false);
    if (arr == nullptr) continue;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::table& t = *(*arr)[i].as_table();
      ConfigObject o;
      o.kind = std::string(kind);
      const char* field = name_key(kind);
      o.key = field ? t.get(field)->value_or(std::string()) : std::to_string(i + 1);
      o.fields = one_line(t);
      o.json = json_of(t);
      out.push_back(std::move(o));
    }
  }
  return out;
}

std::vector<std::string> diff(const RunConfig& from, const RunConfig& to) {
  // Named objects pair up by name; routes and gate rules by their content (a route removed
  // from the middle is one line, not every later route renumbered).
  auto lines = [](const RunConfig& r) {
    std::multiset<std::string> out;
    for (const auto& o : objects(r)) {
      out.insert(o.kind + (name_key(o.kind) ? " " + o.key : "") + ": " + o.fields);
    }
    return out;
  };
  auto a = lines(from), b = lines(to);
  std::vector<std::pair<std::string, std::string>> changed;  // (line, sign)
  for (const auto& l : a) {
    if (a.count(l) > b.count(l)) changed.emplace_back(l, "-");
  }
  for (const auto& l : b) {
    if (b.count(l) > a.count(l)) changed.emplace_back(l, "+");
  }
  std::stable_sort(changed.begin(), changed.end(), [](const auto& x, const auto& y) {
    auto head = [](const std::string& l) { return l.substr(0, l.find(": ")); };
    return head(x.first) < head(y.first);
  });
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& [line, sign] : changed) {
    if (seen.insert(sign + line).second) out.push_back(sign + " " + line);
  }
  return out;
}

Result<RunConfig> edit(const RunConfig& current, Edit op, std::string_view kind,
                       std::string_view key, std::string_view fields,
                       const std::filesystem::path& base_dir) {
  const auto& kinds = run_config_kinds();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    return fail(Errc::kInvalidArgument,
                "\"" + std::string(kind) +
                    "\" is not a kind of run-time configuration: destination, route, sender, "
                    "feed, spool_in, gate.inbound or gate.outbound");
  }
  toml::table root = root_of(current);
  toml::table given;
  if (op != Edit::kRemove) {
    try {
      given = toml::parse(fields, std::string(kind));
    } catch (const toml::parse_error& e) {
      return fail(Errc::kInvalidArgument,
                  "the " + std::string(kind) + "'s fields are not TOML (line " +
                      std::to_string(e.source().begin.line) + "): " + std::string(e.description()));
    }
    if (given.empty()) {
      return fail(Errc::kInvalidArgument, "no fields given for the " + std::string(kind));
    }
  }
  toml::array* arr = array_in(root, kind, op == Edit::kAdd);
  std::string what = std::string(kind);
  if (op == Edit::kAdd) {
    arr->push_back(std::move(given));
    if (const char* field = name_key(kind)) {
      if (const toml::node* n = arr->back().as_table()->get(field)) {
        what += " " + n->value_or(std::string());
      }
    } else {
      what += " " + std::to_string(arr->size());
    }
  } else {
    if (arr == nullptr) {
      return fail(Errc::kNotFound, "there is no " + std::string(kind) + " \"" + std::string(key) +
                                       "\" (there are none)");
    }
    auto at = find_object(*arr, kind, key);
    if (!at) {
      return fail(at.error());
    }
    what += " " + std::string(key);
    if (op == Edit::kRemove) {
      arr->erase(arr->begin() + static_cast<std::ptrdiff_t>(*at));
    } else {
      toml::table& target = *(*arr)[*at].as_table();
      for (auto&& [k, v] : given) target.insert_or_assign(k, v);
    }
  }
  auto parsed = parse_run_config(format(root), what, base_dir);
  if (!parsed) {
    // The lines are those of the generated document, not of anything the admin wrote.
    static const std::regex kLine(R"( \(line [0-9]+\))");
    return fail(Error(parsed.error().code, std::regex_replace(parsed.error().message, kLine, "")));
  }
  return parsed;
}

namespace {

// The problems of `r` beyond its syntax, each naming its object by its content (not its place,
// which a change elsewhere shifts), so that those `from` had already can be told apart.
std::vector<std::string> semantic_problems(const RunConfig& r, const Config& base) {
  std::vector<std::string> errors;
  auto no_type = [&](const std::string& what, const std::string& pattern) {
    if (!any_type_matches(pattern)) {
      errors.push_back(what + ": DocType pattern \"" + pattern +
                       "\" matches no DocType of the exchange standard (case.accept, "
                       "public.complaint, ...)");
    }
  };
  // A half with a ferry or peer gateways also routes documents of the other side's senders.
  const bool own_senders_only = !base.ferry.enabled() && base.peer_gateways.empty();
  for (const auto& route : r.routes) {
    std::string what =
        "the route of " + route.doc_type + " from " + route.sender + " to " + route.receiver;
    no_type(what, route.doc_type);
    if (own_senders_only &&
        std::none_of(r.senders.begin(), r.senders.end(), [&](const SenderConfig& s) {
          return pipeline::pattern_matches(route.sender, s.id);
        })) {
      errors.push_back(what + ": sender pattern \"" + route.sender +
                       "\" matches no configured [[sender]], so the route could never be used");
    }
  }
  for (const auto& s : r.senders) {
    for (const auto& p : s.doc_types) no_type("sender " + s.id, p);
  }
  for (const auto& g : r.gate_inbound) {
    for (const auto& p : g.doc_types) no_type("a gate.inbound rule", p);
  }
  for (const auto& g : r.gate_outbound) {
    for (const auto& p : g.doc_types) no_type("a gate.outbound rule", p);
  }
  for (auto t : xml::doc_types()) {
    std::string in = rule_for(r.gate_inbound, t), out = rule_for(r.gate_outbound, t);
    if (in.empty() || out.empty()) continue;
    errors.push_back("the gate would let " + std::string(t) + " cross inbound (gate.inbound " +
                     in.substr(in.find('(')) + ") and outbound (gate.outbound " +
                     out.substr(out.find('(')) + ") at once; a DocType crosses one way only");
  }
  return errors;
}

}  // namespace

std::vector<std::string> check_change(const RunConfig& from, const RunConfig& to,
                                      const Config& base) {
  std::vector<std::string> errors = check_run_config_of(with_run_config(base, to));
  const auto before = semantic_problems(from, base);
  for (auto& p : semantic_problems(to, base)) {
    if (std::find(before.begin(), before.end(), p) == before.end()) errors.push_back(std::move(p));
  }
  return errors;
}

}  // namespace sluice::gateway
