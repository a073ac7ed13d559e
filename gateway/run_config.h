// The run-time configuration: what network admins change while sluiced runs — destinations,
// routes, senders, feeds, spool directories and the gate's rules. It lives in the store as
// numbered versions (gateway/config_versions.h); sluiced's TOML file seeds version 1. Every
// version is TOML of these sections only, the same syntax as in the file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "gateway/config.h"

namespace sluice::gateway {

struct RunConfig {
  std::vector<DestinationConfig> destinations;
  std::vector<RouteConfig> routes;
  std::vector<SenderConfig> senders;
  std::vector<FeedConfig> feeds;
  std::vector<SpoolInConfig> spool_in;
  std::vector<pipeline::GateRule> gate_inbound;
  std::vector<pipeline::GateRule> gate_outbound;
};

RunConfig run_config_of(const Config& c);
// `c` with its run-time sections replaced by `r`.
Config with_run_config(Config c, const RunConfig& r);

// Parses TOML holding only run-time sections (anything else is refused by name); relative
// paths are resolved against `base_dir`. Checks what the file's loader checks of them.
Result<RunConfig> parse_run_config(std::string_view toml, const std::string& source,
                                   const std::filesystem::path& base_dir);
// Whole-configuration checks of a half with `c`'s run-time sections (unique names, known
// destinations and feeds, one ferry destination that needs the link). Empty when all is well.
std::vector<std::string> check_run_config_of(const Config& c);

// TOML that parse_run_config reads back as the same configuration (paths absolute).
std::string to_toml(const RunConfig& r);

// The kinds of object, as their TOML tables are named: "destination", "route", "sender",
// "feed", "spool_in", "gate.inbound", "gate.outbound". Destinations, feeds and spool
// directories are named by `name`, senders by `id`, routes and gate rules by their place
// (1, 2, ...).
const std::vector<std::string_view>& run_config_kinds();

struct ConfigObject {
  std::string kind;
  std::string key;     // name, id or place
  std::string fields;  // one line: {destinations = ["sink"], doc_type = "case.*", ...}
  std::string json;    // the same as a JSON object
};
std::vector<ConfigObject> objects(const RunConfig& r, std::string_view kind = {});

// One line per object that differs, "- kind key: {...}" for the one before, "+ ..." for the
// one after; empty when the two are the same.
std::vector<std::string> diff(const RunConfig& from, const RunConfig& to);

// `current` with one object added, updated or removed. `fields` is TOML ("name = ...\nurl =
// ..."): the whole object to add, or the keys to change in the one named `key`. The result is
// parsed and checked as any version is; errors name the object.
enum class Edit { kAdd, kUpdate, kRemove };
Result<RunConfig> edit(const RunConfig& current, Edit op, std::string_view kind,
                       std::string_view key, std::string_view fields,
                       const std::filesystem::path& base_dir);

// What a change must not do, given the half's other configuration `base`: anything the file's
// loader refuses of these sections, and — where `from` did not have it already — a route,
// sender or gate rule whose DocType pattern matches no DocType of the exchange standard, a
// route whose sender pattern matches no configured sender (on a half that only takes its own
// senders), or a gate that opens a DocType inbound and outbound at once. Each problem names
// the object. Empty when the change may go ahead.
std::vector<std::string> check_change(const RunConfig& from, const RunConfig& to,
                                      const Config& base);

}  // namespace sluice::gateway
