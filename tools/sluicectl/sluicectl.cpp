// sluicectl: the network admin's command line for a running sluiced, over the admin
// listener with an admin client certificate.
//
//   sluicectl health | stats | metrics
//   sluicectl status <message-id>
//   sluicectl messages [FILTERS] [--limit N] [--cursor C]
//   sluicectl dead list [FILTERS] [--limit N] [--cursor C]
//   sluicectl dead redrive <message-id> --destination D | dead redrive --all [FILTERS] [--dry-run]
//   sluicectl dead discard <message-id> --destination D --reason R
//   sluicectl dead discard --all [FILTERS] --reason R [--dry-run]
//     FILTERS: --destination D --doc-type T --sender S --state S --case C --from T --to T
//   sluicectl quarantine list|show <id>|resubmit <id> [--file F]|discard <id> --reason R
//   sluicectl audit verify | audit tail [-n N]
//   sluicectl tls reload
//   sluicectl config list|show|add|update|remove KIND [KEY] ['field = value'...] [--dry-run]
//   sluicectl config history | diff A B | rollback V [--dry-run] | export [--version V]
//   sluicectl config import FILE [--dry-run]
//   sluicectl backup <empty-dir>
//   sluicectl verify <file>... [--trust ca-bundle.pem] [--crl crls.pem]   (offline)
//
// Where it connects and as whom: command-line options, then SLUICE_ADMIN_* environment
// variables, then ~/.config/sluice/sluicectl.toml, then /etc/sluice/sluicectl.toml (or only
// the file given with --config), then the development defaults. The file's keys: host, port,
// pki, identity, cert, key, ca (paths relative to the file).
//
// Answers are tables on a terminal (or with --table), indented JSON otherwise, and the
// gateway's JSON as it is, one line each, with --json.
//
// Exit status: 0 done; 1 the gateway answered with an error (4xx/5xx, printed) or a
// signature was refused; 2 bad usage or an unreadable configuration file; 3 the gateway
// could not be reached (TLS, connection, timeout).
#include <unistd.h>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "ferry/keys.h"
#include "net/client.h"
#include "trust/verifier.h"
#include "xml/parse.h"

namespace json = boost::json;
using sluice::net::ClientOptions;
using sluice::net::HttpsClient;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Pretty-prints JSON (two-space indent) for humans.
void pretty(std::ostream& os, const json::value& v, int indent = 0) {
  std::string pad(indent, ' ');
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        os << "{}";
        return;
      }
      os << "{\n";
      std::size_t i = 0;
      for (const auto& [k, val] : o) {
        os << pad << "  " << json::serialize(json::string(k)) << ": ";
        pretty(os, val, indent + 2);
        os << (++i < o.size() ? ",\n" : "\n");
      }
      os << pad << "}";
      return;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      if (a.empty()) {
        os << "[]";
        return;
      }
      os << "[\n";
      for (std::size_t i = 0; i < a.size(); ++i) {
        os << pad << "  ";
        pretty(os, a[i], indent + 2);
        os << (i + 1 < a.size() ? ",\n" : "\n");
      }
      os << pad << "]";
      return;
    }
    default:
      os << json::serialize(v);
  }
}

bool g_json = false;   // --json: the gateway's JSON as it is, one line, for scripts
bool g_table = false;  // tables and "key  value" lines, for a person (default on a terminal)

// A value in one cell: strings as they are, the rest as compact JSON, cut at 60 characters.
std::string cell(const json::value& v) {
  std::string s = v.is_string() ? std::string(v.get_string()) : json::serialize(v);
  for (auto& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (s.size() > 60) {
    std::size_t cut = 57;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    s = s.substr(0, cut) + "...";
  }
  return s;
}

// Display width of UTF-8 text, counting CJK characters (three bytes, here) as two columns.
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) == 0x80) continue;
    w += (b >= 0xE0) ? 2 : 1;
  }
  return w;
}

void pad_to(std::ostream& os, const std::string& s, std::size_t w) {
  os << s << std::string(w > width(s) ? w - width(s) : 0, ' ');
}

// Rows of objects as aligned columns: the columns are every key, in the order first seen.
void table(std::ostream& os, const json::array& rows) {
  std::vector<std::string> columns;
  for (const auto& r : rows) {
    if (!r.is_object()) continue;
    for (const auto& [k, v] : r.get_object()) {
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.emplace_back(k);
    }
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& c : columns) widths.push_back(width(c));
  for (const auto& r : rows) {
    auto& line = cells.emplace_back();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const json::value* v = r.is_object() ? r.get_object().if_contains(columns[i]) : nullptr;
      line.push_back(v != nullptr ? cell(*v) : "");
      widths[i] = std::max(widths[i], width(line.back()));
    }
  }
  auto print = [&](const std::vector<std::string>& line) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i + 1 < line.size()) {
        pad_to(os, line[i], widths[i] + 2);
      } else {
        os << line[i];
      }
    }
    os << "\n";
  };
  print(columns);
  for (const auto& line : cells) print(line);
  if (rows.empty()) os << "(none)\n";
}

// An answer for a person: scalars and small objects as "key  value" lines, each list of
// objects as a table under its key.
void human(std::ostream& os, const json::value& v) {
  if (v.is_array()) {
    table(os, v.get_array());
    return;
  }
  if (!v.is_object()) {
    os << cell(v) << "\n";
    return;
  }
  std::size_t w = 0;
  for (const auto& [k, val] : v.get_object()) w = std::max(w, width(std::string(k)));
  std::vector<std::pair<std::string, const json::array*>> lists;
  for (const auto& [k, val] : v.get_object()) {
    if (val.is_array() && !val.get_array().empty() && val.get_array()[0].is_object()) {
      lists.emplace_back(std::string(k), &val.get_array());
      continue;
    }
    pad_to(os, std::string(k), w + 2);
    os << cell(val) << "\n";
  }
  for (const auto& [k, rows] : lists) {
    os << "\n" << k << " (" << rows->size() << ")\n";
    table(os, *rows);
  }
}

int show(const sluice::Result<sluice::net::ClientResponse>& r) {
  if (!r) {
    std::cerr << "sluicectl: " << r.error().message << "\n";
    return 3;
  }
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec) {
    std::cout << r->body;
    if (!r->body.empty() && r->body.back() != '\n') std::cout << "\n";
  } else if (g_json) {
    std::cout << json::serialize(v) << "\n";
  } else if (g_table) {
    human(std::cout, v);
  } else {
    pretty(std::cout, v);
    std::cout << "\n";
  }
  return r->status >= 200 && r->status < 300 ? 0 : 1;
}

// Settings from a sluicectl.toml: each key present replaces the value given.
struct Settings {
  std::string host, port, pki, identity, cert, key, ca;
};

// Reads `file` into `s`; false (with the reason on stderr) when it exists but cannot be used.
bool read_settings(const std::filesystem::path& file, Settings& s) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return true;
  toml::table t;
  try {
    t = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    std::cerr << "sluicectl: " << file.string() << " (line " << e.source().begin.line
              << "): " << e.description() << "\n";
    return false;
  }
  const auto base = file.parent_path();
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    static constexpr std::string_view kKeys[] = {"host", "port", "pki", "identity",
                                                 "cert", "key",  "ca"};
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      std::cerr << "sluicectl: " << file.string() << ": unknown key " << key
                << " (host, port, pki, identity, cert, key, ca)\n";
      return false;
    }
    auto text = v.value<std::string>();
    if (!text && key == "port") {
      if (auto n = v.value<std::int64_t>()) text = std::to_string(*n);
    }
    if (!text) {
      std::cerr << "sluicectl: " << file.string() << ": " << key << " must be a string\n";
      return false;
    }
    auto path = [&] {
      std::filesystem::path p(*text);
      return (p.is_absolute() ? p : base / p).string();
    };
    if (key == "host") {
      s.host = *text;
    } else if (key == "port") {
      s.port = *text;
    } else if (key == "identity") {
      s.identity = *text;
    } else if (key == "pki") {
      s.pki = path();
    } else if (key == "cert") {
      s.cert = path();
    } else if (key == "key") {
      s.key = path();
    } else if (key == "ca") {
      s.ca = path();
    } else {
      std::cerr << "sluicectl: " << file.string() << ": unknown key " << key
                << " (host, port, pki, identity, cert, key, ca)\n";
      return false;
    }
  }
  return true;
}

// The configuration files in the order they apply (a later one overrides): the system's,
// then the user's; or only the one named by --config / SLUICECTL_CONFIG.
std::vector<std::filesystem::path> settings_files(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == "--config" && i + 1 < argc) return {argv[i + 1]};
    if (arg.starts_with("--config=")) return {std::string(arg.substr(9))};
  }
  if (const char* f = std::getenv("SLUICECTL_CONFIG"); f != nullptr && *f != 0) return {f};
  std::vector<std::filesystem::path> files{"/etc/sluice/sluicectl.toml"};
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != 0) {
    files.push_back(std::filesystem::path(home) / ".config" / "sluice" / "sluicectl.toml");
  }
  return files;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluicectl - manage a running sluiced through its admin API"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "sluicectl " SLUICE_VERSION);
  cli.fallthrough();  // global options may also follow the subcommand
  Settings settings{
      .host = "localhost", .port = "8444", .pki = "var/pki", .identity = "admin-netadmin"};
  std::string config_file;
  for (const auto& f : settings_files(argc, argv)) {
    if (!read_settings(f, settings)) return 2;
  }
  cli.add_option("--config", config_file,
                 "read only this sluicectl.toml (default: /etc/sluice/sluicectl.toml, then "
                 "~/.config/sluice/sluicectl.toml; env SLUICECTL_CONFIG)");
  cli.add_flag("--json", g_json, "print the gateway's JSON answers as they are, one line each");
  bool want_table = false;
  cli.add_flag("--table", want_table,
               "print answers as tables and \"key  value\" lines (the default on a terminal; "
               "otherwise indented JSON)");
  std::string pki = env_or("SLUICE_PKI", settings.pki);
  std::string host = env_or("SLUICE_ADMIN_HOST", settings.host);
  std::string port = env_or("SLUICE_ADMIN_PORT", settings.port);
  std::string cert = settings.cert, key = settings.key, ca = settings.ca;
  cli.add_option("--host", host, "admin listener host (env SLUICE_ADMIN_HOST)");
  cli.add_option("--port", port, "admin listener port (env SLUICE_ADMIN_PORT)");
  cli.add_option("--pki", pki, "directory with the admin certificate (env SLUICE_PKI)");
  std::string identity = env_or("SLUICE_ADMIN_IDENTITY", settings.identity);
  cli.add_option("--identity", identity,
                 "which admin certificate of <pki> to use: admin-netadmin (system), "
                 "admin-secadmin (security: tls reload), admin-auditor (audit: audit verify, "
                 "audit tail), monitor-prometheus (env SLUICE_ADMIN_IDENTITY)");
  cli.add_option("--cert", cert, "admin certificate chain (default <pki>/<identity>.chain.pem)");
  cli.add_option("--key", key, "admin private key (default <pki>/<identity>.key.pem)");
  cli.add_option("--ca", ca, "CA bundle for the gateway certificate (default <pki>/ca-bundle.pem)");

  auto* health = cli.add_subcommand("health", "store state and queue totals");
  auto* stats = cli.add_subcommand("stats", "queues per destination and store counters");
  auto* metrics = cli.add_subcommand("metrics", "Prometheus metrics");
  auto* status = cli.add_subcommand("status", "a message's state and deliveries");
  std::string id;
  status->add_option("id", id, "MessageId")->required();

  std::string destination;
  std::size_t limit = 100;
  std::string f_doc_type, f_sender, f_state, f_case, f_from, f_to, cursor, discard_reason;
  bool all = false, dry_run_bulk = false;
  auto filters = [&](CLI::App* sub, bool with_state) {
    sub->add_option("--destination", destination, "with a delivery to this destination");
    sub->add_option("--doc-type", f_doc_type, "DocType, or a pattern like case.*");
    sub->add_option("--sender", f_sender, "sender node/system, or a pattern like 440604/*");
    if (with_state) {
      sub->add_option("--state", f_state,
                      "queued, delivering, delivered, dead, expired, partial or discarded");
    }
    sub->add_option("--case", f_case, "CaseId (or Region/CaseId)");
    sub->add_option("--from", f_from,
                    "accepted at or after: 2026-12-03T08:00:00+08:00 or epoch milliseconds");
    sub->add_option("--to", f_to, "accepted before (as --from)");
  };
  auto* messages = cli.add_subcommand(
      "messages", "find stored messages: one page, oldest first, and the cursor of the next");
  filters(messages, true);
  messages->add_option("--limit", limit, "at most this many (default 100, up to 1000)");
  messages->add_option("--cursor", cursor, "the \"next\" of the previous page");

  auto* dead = cli.add_subcommand("dead", "dead letters");
  dead->require_subcommand(1);
  auto* dead_list = dead->add_subcommand("list", "list dead deliveries (paged as messages)");
  filters(dead_list, false);
  dead_list->add_option("--limit", limit, "at most this many");
  dead_list->add_option("--cursor", cursor, "the \"next\" of the previous page");
  auto* dead_redrive = dead->add_subcommand(
      "redrive", "queue a dead delivery again; --all: every one the filters match");
  dead_redrive->add_option("id", id, "MessageId");
  auto* dead_discard = dead->add_subcommand(
      "discard", "give up a dead delivery (audited with the reason); --all: every one matched");
  dead_discard->add_option("id", id, "MessageId");
  dead_discard->add_option("--reason", discard_reason, "why (kept with the delivery and audited)")
      ->required();
  for (auto* sub : {dead_redrive, dead_discard}) {
    filters(sub, false);
    sub->add_flag("--all", all, "every dead delivery the filters match, instead of one message");
    sub->add_flag("--dry-run", dry_run_bulk, "with --all: count them, change nothing");
    sub->add_option("--limit", limit, "with --all: at most this many (default 10000)");
  }

  auto* quarantine =
      cli.add_subcommand("quarantine", "inputs that failed translation or validation");
  quarantine->require_subcommand(1);
  std::string file, reason;
  auto* q_list = quarantine->add_subcommand("list", "list quarantined inputs");
  q_list->add_option("--limit", limit, "at most this many");
  auto* q_show = quarantine->add_subcommand("show", "one entry with its errors and raw input");
  q_show->add_option("id", id, "quarantine id")->required();
  auto* q_resubmit =
      quarantine->add_subcommand("resubmit", "run an entry through the pipeline again");
  q_resubmit->add_option("id", id, "quarantine id")->required();
  q_resubmit->add_option("--file", file, "corrected content to submit instead of the original");
  auto* q_discard = quarantine->add_subcommand("discard", "drop an entry (audited)");
  q_discard->add_option("id", id, "quarantine id")->required();
  q_discard->add_option("--reason", reason, "why it is discarded")->required();

  auto* audit = cli.add_subcommand("audit", "the hash-chained audit trail");
  audit->require_subcommand(1);
  auto* a_verify = audit->add_subcommand("verify", "check the whole chain");
  auto* a_tail = audit->add_subcommand("tail", "the latest entries");
  std::size_t n = 20;
  a_tail->add_option("-n", n, "how many");

  auto* tls = cli.add_subcommand("tls", "TLS material");
  tls->require_subcommand(1);
  auto* tls_reload =
      tls->add_subcommand("reload", "re-read certificates and CRLs without a restart");

  auto* verify = cli.add_subcommand(
      "verify",
      "check the gateway signature of documents or receipts (offline, no gateway needed)");
  std::vector<std::string> files;
  std::string trust_bundle, crl;
  verify->add_option("files", files, "signed documents or receipts")->required();
  verify->add_option("--trust", trust_bundle, "CA bundle (default <pki>/ca-bundle.pem)");
  verify->add_option("--crl", crl, "CRLs, PEM (default <pki>/crl-chain.pem)");
  std::vector<std::string> gateways;
  verify->add_option("--gateway", gateways,
                     "gateway names (certificate CN) whose signatures to accept; default: any "
                     "gateway certificate (OU=gateway), never a sender's");

  auto* ferry = cli.add_subcommand("ferry", "the link between the two halves");
  ferry->require_subcommand(1);
  auto* f_status = ferry->add_subcommand(
      "status", "link state, peer key, last heard, in flight, credit, backlog, last error");
  auto* f_keygen = ferry->add_subcommand(
      "keygen", "make a CURVE key pair: <dir>/<name>.key (secret, 0600) and <dir>/<name>.pub");
  std::string key_dir = ".", key_name;
  f_keygen->add_option("--dir", key_dir, "where to write the two files (default .)");
  f_keygen->add_option("name", key_name, "e.g. outer or inner")->required();

  auto* config = cli.add_subcommand(
      "config",
      "run-time configuration: destinations, routes, senders, feeds, spool directories and "
      "the gate's rules, changed without a restart (each change a version, audited)");
  config->require_subcommand(1);
  const std::string kinds_help =
      "destination, route, sender, feed, spool_in, gate.inbound or gate.outbound";
  std::string c_kind, c_key, c_file;
  std::vector<std::string> c_fields;
  bool dry_run = false;
  std::uint64_t c_version = 0, c_from = 0, c_to = 0;
  auto* c_list = config->add_subcommand("list", "the objects of one kind, with their keys");
  c_list->add_option("kind", c_kind, kinds_help)->required();
  auto* c_show = config->add_subcommand("show", "one object");
  c_show->add_option("kind", c_kind, kinds_help)->required();
  c_show
      ->add_option("key", c_key,
                   "its name (destination, feed, spool_in), id (sender) or place "
                   "(route, gate rule: 1, 2, ...)")
      ->required();
  auto* c_add =
      config->add_subcommand("add",
                             "add an object: sluicectl config add route 'doc_type = \"case.*\"' "
                             "'destinations = [\"district\"]'");
  c_add->add_option("kind", c_kind, kinds_help)->required();
  c_add->add_option("fields", c_fields, "TOML lines 'key = value', one per argument")->required();
  auto* c_update = config->add_subcommand("update", "change the keys given of one object");
  c_update->add_option("kind", c_kind, kinds_help)->required();
  c_update->add_option("key", c_key, "name, id or place")->required();
  c_update->add_option("fields", c_fields, "TOML lines 'key = value', one per argument")
      ->required();
  auto* c_remove = config->add_subcommand("remove", "remove one object");
  c_remove->add_option("kind", c_kind, kinds_help)->required();
  c_remove->add_option("key", c_key, "name, id or place")->required();
  auto* c_history =
      config->add_subcommand("history", "the versions, newest first: who, when, what");
  c_history->add_option("-n", n, "how many (default 20)");
  auto* c_diff = config->add_subcommand("diff", "what changed from version A to version B");
  c_diff->add_option("from", c_from, "version A")->required();
  c_diff->add_option("to", c_to, "version B")->required();
  auto* c_rollback =
      config->add_subcommand("rollback", "make a new version with an earlier version's content");
  c_rollback->add_option("version", c_version, "the version to go back to")->required();
  auto* c_export = config->add_subcommand(
      "export", "print a version (default: the one in use) as TOML that import takes back");
  c_export->add_option("--version", c_version, "which version");
  auto* c_import = config->add_subcommand(
      "import", "replace the run-time configuration with a TOML file's sections");
  c_import
      ->add_option("file", c_file,
                   "TOML with [[destination]], [[route]], [[sender]], "
                   "[[feed]], [[spool_in]] and [gate] only")
      ->required()
      ->check(CLI::ExistingFile);
  for (auto* sub : {c_add, c_update, c_remove, c_rollback, c_import}) {
    sub->add_flag("--dry-run", dry_run, "check the change and print its diff; change nothing");
  }

  auto* backup = cli.add_subcommand("backup", "online compacting copy of the store");
  std::string dir;
  backup->add_option("dir", dir, "empty directory on the gateway host")->required();

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (documented at the top).
    return cli.exit(e) == 0 ? 0 : 2;
  }
  g_table = !g_json && (want_table || ::isatty(STDOUT_FILENO) == 1);

  if (*f_keygen) {
    auto keys = sluice::ferry::generate_key_pair();
    auto written = keys ? sluice::ferry::write_key_pair(*keys, key_dir, key_name)
                        : sluice::Result<void>(sluice::fail(keys.error()));
    if (!written) {
      std::cerr << "sluicectl: " << written.error().message << "\n";
      return 2;
    }
    std::cout << "wrote " << key_dir << "/" << key_name << ".key (secret, 0600: stays on this "
              << "half) and " << key_dir << "/" << key_name << ".pub (give it to the other half)\n"
              << "public key: " << keys->public_key << "\n";
    return 0;
  }

  if (*verify) {
    sluice::xml::initialize("");
    auto store = sluice::trust::TrustStore::load(
        trust_bundle.empty() ? pki + "/ca-bundle.pem" : trust_bundle,
        {crl.empty() ? pki + "/crl-chain.pem" : crl});
    if (!store) {
      std::cerr << "sluicectl: " << store.error().message << "\n";
      return 2;
    }
    sluice::trust::DocumentVerifier verifier(*store);
    int bad = 0;
    for (const auto& f : files) {
      auto text = sluice::read_file(f, 64u << 20);
      auto r = text ? verifier.verify_bytes(*text, {})
                    : sluice::Result<sluice::trust::Verified>(sluice::fail(text.error()));
      if (r) {
        if (auto g = sluice::trust::require_gateway(r->signer, gateways); !g) {
          r = sluice::fail(g.error());
        }
      }
      if (r) {
        std::cout << f << ": signature OK, signed by gateway " << r->signer.system << " ("
                  << r->signer.subject << "), digest " << r->digest << "\n";
      } else {
        ++bad;
        std::cout << f << ": REFUSED: " << r.error().message << "\n";
      }
    }
    return bad == 0 ? 0 : 1;
  }

  ClientOptions o;
  o.host = host;
  o.port = port;
  o.cert = cert.empty() ? pki + "/" + identity + ".chain.pem" : cert;
  o.key = key.empty() ? pki + "/" + identity + ".key.pem" : key;
  o.ca = ca.empty() ? pki + "/ca-bundle.pem" : ca;
  HttpsClient client(o);
  auto get = [&](const std::string& target) { return show(client.request("GET", target)); };
  auto post = [&](const std::string& target, const std::string& body) {
    return show(client.request("POST", target, body, "application/json"));
  };

  if (*health) return get("/admin/v1/health");
  if (*f_status) return get("/admin/v1/ferry");
  if (*stats) return get("/admin/v1/stats");
  if (*metrics) return get("/metrics");
  if (*status) return get("/admin/v1/messages/" + url_encode(id));
  // The filters as a query ("&destination=...&doc_type=..."); --state only when given.
  auto filter_query = [&](const std::string& state) {
    std::string q;
    auto add = [&](const char* k, const std::string& v) {
      if (!v.empty()) q += std::string("&") + k + "=" + url_encode(v);
    };
    add("destination", destination);
    add("doc_type", f_doc_type);
    add("sender", f_sender);
    add("state", state);
    add("case_id", f_case);
    add("from", f_from);
    add("to", f_to);
    add("cursor", cursor);
    return q;
  };
  if (*messages) {
    return get("/admin/v1/messages?limit=" + std::to_string(limit) + filter_query(f_state));
  }
  if (*dead_list) {
    return get("/admin/v1/messages?limit=" + std::to_string(limit) + filter_query("dead"));
  }
  if (*dead_redrive || *dead_discard) {
    const bool redrive = dead_redrive->parsed();
    if (all == !id.empty()) {
      std::cerr << "sluicectl: name one message (and --destination), or --all with filters\n";
      return 2;
    }
    if (all) {
      return post(std::string("/admin/v1/dead-letters/") + (redrive ? "redrive" : "discard") +
                      "?limit=" + std::to_string(limit == 100 ? 10'000 : limit) +
                      (dry_run_bulk ? "&dry_run=1" : "") + filter_query("") +
                      (redrive ? "" : "&reason=" + url_encode(discard_reason)),
                  "");
    }
    if (destination.empty()) {
      std::cerr << "sluicectl: --destination is required with a message id\n";
      return 2;
    }
    return post("/admin/v1/messages/" + url_encode(id) + (redrive ? "/redrive" : "/discard") +
                    "?destination=" + url_encode(destination) +
                    (redrive ? "" : "&reason=" + url_encode(discard_reason)),
                "");
  }
  if (*q_list) return get("/admin/v1/quarantine?limit=" + std::to_string(limit));
  if (*q_show) return get("/admin/v1/quarantine/" + url_encode(id));
  if (*q_resubmit) {
    std::string body;
    if (!file.empty()) {
      auto content = sluice::read_file(file);
      if (!content) {
        std::cerr << "sluicectl: " << content.error().message << "\n";
        return 2;
      }
      body = json::serialize(json::object{{"content", *content}});
    }
    return post("/admin/v1/quarantine/" + url_encode(id) + "/resubmit", body);
  }
  if (*q_discard) {
    return post("/admin/v1/quarantine/" + url_encode(id) + "/discard",
                json::serialize(json::object{{"reason", reason}}));
  }
  if (*a_verify) return get("/admin/v1/audit/verify");
  if (*a_tail) return get("/admin/v1/audit?n=" + std::to_string(n));
  if (*tls_reload) return post("/admin/v1/tls/reload", "");
  if (*backup) return post("/admin/v1/backup", json::serialize(json::object{{"dir", dir}}));
  if (*config) {
    const std::string base = "/admin/v1/config";
    const std::string dry = dry_run ? "?dry_run=1" : "";
    std::string fields;
    for (const auto& f : c_fields) fields += f + "\n";
    auto send = [&](const char* method, const std::string& target, const std::string& body) {
      return show(client.request(method, target, body, "application/toml"));
    };
    const std::string object = base + "/" + url_encode(c_kind);
    // A key may hold '/' (a sender's node/system): the gateway takes the rest of the path.
    const std::string key = url_encode(c_key);
    if (*c_list) return get(object);
    if (*c_show) return get(object + "/" + key);
    if (*c_add) return send("POST", object + dry, fields);
    if (*c_update) return send("PUT", object + "/" + key + dry, fields);
    if (*c_remove) return send("DELETE", object + "/" + key + dry, "");
    if (*c_history) return get(base + "/history?limit=" + std::to_string(n == 0 ? 20 : n));
    if (*c_diff) {
      return get(base + "/diff?from=" + std::to_string(c_from) + "&to=" + std::to_string(c_to));
    }
    if (*c_rollback) {
      return send(
          "POST",
          base + "/rollback?version=" + std::to_string(c_version) + (dry_run ? "&dry_run=1" : ""),
          "");
    }
    if (*c_export) {
      auto r =
          client.request("GET", base + (c_version ? "?version=" + std::to_string(c_version) : ""));
      if (!r || r->status != 200) return show(r);
      boost::system::error_code ec;
      auto v = json::parse(r->body, ec);
      const json::value* toml = !ec && v.is_object() ? v.as_object().if_contains("toml") : nullptr;
      if (toml == nullptr || !toml->is_string()) {
        std::cerr << "sluicectl: the gateway's answer holds no configuration\n";
        return 1;
      }
      std::cout << toml->as_string().c_str();
      return 0;
    }
    if (*c_import) {
      auto content = sluice::read_file(c_file);
      if (!content) {
        std::cerr << "sluicectl: " << content.error().message << "\n";
        return 2;
      }
      return send("POST", base + "/import" + dry, *content);
    }
  }
  return 2;
}
