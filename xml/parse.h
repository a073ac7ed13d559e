// Hardened parsing of untrusted XML with libxml2. No network, no DTD loading, no entity
// substitution; a DOCTYPE is refused before anything in it is read, so XXE, billion laughs
// and quadratic blowup never start. Size, depth, element and attribute counts are bounded.
// Comments and processing instructions are dropped (Comments::kStrip) or refused
// (Comments::kRefuse, for signed documents). Thread-safe: each call has its own context.
#pragma once

#include <libxml/tree.h>

#include <cstddef>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "xml/limits.h"
#include "xml/problem.h"

namespace sluice::xml {

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

// Process-wide setup, before threads start: initialises libxml2 (once) and installs an
// external-entity loader that refuses every URL except files under the allowed directories
// (each call adds `allowed_dir`, the schema or stylesheet directory; empty adds none).
void initialize(const std::filesystem::path& allowed_dir);

std::expected<DocPtr, Problem> parse(std::string_view bytes, const ParseLimits& limits);

// Serialises with an XML declaration, UTF-8, no reformatting.
std::string serialize(xmlDoc* doc);

// Element helpers (namespace-aware; ns may be nullptr for "no namespace").
xmlNode* first_child_element(xmlNode* parent);
xmlNode* next_element(xmlNode* node);
xmlNode* child(xmlNode* parent, const char* ns, const char* name);
bool is(const xmlNode* node, const char* ns, const char* name);
std::string text(const xmlNode* node);  // concatenated text content
std::string node_path(xmlNode* node);   // XPath for messages

}  // namespace sluice::xml
