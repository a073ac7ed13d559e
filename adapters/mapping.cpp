#include "adapters/mapping.h"

#include <toml++/toml.h>

#include <set>
#include <sstream>

#include "common/fs.h"
#include "xml/envelope.h"

namespace sluice::adapters {
namespace {

std::string at(const toml::node& n) { return "line " + std::to_string(n.source().begin.line); }

Result<FieldMapping> read_field(const toml::table& t, const std::string& where, int depth) {
  static const std::set<std::string> kKeys = {"path",     "from", "const",     "map",   "format",
                                              "required", "each", "separator", "fields"};
  for (const auto& [k, v] : t) {
    if (!kKeys.contains(std::string(k.str()))) {
      return fail(Errc::kInvalidArgument,
                  where + ": unknown key " + std::string(k.str()) + " (" + at(v) + ")");
    }
  }
  FieldMapping f;
  f.path = t["path"].value_or(std::string());
  if (f.path.empty()) {
    return fail(Errc::kInvalidArgument, where + ": a field needs a path (" + at(t) + ")");
  }
  for (std::size_t start = 0; start <= f.path.size();) {
    std::size_t slash = f.path.find('/', start);
    std::string part =
        f.path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    PathStep step;
    step.common = part.starts_with("cm:");
    step.name = step.common ? part.substr(3) : part;
    if (step.name.empty()) {
      return fail(Errc::kInvalidArgument,
                  where + ": path " + f.path + " has an empty step (" + at(t) + ")");
    }
    f.steps.push_back(std::move(step));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  f.from = t["from"].value_or(std::string());
  if (auto c = t["const"].value<std::string>()) f.constant = *c;
  f.format = t["format"].value_or(std::string());
  f.required = t["required"].value_or(true);
  f.each = t["each"].value_or(std::string());
  f.separator = t["separator"].value_or(std::string());
  if (const toml::table* m = t["map"].as_table()) {
    for (const auto& [k, v] : *m) {
      auto s = v.value<std::string>();
      if (!s) {
        return fail(Errc::kInvalidArgument, where + ": map values must be strings (" + at(v) + ")");
      }
      f.value_map.emplace(std::string(k.str()), *s);
    }
  }
  if (!f.format.empty() && f.format != "date" && f.format != "amount" && f.format != "trim" &&
      !f.format.starts_with("datetime:")) {
    return fail(
        Errc::kInvalidArgument,
        where + ": format must be datetime:<pattern>, date, amount or trim (" + at(t) + ")");
  }
  if (const toml::array* subs = t["fields"].as_array()) {
    if (f.each.empty()) {
      return fail(Errc::kInvalidArgument, where + ": sub-fields need `each` (" + at(t) + ")");
    }
    if (depth > 2) {
      return fail(Errc::kInvalidArgument, where + ": repeated groups nest at most 2 deep");
    }
    for (const auto& s : *subs) {
      const toml::table* st = s.as_table();
      if (st == nullptr) {
        return fail(Errc::kInvalidArgument, where + ": fields must be tables (" + at(s) + ")");
      }
      auto sub = read_field(*st, where + "." + f.path, depth + 1);
      if (!sub) return fail(sub.error());
      f.fields.push_back(std::move(*sub));
    }
  } else if (f.from.empty() && !f.constant) {
    return fail(Errc::kInvalidArgument,
                where + ": field " + f.path + " needs `from` or `const` (" + at(t) + ")");
  }
  return f;
}

}  // namespace

Result<Mapping> parse_mapping(std::string_view text, const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "cannot parse mapping " << file.string() << " (line " << e.source().begin.line
        << "): " << e.description();
    return fail(Errc::kInvalidArgument, msg.str());
  }
  static const std::set<std::string> kKeys = {
      "adapter",        "doc_type",   "receiver",      "sender_message_id",
      "correlation_id", "priority",   "expires_hours", "records",
      "field",          "delimiter",  "quote",         "encoding",
      "header",         "stylesheet", "description"};
  std::string where = "mapping " + file.string();
  for (const auto& [k, v] : root) {
    if (!kKeys.contains(std::string(k.str()))) {
      return fail(Errc::kInvalidArgument,
                  where + ": unknown key " + std::string(k.str()) + " (" + at(v) + ")");
    }
  }
  Mapping m;
  m.file = file;
  m.adapter = root["adapter"].value_or(std::string());
  m.doc_type = root["doc_type"].value_or(std::string());
  m.receiver = root["receiver"].value_or(std::string());
  m.sender_message_id = root["sender_message_id"].value_or(std::string("content-hash"));
  m.correlation_id = root["correlation_id"].value_or(std::string());
  m.priority = root["priority"].value_or(std::string());
  m.expires_hours = root["expires_hours"].value_or(std::int64_t{0});
  m.records = root["records"].value_or(std::string("$"));
  std::string delimiter = root["delimiter"].value_or(std::string(","));
  std::string quote = root["quote"].value_or(std::string("\""));
  if (delimiter == "\\t" || delimiter == "tab") delimiter = "\t";
  if (delimiter.size() != 1 || quote.size() != 1) {
    return fail(Errc::kInvalidArgument, where + ": delimiter and quote must be one character");
  }
  m.delimiter = delimiter[0];
  m.quote = quote[0];
  m.encoding = root["encoding"].value_or(std::string("UTF-8"));
  m.header = root["header"].value_or(true);
  if (auto s = root["stylesheet"].value<std::string>()) {
    std::filesystem::path p(*s);
    m.stylesheet = p.is_absolute() ? p : file.parent_path() / p;
  }
  if (m.adapter.empty()) {
    return fail(Errc::kInvalidArgument, where + ": `adapter` is required");
  }
  if (m.adapter != "xslt" && m.adapter != "xml") {
    if (m.doc_type.empty() || xml::body_element_for(m.doc_type, nullptr) == nullptr) {
      return fail(
          Errc::kInvalidArgument,
          where + ": `doc_type` must name a DocType of the standard, got \"" + m.doc_type + "\"");
    }
    auto slash = m.receiver.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == m.receiver.size()) {
      return fail(Errc::kInvalidArgument, where + ": `receiver` must be node/system");
    }
  }
  if (m.encoding != "UTF-8" && m.encoding != "GBK" && m.encoding != "GB18030") {
    return fail(Errc::kInvalidArgument, where + ": encoding must be UTF-8, GBK or GB18030");
  }
  if (const toml::array* fields = root["field"].as_array()) {
    for (const auto& f : *fields) {
      const toml::table* t = f.as_table();
      if (t == nullptr) {
        return fail(Errc::kInvalidArgument, where + ": [[field]] must be tables");
      }
      auto fm = read_field(*t, where, 0);
      if (!fm) return fail(fm.error());
      m.fields.push_back(std::move(*fm));
    }
  }
  return m;
}

Result<Mapping> load_mapping(const std::filesystem::path& file) {
  auto text = read_file(file, 1u << 20);
  if (!text) return fail(text.error());
  return parse_mapping(*text, file);
}

}  // namespace sluice::adapters
