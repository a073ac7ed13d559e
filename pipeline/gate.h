// The gate rules (pipeline/config.h, GateConfig) applied to one document about to cross the
// ferry — on the sending half before it is stored for the ferry, and again on the receiving
// half when it arrives. Pure: says why a document may not cross, or nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pipeline/config.h"
#include "xml/problem.h"

typedef struct _xmlNode xmlNode;

namespace sluice::pipeline {

std::string_view to_string(Crossing c);

struct GateStop {
  std::string code;  // gate.doc-type, gate.too-large, gate.personal-data
  std::string message;
  xml::Problems problems;
};

// `body` is the business element (its text and attributes are scanned outbound).
std::optional<GateStop> check_gate(const GateConfig& gate, Crossing crossing,
                                   std::string_view doc_type, std::size_t bytes,
                                   const xmlNode* body);

}  // namespace sluice::pipeline
