// Exclusive XML Canonicalization 1.0 without comments (libxml2). The whole-document form
// needs no node set, which is what makes the gateway's signature profile fast.
#pragma once

#include <libxml/tree.h>

#include <string>

#include "common/error.h"

namespace sluice::trust {

// The canonical form of the whole document (the enveloped signature must already be
// detached when the result is used as a Reference digest).
Result<std::string> canonical_document(xmlDoc* doc);
// The canonical form of one element and its subtree, as it would be inside its document.
Result<std::string> canonical_element(xmlNode* element);

}  // namespace sluice::trust
