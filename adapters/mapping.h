// A mapping file (TOML) says how a department's records become standard documents:
//
//   adapter = "json"                      # json | csv | xslt | xml
//   doc_type = "case.accept"
//   receiver = "440600/supervision"
//   sender_message_id = "$.ywlsh"         # a source reference, or "content-hash"
//   records = "$.data.items"              # json: where the records are ("$" = one object)
//   [[field]]                             # output fields in document order
//   path = "Department/cm:Code"           # element path under the body element; "cm:" =
//   from = "$.blbm.dm"                    #   the common namespace, else the document's
//   const = "..."                         # a constant instead of `from`
//   map = { "1" = "自然人" }              # code-list translation
//   format = "datetime:yyyyMMddHHmmss"    # datetime:<pattern> | date | amount | trim
//   required = true                       # missing/empty -> a problem for the record
//   each = "$.materials"                  # repeated group: one element per item, with
//   fields = [ { path = "cm:Name", from = "@.mc" } ]   # item-relative sub-fields
//
// CSV adds: delimiter, quote, encoding (UTF-8 | GBK | GB18030), header (true); `from` names a
// column (pinyin codes such as SBLSH work as they are). XSLT adds: stylesheet.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace sluice::adapters {

// One element of a field's path: in the common namespace ("cm:") or the document's.
struct PathStep {
  bool common = false;
  std::string name;
};

struct FieldMapping {
  std::string path;             // as written, e.g. "Department/cm:Code"
  std::vector<PathStep> steps;  // the path, split once when the mapping is loaded
  std::string from;             // source reference
  std::optional<std::string> constant;
  std::map<std::string, std::string> value_map;
  std::string format;  // "", "datetime:<pattern>", "date", "amount", "trim"
  bool required = true;
  std::string each;                  // repeated group source
  std::string separator;             // csv: split a cell into items for `each`
  std::vector<FieldMapping> fields;  // sub-fields of a repeated group
};

struct Mapping {
  std::filesystem::path file;
  std::string adapter;
  std::string doc_type;
  std::string receiver;  // node/system
  std::string sender_message_id = "content-hash";
  std::string correlation_id;      // optional source reference
  std::string priority;            // optional: normal | high
  std::int64_t expires_hours = 0;  // optional: Expires = Created + this
  std::string records = "$";       // json
  std::vector<FieldMapping> fields;
  // csv
  char delimiter = ',';
  char quote = '"';
  std::string encoding = "UTF-8";
  bool header = true;
  // xslt
  std::filesystem::path stylesheet;
};

Result<Mapping> load_mapping(const std::filesystem::path& file);
Result<Mapping> parse_mapping(std::string_view toml_text, const std::filesystem::path& file);

}  // namespace sluice::adapters
