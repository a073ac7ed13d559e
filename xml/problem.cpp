#include "xml/problem.h"

#include "common/pii.h"

namespace sluice::xml {

Problem make_problem(std::string code, std::string field, std::string path, int line,
                     std::string message) {
  return Problem{
      std::move(code), std::move(field), std::move(path), line, -1, mask_personal_data(message)};
}

std::string describe(const Problem& p) {
  std::string out;
  if (p.record >= 0) {
    out += "record " + std::to_string(p.record) + ", ";
  }
  if (p.line > 0) {
    out += "line " + std::to_string(p.line) + ", ";
  }
  if (!p.path.empty()) {
    out += p.path + ": ";
  } else if (!p.field.empty()) {
    out += p.field + ": ";
  }
  out += p.message;
  return out;
}

std::string describe(const Problems& ps, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < ps.size() && i < max; ++i) {
    if (i > 0) out += "; ";
    out += describe(ps[i]);
  }
  if (ps.size() > max) {
    out += "; and " + std::to_string(ps.size() - max) + " more";
  }
  return out;
}

}  // namespace sluice::xml
