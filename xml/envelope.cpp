#include "xml/envelope.h"

#include <array>
#include <cstring>

#include "common/encoding.h"
#include "xml/parse.h"

namespace sluice::xml {
namespace {

struct DocTypeInfo {
  std::string_view doc_type;
  const char* element;
  const char* ns;
};

constexpr std::array<DocTypeInfo, 21> kDocTypes{{
    {"case.register", "CaseRegister", kCaseNs},
    {"case.accept", "CaseAccept", kCaseNs},
    {"case.undertake", "CaseUndertake", kCaseNs},
    {"case.review", "CaseReview", kCaseNs},
    {"case.approve", "CaseApprove", kCaseNs},
    {"case.conclude", "CaseConclude", kCaseNs},
    {"case.supplement-notice", "CaseSupplementNotice", kCaseNs},
    {"case.supplement-received", "CaseSupplementReceived", kCaseNs},
    {"case.special-procedure", "CaseSpecialProcedure", kCaseNs},
    {"case.reject", "CaseReject", kCaseNs},
    {"case.fee", "CaseFee", kCaseNs},
    {"case.rating", "CaseRating", kCaseNs},
    {"public.application", "Application", kPublicNs},
    {"public.complaint", "Complaint", kPublicNs},
    {"public.consultation", "Consultation", kPublicNs},
    {"public.reply", "Reply", kPublicNs},
    {"public.case-status", "CaseStatus", kPublicNs},
    {"catalog.item", "CatalogItem", kCatalogNs},
    {"stats.report", "StatsReport", kStatsNs},
    {"feedback.result", "FeedbackResult", kFeedbackNs},
    {"receipt", "Receipt", kReceiptNs},
}};

Problem missing(xmlNode* parent, const char* field) {
  return make_problem("envelope.missing-field", field, node_path(parent), xmlGetLineNo(parent),
                      std::string("required field ") + field + " is missing or empty");
}

bool read_address(xmlNode* parent, const char* name, NodeAddress& out, Problems& problems) {
  xmlNode* n = child(parent, kEnvelopeNs, name);
  if (n == nullptr) {
    problems.push_back(missing(parent, name));
    return false;
  }
  out.node = trim_xml_space(text(child(n, kCommonNs, "Node")));
  out.system = trim_xml_space(text(child(n, kCommonNs, "System")));
  bool ok = true;
  if (out.node.empty()) {
    problems.push_back(missing(n, "Node"));
    ok = false;
  }
  if (out.system.empty()) {
    problems.push_back(missing(n, "System"));
    ok = false;
  }
  return ok;
}

xmlNs* envelope_ns(Envelope& env) { return env.root->ns; }

}  // namespace

std::vector<std::string_view> doc_types() {
  std::vector<std::string_view> out;
  for (const auto& d : kDocTypes) out.emplace_back(d.doc_type);
  return out;
}

const char* body_element_for(std::string_view doc_type, const char** ns) {
  for (const auto& info : kDocTypes) {
    if (info.doc_type == doc_type) {
      if (ns != nullptr) *ns = info.ns;
      return info.element;
    }
  }
  return nullptr;
}

std::string Envelope::ordering_key() const {
  if (case_id.empty()) {
    return {};
  }
  return region + "/" + case_id;
}

std::expected<Envelope, Problems> read_envelope(xmlDoc* doc) {
  Problems problems;
  Envelope env;
  env.root = xmlDocGetRootElement(doc);
  if (!is(env.root, kEnvelopeNs, "Envelope")) {
    std::string got = env.root != nullptr ? reinterpret_cast<const char*>(env.root->name) : "";
    problems.push_back(make_problem("envelope.not-an-envelope", "Envelope", "/", 1,
                                    "the root element must be Envelope in namespace " +
                                        std::string(kEnvelopeNs) + ", found " + got));
    return std::unexpected(problems);
  }
  xmlNode* root = env.root;
  env.message_id = trim_xml_space(text(child(root, kEnvelopeNs, "MessageId")));
  env.sender_message_id = trim_xml_space(text(child(root, kEnvelopeNs, "SenderMessageId")));
  if (env.sender_message_id.empty()) {
    problems.push_back(missing(root, "SenderMessageId"));
  } else if (env.sender_message_id.size() > 128) {
    problems.push_back(make_problem("envelope.too-long", "SenderMessageId", node_path(root), 0,
                                    "SenderMessageId is longer than 128 characters"));
  }
  read_address(root, "Sender", env.sender, problems);
  read_address(root, "Receiver", env.receiver, problems);
  env.doc_type = trim_xml_space(text(child(root, kEnvelopeNs, "DocType")));
  if (env.doc_type.empty()) {
    problems.push_back(missing(root, "DocType"));
  }
  env.doc_version = trim_xml_space(text(child(root, kEnvelopeNs, "DocVersion")));
  if (env.doc_version.empty()) {
    problems.push_back(missing(root, "DocVersion"));
  }
  env.correlation_id = trim_xml_space(text(child(root, kEnvelopeNs, "CorrelationId")));
  xmlNode* created = child(root, kEnvelopeNs, "Created");
  env.created = trim_xml_space(text(created));
  if (env.created.empty()) {
    problems.push_back(missing(root, "Created"));
  } else if (auto ms = parse_datetime_ms(env.created)) {
    env.created_ms = *ms;
  } else {
    problems.push_back(make_problem("envelope.bad-time", "Created", node_path(created),
                                    xmlGetLineNo(created),
                                    "Created must be an xs:dateTime with an offset, e.g. "
                                    "2026-11-20T09:30:00+08:00"));
  }
  if (xmlNode* expires = child(root, kEnvelopeNs, "Expires")) {
    env.expires = trim_xml_space(text(expires));
    if (auto ms = parse_datetime_ms(env.expires)) {
      env.expires_ms = *ms;
    } else {
      problems.push_back(make_problem("envelope.bad-time", "Expires", node_path(expires),
                                      xmlGetLineNo(expires),
                                      "Expires must be an xs:dateTime with an offset"));
    }
  }
  env.priority = trim_xml_space(text(child(root, kEnvelopeNs, "Priority")));
  if (env.priority.empty()) {
    env.priority = "normal";
  }
  xmlNode* body = child(root, kEnvelopeNs, "Body");
  if (body == nullptr) {
    problems.push_back(missing(root, "Body"));
  } else {
    env.body = first_child_element(body);
    if (env.body == nullptr) {
      problems.push_back(make_problem("envelope.empty-body", "Body", node_path(body),
                                      xmlGetLineNo(body), "Body must hold one business document"));
    } else if (next_element(env.body) != nullptr) {
      problems.push_back(make_problem("envelope.body-count", "Body", node_path(body),
                                      xmlGetLineNo(body),
                                      "Body must hold exactly one business document"));
    } else {
      const char* ns =
          env.body->ns != nullptr ? reinterpret_cast<const char*>(env.body->ns->href) : nullptr;
      if (ns != nullptr) {
        env.case_id = trim_xml_space(text(child(env.body, ns, "CaseId")));
        env.region = trim_xml_space(text(child(env.body, ns, "Region")));
      }
    }
  }
  for (xmlNode* n = first_child_element(root); n != nullptr; n = next_element(n)) {
    if (n->ns != nullptr && std::strcmp(reinterpret_cast<const char*>(n->ns->href), kDsigNs) == 0) {
      env.envelope_dsig.push_back(n);
    }
  }
  if (!problems.empty()) {
    return std::unexpected(problems);
  }
  return env;
}

void set_message_id(Envelope& env, const std::string& id) {
  xmlNode* node =
      xmlNewDocNode(env.root->doc, envelope_ns(env), reinterpret_cast<const xmlChar*>("MessageId"),
                    reinterpret_cast<const xmlChar*>(id.c_str()));
  xmlNode* first = first_child_element(env.root);
  if (first != nullptr) {
    xmlAddPrevSibling(first, node);
  } else {
    xmlAddChild(env.root, node);
  }
  env.message_id = id;
}

void add_trace_hop(Envelope& env, const std::string& gateway, const std::string& at) {
  xmlNs* ns = envelope_ns(env);
  xmlNode* trace = child(env.root, kEnvelopeNs, "Trace");
  if (trace == nullptr) {
    trace = xmlNewDocNode(env.root->doc, ns, reinterpret_cast<const xmlChar*>("Trace"), nullptr);
    xmlNode* body = child(env.root, kEnvelopeNs, "Body");
    if (body != nullptr) {
      xmlAddPrevSibling(body, trace);
    } else {
      xmlAddChild(env.root, trace);
    }
  }
  xmlNode* hop = xmlNewChild(trace, ns, reinterpret_cast<const xmlChar*>("Hop"), nullptr);
  xmlNewTextChild(hop, ns, reinterpret_cast<const xmlChar*>("Gateway"),
                  reinterpret_cast<const xmlChar*>(gateway.c_str()));
  xmlNewTextChild(hop, ns, reinterpret_cast<const xmlChar*>("At"),
                  reinterpret_cast<const xmlChar*>(at.c_str()));
}

}  // namespace sluice::xml
