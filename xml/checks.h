// The checks XSD cannot make: real check characters of real identifiers, and consistency
// between fields of one document. Each returns true when the value is valid.
#pragma once

#include <string_view>

#include <libxml/tree.h>

#include "xml/problem.h"

namespace sluice::xml {

// GB 11643 resident identity number: 17 digits + ISO 7064 MOD 11-2 check character (0-9, X),
// a real province prefix and a real birth date.
bool valid_resident_id(std::string_view id);
// GB 32100 unified social credit code: 18 characters over the 31-character alphabet, the last
// the MOD 31 check character.
bool valid_credit_code(std::string_view code);
// GB/T 2260 region code: 6 digits with a real province (first two digits).
bool valid_region_code(std::string_view code);

// Runs every rule over a parsed envelope (or bare receipt); appends what it finds.
// Rules: R-DOCTYPE-BODY, R-IDCARD-CHECK, R-CREDIT-CHECK, R-REGION-CODE, R-SPECIAL-ORDER,
// R-CERT-VALIDITY, R-DAYS-ORDER, R-FEE-SUM (see schemas/README.md).
void check_semantics(xmlDoc* doc, Problems& problems);

}  // namespace sluice::xml
