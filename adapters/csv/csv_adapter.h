// The csv adapter: delimited text (a department's export) in UTF-8, GBK or GB18030, header
// row with column names (pinyin codes such as SBLSH, SXBM map as they are), one row -> one
// document. A bad row (wrong field count, bad encoding, missing value) is reported with its
// line number and does not stop the good rows.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/mapping.h"
#include "common/error.h"

namespace sluice::adapters::csv {

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping);

// One parsed row: fields, the line it starts on, and its text as received.
struct Row {
  std::vector<std::string> fields;
  int line = 0;
  std::string text;
  std::string error;  // non-empty: the row could not be parsed
};

// RFC 4180 parsing with a configurable delimiter and quote; `bad_lines` (1-based, sorted)
// mark lines whose bytes could not be decoded: a row touching one gets an error.
std::vector<Row> parse_rows(std::string_view text, char delimiter, char quote,
                            const std::vector<int>& bad_lines, std::size_t max_rows);

// Converts `input` from `encoding` to UTF-8 line by line; lines that fail are converted
// lossily (U+FFFD for bad bytes) and listed in `bad_lines`.
std::string to_utf8(std::string_view input, const std::string& encoding,
                    std::vector<int>& bad_lines);

}  // namespace sluice::adapters::csv
