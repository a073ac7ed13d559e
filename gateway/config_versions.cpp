#include "gateway/config_versions.h"

#include <boost/json.hpp>

#include "common/encoding.h"
#include "ops/audit.h"
#include "queue/queue.h"

namespace sluice::gateway {
namespace {

namespace json = boost::json;

std::string encode(const ConfigVersion& v) {
  json::object o;
  o["version"] = v.version;
  o["time"] = v.time;
  o["actor"] = v.actor;
  o["action"] = v.action;
  o["note"] = v.note;
  o["toml"] = v.toml;
  return json::serialize(o);
}

Result<ConfigVersion> decode(std::string_view value) {
  boost::system::error_code ec;
  json::value jv = json::parse(value, ec);
  if (ec || !jv.is_object()) {
    return fail(Errc::kInternal, "a configuration version in the store is not readable");
  }
  const json::object& o = jv.as_object();
  auto str = [&](const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  ConfigVersion v;
  const json::value* n = o.if_contains("version");
  v.version = n && n->is_uint64() ? n->as_uint64() : (n && n->is_int64() ? n->as_int64() : 0);
  v.time = str("time");
  v.actor = str("actor");
  v.action = str("action");
  v.note = str("note");
  v.toml = str("toml");
  return v;
}

std::string key_of(std::uint64_t version) {
  std::string k;
  put_u64be(k, version);
  return k;
}

}  // namespace

Result<std::optional<ConfigVersion>> ConfigVersions::latest() const {
  std::optional<ConfigVersion> out;
  Result<void> bad;
  auto r = store_.scan_reverse(kTable, [&](std::string_view, std::string_view value) {
    auto v = decode(value);
    if (!v) {
      bad = fail(v.error());
    } else {
      out = std::move(*v);
    }
    return false;
  });
  if (!r) return fail(r.error());
  if (!bad) return fail(bad.error());
  return out;
}

Result<std::optional<ConfigVersion>> ConfigVersions::get(std::uint64_t version) const {
  auto value = store_.get(kTable, key_of(version));
  if (!value) return fail(value.error());
  if (!*value) return std::optional<ConfigVersion>();
  auto v = decode(**value);
  if (!v) return fail(v.error());
  return std::optional<ConfigVersion>(std::move(*v));
}

Result<std::vector<ConfigVersion>> ConfigVersions::history(std::size_t limit) const {
  std::vector<ConfigVersion> out;
  Result<void> bad;
  auto r = store_.scan_reverse(kTable, [&](std::string_view, std::string_view value) {
    auto v = decode(value);
    if (!v) {
      bad = fail(v.error());
      return false;
    }
    v->toml.clear();
    out.push_back(std::move(*v));
    return out.size() < limit;
  });
  if (!r) return fail(r.error());
  if (!bad) return fail(bad.error());
  return out;
}

Result<ConfigVersion> ConfigVersions::commit(std::uint64_t expected_latest, std::string toml,
                                             const std::string& actor, const std::string& action,
                                             const std::string& note, ops::AuditLog& audit,
                                             const std::string& audit_outcome) {
  ConfigVersion v;
  v.version = expected_latest + 1;
  v.time = format_time_cn(clock_.now_ms());
  v.actor = actor;
  v.action = action;
  v.note = note;
  v.toml = std::move(toml);
  std::string value = encode(v);
  const std::size_t bytes = value.size();
  auto r = audit.record_with(
      actor, action, "config version " + std::to_string(v.version), audit_outcome,
      [expected_latest, value = std::move(value),
       version = v.version](queue::TableWriter& w) -> Result<void> {
        auto last = w.last(kTable);
        if (!last) return fail(last.error());
        std::uint64_t newest = last->has_value() ? get_u64be((*last)->first) : 0;
        if (newest != expected_latest) {
          return fail(Errc::kAlreadyExists, "configuration version " + std::to_string(newest) +
                                                " was made meanwhile; look at it and try again");
        }
        return w.put(kTable, key_of(version), value);
      },
      bytes);
  if (!r) return fail(r.error());
  return v;
}

}  // namespace sluice::gateway
