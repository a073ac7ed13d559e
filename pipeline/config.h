// What the pipeline is configured with: routes, sender permissions and the bounds of one
// document. Plain values, filled by the gateway's configuration loader.
#pragma once

#include <cstddef>
#include <cstdint>
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

// The gate between the two halves: what may cross the ferry, per direction. A document
// crosses only when a rule of its direction matches its DocType, it is no larger than the
// rule's bound and — outbound — it carries an 18-digit ID number or an 11-digit mobile number
// only in the fields the rule allows. No rule for a direction: nothing crosses that way.
enum class Crossing : std::uint8_t { kInbound, kOutbound };

struct GateRule {
  std::vector<std::string> doc_types;             // patterns as in routes
  std::size_t max_bytes = 1u << 20;               // the stored document, signature included
  std::vector<std::string> personal_data_fields;  // outbound: element local names allowed
};

struct GateConfig {
  std::vector<GateRule> inbound;   // outer -> inner
  std::vector<GateRule> outbound;  // inner -> outer
  std::string ferry_destination;   // the destination that crosses (kind ferry), if any
  bool outer = true;               // this half's side: what it sends crosses inbound
};

struct IngestOptions {
  std::string gateway_id = "sluice-outer";  // written into the Trace hop this half adds
  xml::ParseLimits xml;                     // max_bytes: the bound on one document
  // Peer gateways (sender identities, "node/system") whose documents arrive with a
  // MessageId and Trace already assigned; from anyone else such a document is refused.
  std::vector<std::string> peer_gateways;
  GateConfig gate;
};

}  // namespace sluice::pipeline
