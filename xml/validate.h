// Validation of standard documents: the XSD set in schemas/ (compiled once at load, shared
// read-only by every thread; each call gets its own validation context), then the checks XSD
// cannot make (checks.h). Problems carry code, XPath, line, field and a masked sentence.
#pragma once

#include <libxml/tree.h>

#include <filesystem>
#include <memory>

#include "common/error.h"
#include "xml/problem.h"

namespace sluice::xml {

class Validator {
 public:
  // Compiles schemas/envelope-1.xsd (which imports every body schema) and receipt-1.xsd.
  // xml::initialize(schema_dir) must have run (it confines schema loading to that folder).
  static Result<std::unique_ptr<Validator>> load(const std::filesystem::path& schema_dir);
  ~Validator();
  Validator(const Validator&) = delete;
  Validator& operator=(const Validator&) = delete;

  // XSD (envelope or bare receipt) then semantic checks; empty when valid. Thread-safe.
  Problems validate(xmlDoc* doc) const;
  Problems validate_schema(xmlDoc* doc) const;

  static constexpr std::size_t kMaxProblems = 50;

  class Impl;

 private:
  explicit Validator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::xml
