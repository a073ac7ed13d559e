// What the pipeline is configured with: routes, sender permissions and the bounds of one
// document. Plain values, filled by the gateway's configuration loader.
#pragma once

#include <string>
#include <vector>

#include "xml/limits.h"

namespace sluice::pipeline {

struct RouteConfig {
  std::string doc_type = "*";  // exact, "*", or a prefix pattern like "case.*"
  std::string sender = "*";    // "node/system", "node/*" or "*"
  std::string receiver = "*";
  std::vector<std::string> destinations;
};

// What an authenticated sender may do. Patterns as in routes ("*", "case.*", "440600/*").
struct SenderConfig {
  std::string id;  // "node/system" from its certificate
  std::vector<std::string> doc_types{"*"};
  std::vector<std::string> receivers{"*"};
  std::vector<std::string> feeds;  // feed names it may submit to
};

struct IngestOptions {
  std::string gateway_id = "sluice-outer";  // written into the Trace hop this half adds
  xml::ParseLimits xml;                     // max_bytes: the bound on one document
  // Peer gateways (sender identities, "node/system") whose documents arrive with a
  // MessageId and Trace already assigned; from anyone else such a document is refused.
  std::vector<std::string> peer_gateways;
};

}  // namespace sluice::pipeline
