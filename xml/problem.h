// A structured problem with an input document: what rule (code), where (record, line,
// XPath), which field, and a sentence for a human. The same Problem is returned in the HTTP
// answer, stored in the quarantine, and logged — with personal data masked (see mask()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::xml {

struct Problem {
  std::string code;          // e.g. "xml.not-well-formed", "schema.invalid", "check.id-number"
  std::string field;         // local name of the offending element or column, or empty
  std::string path;          // XPath of the node, or empty
  int line = 0;              // 1-based line in the input, 0 if unknown
  std::int64_t record = -1;  // 1-based record (CSV line, JSON array index + 1), -1 if n/a
  std::string message;       // human sentence (masked)
};
using Problems = std::vector<Problem>;

// Problem with its message masked of personal data.
Problem make_problem(std::string code, std::string field, std::string path, int line,
                     std::string message);
// "line 3, /env:Envelope/env:Body: <message>" — for logs and single-line errors.
std::string describe(const Problem& p);
std::string describe(const Problems& ps, std::size_t max = 5);

}  // namespace sluice::xml
