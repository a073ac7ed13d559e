// The Sluice exchange envelope (schemas/envelope-1.xsd): reading the fields every stage
// needs from a parsed document, and the few edits a gateway makes (MessageId, Trace hop).
// Reading checks presence and shape of what routing and idempotency rely on; full XSD
// validation is validate.h's job.
#pragma once

#include <libxml/tree.h>

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "xml/problem.h"

namespace sluice::xml {

inline constexpr const char* kEnvelopeNs = "urn:sluice:xs:envelope:1";
inline constexpr const char* kCommonNs = "urn:sluice:xs:common:1";
inline constexpr const char* kCaseNs = "urn:sluice:xs:case:1";
inline constexpr const char* kPublicNs = "urn:sluice:xs:public:1";
inline constexpr const char* kCatalogNs = "urn:sluice:xs:catalog:1";
inline constexpr const char* kStatsNs = "urn:sluice:xs:stats:1";
inline constexpr const char* kFeedbackNs = "urn:sluice:xs:feedback:1";
inline constexpr const char* kReceiptNs = "urn:sluice:xs:receipt:1";
inline constexpr const char* kDsigNs = "http://www.w3.org/2000/09/xmldsig#";

struct NodeAddress {
  std::string node;    // region code of the exchange node, e.g. 440604
  std::string system;  // system code, e.g. approval
  std::string str() const { return node + "/" + system; }
};

struct Envelope {
  std::string message_id;  // empty when not yet assigned
  std::string sender_message_id;
  NodeAddress sender;
  NodeAddress receiver;
  std::string doc_type;
  std::string doc_version;
  std::string correlation_id;
  std::string created;
  std::int64_t created_ms = 0;
  std::string expires;
  std::int64_t expires_ms = 0;  // 0: none
  std::string priority;         // normal (default) or high
  xmlNode* root = nullptr;
  xmlNode* body = nullptr;  // the one business document element inside Body
  std::string case_id;      // CaseId of the body when it has one
  std::string region;       // Region of the body when it has one
  // Elements of the XML-DSig namespace directly under the Envelope, in document order.
  // That place is the gateway's signature alone: senders may not put anything there.
  std::vector<xmlNode*> envelope_dsig;

  // "<region>/<case id>" for case documents, empty otherwise: the per-case order key.
  std::string ordering_key() const;
};

// Reads and checks the envelope of `doc`. Problems name the missing or malformed field.
std::expected<Envelope, Problems> read_envelope(xmlDoc* doc);

// Inserts <env:MessageId> as the first child (the envelope must not have one yet).
void set_message_id(Envelope& env, const std::string& id);
// Appends a Trace hop (creating Trace before Body if needed).
void add_trace_hop(Envelope& env, const std::string& gateway, const std::string& at);

// Body element local name for a DocType ("case.accept" -> "CaseAccept") and its namespace;
// nullptr for an unknown DocType.
const char* body_element_for(std::string_view doc_type, const char** ns);
// Every DocType of the exchange standard, in its order ("case.register", ..., "receipt").
std::vector<std::string_view> doc_types();

}  // namespace sluice::xml
