#include "gateway/config.h"

#include <toml++/toml.h>
#include <algorithm>

#include <map>
#include <set>
#include <sstream>

#include "common/fs.h"
#include "gateway/default_toml.h"
#include "gateway/run_config.h"

namespace sluice::gateway {
namespace {

std::string where(const toml::node& node) {
  const auto& src = node.source();
  return "line " + std::to_string(src.begin.line);
}

// Reads one TOML table, remembering which keys were used so the rest can be reported as
// unknown. Problems accumulate in `errors`.
class Section {
 public:
  Section(const toml::table& table, std::string name, std::vector<std::string>& errors,
          const std::filesystem::path& base, std::map<std::string, int>& lines)
      : table_(table),
        name_(std::move(name)),
        scope_(name_),
        errors_(errors),
        base_(base),
        lines_(lines) {
    remember(scope_, table_);
  }

  // One of several [[name]] tables: its lines are remembered as "name[i]" ("destination[0]").
  void scope(std::string s) {
    scope_ = std::move(s);
    remember(scope_, table_);
  }

  ~Section() {
    for (const auto& [key, node] : table_) {
      if (!used_.contains(std::string(key.str()))) {
        errors_.push_back("unknown key " + qualified(std::string(key.str())) + " (" + where(node) +
                          ")");
      }
    }
  }

  const toml::node* node(const char* key) {
    used_.insert(key);
    return table_.get(key);
  }

  void str(const char* key, std::string& out) {
    if (const toml::node* n = node(key)) {
      if (auto v = n->value<std::string>()) {
        out = *v;
      } else {
        bad(key, *n, "a string");
      }
    }
  }

  // A string that must be one of `allowed`: anything else is an error naming the choices.
  void choice(const char* key, std::string& out, std::initializer_list<std::string_view> allowed) {
    const toml::node* n = table_.get(key);
    str(key, out);
    if (n == nullptr || !n->is_string()) return;
    if (std::find(allowed.begin(), allowed.end(), out) != allowed.end()) return;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    errors_.push_back(qualified(key) + " = \"" + out + "\" is not one of " + list + " (" +
                      where(*n) + ")");
  }

  void path(const char* key, std::filesystem::path& out) {
    std::string s;
    bool had = table_.contains(key);
    str(key, s);
    if (had && !s.empty()) {
      out = resolve(s);
      remember(scoped(key), *table_.get(key));
    } else if (had) {
      out.clear();
    }
  }

  void paths(const char* key, std::vector<std::filesystem::path>& out) {
    if (const toml::node* n = node(key)) {
      const toml::array* arr = n->as_array();
      if (arr == nullptr) {
        bad(key, *n, "an array of strings");
        return;
      }
      out.clear();
      for (const auto& item : *arr) {
        if (auto v = item.value<std::string>()) {
          out.push_back(resolve(*v));
          remember(scoped(key), *n);
        } else {
          bad(key, item, "an array of strings");
        }
      }
    }
  }

  void strings(const char* key, std::vector<std::string>& out) {
    if (const toml::node* n = node(key)) {
      const toml::array* arr = n->as_array();
      if (arr == nullptr) {
        bad(key, *n, "an array of strings");
        return;
      }
      out.clear();
      for (const auto& item : *arr) {
        if (auto v = item.value<std::string>()) {
          out.push_back(*v);
        } else {
          bad(key, item, "an array of strings");
        }
      }
    }
  }

  template <class T>
  void integer(const char* key, T& out, std::int64_t min, std::int64_t max,
               std::int64_t scale = 1) {
    if (const toml::node* n = node(key)) {
      auto v = n->value_exact<std::int64_t>();
      if (!v) {
        bad(key, *n, "an integer");
        return;
      }
      if (*v < min || *v > max) {
        errors_.push_back(qualified(key) + " = " + std::to_string(*v) + " is out of range [" +
                          std::to_string(min) + ", " + std::to_string(max) + "] (" + where(*n) +
                          ")");
        return;
      }
      out = static_cast<T>(*v * scale);
    }
  }

  void real(const char* key, double& out, double min, double max) {
    if (const toml::node* n = node(key)) {
      auto v = n->value<double>();
      if (!v) {
        bad(key, *n, "a number");
        return;
      }
      if (*v < min || *v > max) {
        errors_.push_back(qualified(key) + " is out of range (" + where(*n) + ")");
        return;
      }
      out = *v;
    }
  }

  void boolean(const char* key, bool& out) {
    if (const toml::node* n = node(key)) {
      if (auto v = n->value_exact<bool>()) {
        out = *v;
      } else {
        bad(key, *n, "true or false");
      }
    }
  }

  std::string qualified(const std::string& key) const {
    return name_.empty() ? key : name_ + "." + key;
  }
  std::vector<std::string>& errors() { return errors_; }

 private:
  // The line each section began and each file was named on, for --check-config
  // (Config::file_lines).
  void remember(const std::string& what, const toml::node& n) {
    if (!what.empty() && n.source().begin.line != 0) {
      lines_[what] = static_cast<int>(n.source().begin.line);
    }
  }
  std::string scoped(const char* key) const { return scope_.empty() ? key : scope_ + "." + key; }
  std::filesystem::path resolve(const std::string& s) const {
    std::filesystem::path p(s);
    return p.is_absolute() ? p : base_ / p;
  }
  void bad(const char* key, const toml::node& n, const char* expected) {
    errors_.push_back(qualified(key) + " must be " + expected + " (" + where(n) + ")");
  }

  const toml::table& table_;
  std::string name_;
  std::string scope_;
  std::vector<std::string>& errors_;
  const std::filesystem::path& base_;
  std::map<std::string, int>& lines_;
  std::set<std::string> used_;
};

const toml::table* subtable(Section& parent, const char* key, std::vector<std::string>& errors) {
  const toml::node* n = parent.node(key);
  if (n == nullptr) {
    return nullptr;
  }
  if (!n->is_table()) {
    errors.push_back(parent.qualified(key) + " must be a table (" + where(*n) + ")");
    return nullptr;
  }
  return n->as_table();
}

void read_listener(const toml::table& t, const std::string& name, ListenerConfig& l,
                   std::vector<std::string>& errors, const std::filesystem::path& base,
                   std::map<std::string, int>& lines) {
  Section s(t, name, errors, base, lines);
  s.boolean("enabled", l.enabled);
  s.str("address", l.address);
  s.integer("port", l.port, 0, 65535);
  s.path("cert", l.tls.cert);
  s.path("key", l.tls.key);
  s.path("client_ca", l.tls.client_ca);
  s.paths("crls", l.tls.crls);
  s.boolean("require_client_cert", l.tls.require_client_cert);
  s.integer("max_body_bytes", l.max_body_bytes, 1024, 1LL << 30);
  s.integer("max_batch_bytes", l.max_batch_bytes, 1024, 4LL << 30);
  s.integer("max_header_bytes", l.max_header_bytes, 1024, 1 << 20);
  s.integer("max_connections", l.max_connections, 1, 1'000'000);
  s.integer("max_anonymous_connections", l.max_anonymous_connections, 1, 1'000'000);
  s.integer("max_anonymous_per_address", l.max_anonymous_per_address, 1, 1'000'000);
  s.integer("request_timeout_ms", l.request_timeout_ms, 100, 3'600'000);
  s.integer("idle_timeout_ms", l.idle_timeout_ms, 100, 3'600'000);
  s.integer("handshake_timeout_ms", l.handshake_timeout_ms, 100, 600'000);
  s.integer("handler_timeout_ms", l.handler_timeout_ms, 100, 3'600'000);
  s.integer("batch_timeout_ms", l.batch_timeout_ms, 100, 24 * 3'600'000);
}

// [[key]] under `parent` ("name" says it in messages: "gate.inbound").
template <class Read>
void tables_in(Section& parent, const char* key, const std::string& name,
               std::vector<std::string>& errors, const std::filesystem::path& base_dir,
               std::map<std::string, int>& lines, Read&& read) {
  const toml::node* n = parent.node(key);
  if (n == nullptr) return;
  const toml::array* arr = n->as_array();
  if (arr == nullptr) {
    errors.push_back(name + " must be an array of tables ([[" + name + "]])");
    return;
  }
  std::size_t index = 0;
  for (const auto& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      errors.push_back("each [[" + name + "]] must be a table (" + where(item) + ")");
      continue;
    }
    Section sec(*t, name, errors, base_dir, lines);
    sec.scope(name + "[" + std::to_string(index++) + "]");
    read(sec);
  }
}

// The run-time configuration's sections ([[destination]], [[route]], [[sender]], [[feed]],
// [[spool_in]], [gate]): read from sluiced's file and from every version in the store.
void read_run_config(Section& top, Config& c, std::vector<std::string>& errors,
                     const std::filesystem::path& base_dir) {
  auto tables = [&](const char* key, auto&& read) {
    tables_in(top, key, key, errors, base_dir, c.file_lines, read);
  };
  if (const toml::table* t = subtable(top, "gate", errors)) {
    Section g(*t, "gate", errors, base_dir, c.file_lines);
    auto rules = [&](const char* key, std::vector<pipeline::GateRule>& out) {
      tables_in(g, key, std::string("gate.") + key, errors, base_dir, c.file_lines,
                [&](Section& s) {
                  pipeline::GateRule r;
                  s.strings("doc_types", r.doc_types);
                  s.integer("max_kb", r.max_bytes, 1, 1 << 20, 1024);
                  s.strings("personal_data_fields", r.personal_data_fields);
                  if (r.doc_types.empty()) {
                    errors.push_back(std::string("each [[gate.") + key + "]] needs doc_types");
                  }
                  out.push_back(std::move(r));
                });
    };
    rules("inbound", c.gate.inbound);
    rules("outbound", c.gate.outbound);
  }
  tables("destination", [&](Section& s) {
    DestinationConfig d;
    s.str("name", d.name);
    std::string kind = "http";
    s.str("kind", kind);
    if (kind == "spool") {
      d.kind = SinkKind::kSpool;
    } else if (kind == "ferry") {
      d.kind = SinkKind::kFerry;
    } else if (kind != "http") {
      errors.push_back("destination \"" + d.name + "\": kind = \"" + kind +
                       "\" must be \"http\" or \"spool\"");
    }
    s.str("url", d.url);
    s.path("path", d.path);
    s.integer("concurrency", d.concurrency, 1, 256);
    s.integer("pipeline", d.pipeline, 1, 64);
    s.integer("timeout_ms", d.timeout_ms, 100, 600'000);
    s.integer("breaker_failures", d.breaker_failures, 1, 1'000);
    s.integer("breaker_min_ms", d.breaker_min_ms, 10, 3'600'000);
    s.integer("breaker_max_ms", d.breaker_max_ms, 10, 24 * 3'600'000);
    if (d.breaker_max_ms < d.breaker_min_ms) {
      errors.push_back("destination " + d.name + ": breaker_max_ms must be >= breaker_min_ms");
    }
    s.path("ca", d.ca);
    s.path("client_cert", d.client_cert);
    s.path("client_key", d.client_key);
    c.destinations.push_back(std::move(d));
  });
  tables("route", [&](Section& s) {
    RouteConfig r;
    s.str("doc_type", r.doc_type);
    s.str("sender", r.sender);
    s.str("receiver", r.receiver);
    s.strings("destinations", r.destinations);
    c.routes.push_back(std::move(r));
  });
  tables("feed", [&](Section& s) {
    FeedConfig f;
    s.str("name", f.name);
    s.path("mapping", f.mapping);
    c.feeds.push_back(std::move(f));
  });
  tables("sender", [&](Section& s) {
    SenderConfig sd;
    s.str("id", sd.id);
    s.strings("doc_types", sd.doc_types);
    s.strings("receivers", sd.receivers);
    s.strings("feeds", sd.feeds);
    c.senders.push_back(std::move(sd));
  });
  tables("spool_in", [&](Section& s) {
    SpoolInConfig sp;
    s.str("name", sp.name);
    s.path("path", sp.path);
    s.str("feed", sp.feed);
    s.str("sender", sp.sender);
    s.str("owner", sp.owner);
    c.spool_in.push_back(std::move(sp));
  });
}

// The two halves and their link: the outer listens, the inner connects and never listens
// toward the outer network; a ferry destination needs the link.
void check_ferry(Config& c, std::vector<std::string>& errors) {
  const FerryConfig& f = c.ferry;
  int ferry_destinations = 0;
  for (const auto& d : c.destinations) {
    if (d.kind == SinkKind::kFerry) ferry_destinations++;
  }
  if (ferry_destinations > 1) {
    errors.push_back("only one [[destination]] may be of kind \"ferry\" (there is one link)");
  }
  if (!f.enabled()) {
    if (ferry_destinations > 0) {
      errors.push_back(
          "a destination of kind \"ferry\" needs [ferry] listen (outer) or "
          "connect (inner)");
    }
    return;
  }
  if (c.role == "inner" && !f.listen.empty()) {
    errors.push_back(
        "ferry.listen: the inner half never listens toward the outer network; it "
        "connects (ferry.connect)");
  }
  if (c.role == "outer" && !f.connect.empty()) {
    errors.push_back(
        "ferry.connect: the outer half listens (ferry.listen); the inner half "
        "opens the link");
  }
  const std::string& ep = c.role == "outer" ? f.listen : f.connect;
  if (!ep.empty() && !ep.starts_with("tcp://")) {
    errors.push_back(std::string("ferry.") + (c.role == "outer" ? "listen" : "connect") +
                     " must be tcp://HOST:PORT");
  }
  if (f.secret_key.empty()) errors.push_back("ferry.secret_key is required");
  if (c.role == "inner" && f.server_key.empty()) {
    errors.push_back("ferry.server_key is required on the inner half (the outer's public key)");
  }
  if (c.role == "outer" && f.allowed_keys.empty()) {
    errors.push_back("ferry.allowed_keys is required on the outer half (the inner's public key)");
  }
  if (f.peer.find('/') == std::string::npos) {
    errors.push_back(
        "ferry.peer must name the other half as node/system (its signing "
        "certificate's OU/CN, e.g. \"gateway/sluice-inner\")");
  } else if (std::find(c.peer_gateways.begin(), c.peer_gateways.end(), f.peer) ==
             c.peer_gateways.end()) {
    c.peer_gateways.push_back(f.peer);
  }
  if (f.stall_ms <= f.heartbeat_ms) {
    errors.push_back("ferry.stall_ms must be greater than ferry.heartbeat_ms");
  }
  if (f.reconnect_max_ms < f.reconnect_min_ms) {
    errors.push_back("ferry.reconnect_max_ms must be >= ferry.reconnect_min_ms");
  }
}

// What every version of the run-time configuration must hold together: unique names, routes
// to known destinations, feeds that senders and spool directories name.
void check_run_config(const Config& c, std::vector<std::string>& errors) {
  std::set<std::string> names;
  for (const auto& d : c.destinations) {
    if (d.name.empty()) {
      errors.push_back("a [[destination]] has no name");
    } else if (!names.insert(d.name).second) {
      errors.push_back("destination \"" + d.name + "\" is defined twice");
    }
    if (d.kind == SinkKind::kHttp) {
      if (!d.url.starts_with("http://") && !d.url.starts_with("https://")) {
        errors.push_back("destination \"" + d.name + "\": url must start with http:// or https://");
      }
    } else if (d.kind == SinkKind::kSpool && d.path.empty()) {
      errors.push_back("destination \"" + d.name + "\": a spool destination needs a path");
    }
  }
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const auto& r = c.routes[i];
    if (r.destinations.empty()) {
      errors.push_back("route " + std::to_string(i + 1) + " names no destinations");
    }
    for (const auto& d : r.destinations) {
      if (!names.contains(d)) {
        errors.push_back("route " + std::to_string(i + 1) + " names unknown destination \"" + d +
                         "\"");
      }
    }
  }
  std::set<std::string> feeds;
  for (const auto& f : c.feeds) {
    if (f.name.empty() || f.mapping.empty()) {
      errors.push_back("each [[feed]] needs name and mapping");
    } else if (!feeds.insert(f.name).second) {
      errors.push_back("feed \"" + f.name + "\" is defined twice");
    }
  }
  std::set<std::string> senders;
  for (const auto& sd : c.senders) {
    if (sd.id.find('/') == std::string::npos) {
      errors.push_back("sender \"" + sd.id + "\": id must be node/system");
    } else if (!senders.insert(sd.id).second) {
      errors.push_back("sender \"" + sd.id + "\" is defined twice");
    }
    for (const auto& f : sd.feeds) {
      if (!feeds.contains(f)) {
        errors.push_back("sender \"" + sd.id + "\" names unknown feed \"" + f + "\"");
      }
    }
  }
  for (const auto& sp : c.spool_in) {
    if (sp.name.empty() || sp.path.empty() || sp.feed.empty() || sp.sender.empty()) {
      errors.push_back("each [[spool_in]] needs name, path, feed and sender");
    } else if (!feeds.contains(sp.feed)) {
      errors.push_back("spool_in \"" + sp.name + "\" names unknown feed \"" + sp.feed + "\"");
    } else if (sp.sender.find('/') == std::string::npos) {
      errors.push_back("spool_in \"" + sp.name + "\": sender must be node/system");
    }
  }
}

Result<Config> finish(Config c, std::vector<std::string> errors) {
  // The largest body a sender's request may bring (a batch or a document) must fit the
  // process-wide budget; a larger admin upload is refused with 413 naming the budget.
  if (std::size_t largest = std::max(c.data.max_body_bytes, c.data.max_batch_bytes);
      largest > c.max_body_bytes_in_flight) {
    errors.push_back("gateway.max_body_bytes_in_flight (" +
                     std::to_string(c.max_body_bytes_in_flight) +
                     ") must hold at least the largest request the data listener accepts (" +
                     std::to_string(largest) + " bytes)");
  }
  if (c.role != "outer" && c.role != "inner") {
    errors.push_back("gateway.role must be \"outer\" or \"inner\"");
  }
  check_ferry(c, errors);
  // History must leave the map room for the queue. (The store also purges history when the
  // map fills, and logs at start-up what the bounds hold.)
  if (c.store.retention_max_bytes >= c.store.map_size_bytes) {
    errors.push_back("store.retention_max_mb (" +
                     std::to_string(c.store.retention_max_bytes >> 20) +
                     ") must be less than store.map_size_mb (" +
                     std::to_string(c.store.map_size_bytes >> 20) + ")");
  }
  check_run_config(c, errors);
  if (c.signing.enabled && (c.signing.cert.empty() || c.signing.key.empty() ||
                            c.signing.trust.empty() || c.signing.crls.empty())) {
    errors.push_back("[signing] needs cert, key, trust and crls (or enabled = false)");
  }
  if (c.data.enabled && (c.data.tls.cert.empty() || c.data.tls.key.empty())) {
    errors.push_back("listen.data needs cert and key (the data listener is HTTPS only)");
  }
  if (c.admin.enabled && (c.admin.tls.cert.empty() || c.admin.tls.key.empty())) {
    errors.push_back("listen.admin needs cert and key (the admin listener is HTTPS only)");
  }
  if (c.store.path.empty()) {
    c.store.path = c.state_dir / c.role / "store";
  }
  if (!errors.empty()) {
    std::string msg = "invalid configuration " + c.source.string() + ":";
    for (const auto& e : errors) {
      msg += "\n  - " + e;
    }
    return fail(Errc::kInvalidArgument, msg);
  }
  return c;
}

}  // namespace

int Config::line_of(const std::string& section_or_file) const {
  auto it = file_lines.find(section_or_file);
  return it == file_lines.end() ? 0 : it->second;
}

Result<Config> parse_config(std::string_view text, const std::string& source,
                            const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "cannot parse " << source << " (line " << e.source().begin.line << ", column "
        << e.source().begin.column << "): " << e.description();
    return fail(Errc::kInvalidArgument, msg.str());
  }
  Config c;
  c.source = source;
  c.admin.max_body_bytes = 64u << 20;
  std::vector<std::string> errors;
  {
    Section top(root, "", errors, base_dir, c.file_lines);
    if (const toml::table* t = subtable(top, "gateway", errors)) {
      Section s(*t, "gateway", errors, base_dir, c.file_lines);
      s.str("role", c.role);
      s.str("id", c.gateway_id);
      s.path("state_dir", c.state_dir);
      s.choice("log_level", c.log_level, {"trace", "debug", "info", "warn", "error", "off"});
      s.choice("log_format", c.log_format, {"text", "json"});
      s.integer("threads", c.threads, 1, 64);
      s.path("schema_dir", c.schema_dir);
      s.strings("peers", c.peer_gateways);
      s.integer("workers", c.workers, 1, 64);
      s.integer("worker_queue", c.worker_queue, 1, 1'000'000);
      s.integer("max_body_bytes_in_flight", c.max_body_bytes_in_flight, 1 << 20, 64LL << 30);
      s.integer("audit_refusal_burst", c.audit_refusal_burst, 1, 1'000'000);
      s.integer("audit_refusal_window_ms", c.audit_refusal_window_ms, 1'000, 24 * 3'600'000);
      s.integer("shutdown_timeout_ms", c.shutdown_timeout_ms, 100, 600'000);
    }
    if (const toml::table* t = subtable(top, "listen", errors)) {
      Section listen(*t, "listen", errors, base_dir, c.file_lines);
      if (const toml::table* d = subtable(listen, "data", errors)) {
        read_listener(*d, "listen.data", c.data, errors, base_dir, c.file_lines);
      }
      if (const toml::table* a = subtable(listen, "admin", errors)) {
        read_listener(*a, "listen.admin", c.admin, errors, base_dir, c.file_lines);
      }
    }
    if (const toml::table* t = subtable(top, "store", errors)) {
      Section s(*t, "store", errors, base_dir, c.file_lines);
      s.path("path", c.store.path);
      s.integer("map_size_mb", c.store.map_size_bytes, 16, 1 << 24, 1 << 20);
      s.integer("max_queued_mb", c.store.max_queued_bytes, 1, 1 << 24, 1 << 20);
      s.integer("max_queued_messages", c.store.max_queued_messages, 1, 1'000'000'000);
      s.integer("group_commit_max_count", c.store.group_commit_max_count, 1, 100'000);
      s.integer("group_commit_max_kb", c.store.group_commit_max_bytes, 1, 1 << 20, 1024);
      std::int64_t linger = c.store.group_commit_linger.count();
      s.integer("group_commit_linger_us", linger, 0, 1'000'000);
      c.store.group_commit_linger = std::chrono::microseconds(linger);
      s.integer("lease_timeout_ms", c.store.lease_timeout_ms, 1000, 86'400'000);
      s.integer("schedule_window", c.store.schedule_window, 64, 1'000'000);
      s.integer("retention_hours", c.store.retention_ms, 1, 24 * 3650, 3'600'000);
      // Unset, history may take a quarter of the map, as in the shipped configurations.
      c.store.retention_max_bytes = c.store.map_size_bytes / 4;
      s.integer("retention_max_mb", c.store.retention_max_bytes, 1, 1 << 24, 1 << 20);
      s.integer("retention_max_messages", c.store.retention_max_messages, 1, 1'000'000'000);
      s.integer("purge_interval_ms", c.purge_interval_ms, 1000, 86'400'000);
    }
    if (const toml::table* t = subtable(top, "retry", errors)) {
      Section s(*t, "retry", errors, base_dir, c.file_lines);
      s.integer("max_attempts", c.store.retry.max_attempts, 1, 1000);
      s.integer("initial_backoff_ms", c.store.retry.initial_backoff_ms, 1, 86'400'000);
      s.integer("max_backoff_ms", c.store.retry.max_backoff_ms, 1, 86'400'000);
      s.real("multiplier", c.store.retry.multiplier, 1.0, 100.0);
      s.real("jitter", c.store.retry.jitter, 0.0, 1.0);
    }
    if (const toml::table* t = subtable(top, "ferry", errors)) {
      Section s(*t, "ferry", errors, base_dir, c.file_lines);
      FerryConfig& f = c.ferry;
      s.str("listen", f.listen);
      s.str("connect", f.connect);
      s.path("secret_key", f.secret_key);
      s.path("server_key", f.server_key);
      s.paths("allowed_keys", f.allowed_keys);
      s.str("peer", f.peer);
      s.integer("credit_docs", f.credit_docs, 1, 100'000);
      s.integer("credit_mb", f.credit_bytes, 1, 4096, 1 << 20);
      s.integer("heartbeat_ms", f.heartbeat_ms, 50, 600'000);
      s.integer("stall_ms", f.stall_ms, 200, 3'600'000);
      s.integer("answer_timeout_ms", f.answer_timeout_ms, 1'000, 3'600'000);
      s.integer("reconnect_min_ms", f.reconnect_min_ms, 10, 600'000);
      s.integer("reconnect_max_ms", f.reconnect_max_ms, 10, 3'600'000);
    }
    if (const toml::table* t = subtable(top, "xml", errors)) {
      Section s(*t, "xml", errors, base_dir, c.file_lines);
      s.integer("max_depth", c.xml.max_depth, 4, 256);
      s.integer("max_elements", c.xml.max_elements, 16, 10'000'000);
      s.integer("max_attributes", c.xml.max_attributes, 0, 10'000'000);
      s.integer("max_attributes_per_element", c.xml.max_attributes_per_element, 1, 100'000);
    }
    read_run_config(top, c, errors, base_dir);
    auto tables = [&](const char* key, auto&& read) {
      tables_in(top, key, key, errors, base_dir, c.file_lines, read);
    };
    tables("admin_role", [&](Section& s) {
      api::RoleRule r;
      std::string role;
      s.str("certificate", r.certificate);
      s.str("role", role);
      if (r.certificate.find('/') == std::string::npos) {
        errors.push_back("admin_role.certificate \"" + r.certificate +
                         "\" must be OU/CN of an admin certificate, e.g. \"admin/netadmin\" "
                         "(or \"admin/*\")");
      }
      if (auto parsed = api::parse_role(role)) {
        r.role = *parsed;
      } else {
        errors.push_back("admin_role.role \"" + role + "\" for " + r.certificate +
                         " is not one of system, security, audit, monitor");
      }
      c.admin_roles.push_back(std::move(r));
    });
    if (const toml::table* t = subtable(top, "signing", errors)) {
      Section s(*t, "signing", errors, base_dir, c.file_lines);
      s.boolean("enabled", c.signing.enabled);
      s.path("cert", c.signing.cert);
      s.path("key", c.signing.key);
      s.path("trust", c.signing.trust);
      s.paths("crls", c.signing.crls);
    } else {
      c.signing.enabled = false;
    }
    if (const toml::table* t = subtable(top, "quarantine", errors)) {
      Section s(*t, "quarantine", errors, base_dir, c.file_lines);
      s.integer("max_mb", c.quarantine_max_bytes, 1, 1 << 20, 1 << 20);
    }
    if (const toml::table* t = subtable(top, "feeds", errors)) {
      Section s(*t, "feeds", errors, base_dir, c.file_lines);
      s.integer("max_records", c.max_batch_records, 1, 10'000'000);
      s.integer("threads", c.feed_threads, 1, 16);
    }
  }
  return finish(std::move(c), std::move(errors));
}

Result<Config> load_config(const std::filesystem::path& file) {
  auto text = read_file(file, 4u << 20);
  if (!text) {
    return fail(text.error());
  }
  std::error_code ec;
  auto base = std::filesystem::absolute(file, ec).parent_path();
  return parse_config(*text, file.string(), base);
}

Result<RunConfig> parse_run_config(std::string_view text, const std::string& source,
                                   const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "cannot parse " << source << " (line " << e.source().begin.line << ", column "
        << e.source().begin.column << "): " << e.description();
    return fail(Errc::kInvalidArgument, msg.str());
  }
  Config c;
  std::vector<std::string> errors;
  {
    static const std::set<std::string, std::less<>> kRunTime{"destination", "route",    "sender",
                                                             "feed",        "spool_in", "gate"};
    for (const auto& [key, node] : root) {
      if (!kRunTime.contains(key.str())) {
        errors.push_back(std::string(key.str()) + " (" + where(node) +
                         ") is not run-time configuration: it is read from sluiced's file at "
                         "start; run-time configuration holds [[destination]], [[route]], "
                         "[[sender]], [[feed]], [[spool_in]] and [gate] only");
      }
    }
    toml::table run = root;
    std::vector<std::string> others;
    for (const auto& [key, node] : run) {
      if (!kRunTime.contains(key.str())) others.emplace_back(key.str());
    }
    for (const auto& k : others) run.erase(k);
    Section top(run, "", errors, base_dir, c.file_lines);
    read_run_config(top, c, errors, base_dir);
  }
  check_run_config(c, errors);
  if (!errors.empty()) {
    std::string msg = "invalid run-time configuration " + source + ":";
    for (const auto& e : errors) msg += "\n  - " + e;
    return fail(Errc::kInvalidArgument, msg);
  }
  return run_config_of(c);
}

std::vector<std::string> check_run_config_of(const Config& c) {
  std::vector<std::string> errors;
  Config copy = c;  // check_ferry adds the ferry's peer to the peer gateways
  check_ferry(copy, errors);
  check_run_config(copy, errors);
  return errors;
}

std::string_view embedded_default_toml() { return kDefaultToml; }

Result<Config> default_config() {
  return parse_config(kDefaultToml, "(embedded defaults)", std::filesystem::current_path());
}

pipeline::IngestOptions Config::ingest_options() const {
  pipeline::IngestOptions o;
  o.gateway_id = gateway_id;
  o.xml = xml;
  o.xml.max_bytes = data.max_body_bytes;
  o.peer_gateways = peer_gateways;
  o.gate = gate;
  o.gate.outer = role == "outer";
  for (const auto& d : destinations) {
    if (d.kind == SinkKind::kFerry) o.gate.ferry_destination = d.name;
  }
  return o;
}

ingress::FeedOptions Config::feed_options() const {
  ingress::FeedOptions o;
  o.feeds = feeds;
  o.xml = xml;
  o.xml.max_bytes = data.max_body_bytes;
  o.max_input_bytes = data.max_batch_bytes;
  o.max_records = max_batch_records;
  o.threads = feed_threads;
  return o;
}

}  // namespace sluice::gateway
