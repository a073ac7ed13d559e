#include "pipeline/gate.h"

#include <libxml/tree.h>

#include <algorithm>

#include "pipeline/routes.h"

namespace sluice::pipeline {

namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

// What kind of personal number `text` holds, if any: a run of exactly 17 digits and a check
// character (0-9, X) is an ID number; exactly 11 digits starting 13..19 a mobile number.
std::optional<std::string_view> personal_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (!digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && digit(text[j])) ++j;
    std::size_t run = j - i;
    bool x = j < text.size() && (text[j] == 'X' || text[j] == 'x');
    if (run == 18 || (run == 17 && x)) return "an 18-digit ID number";
    if (run == 11 && text[i] == '1' && text[i + 1] >= '3' && text[i + 1] <= '9') {
      return "an 11-digit mobile number";
    }
    i = j + (x ? 1 : 0);
  }
  return std::nullopt;
}

std::string name_of(const xmlNode* n) {
  return n->name != nullptr ? reinterpret_cast<const char*>(n->name) : "";
}

std::string path_of(const xmlNode* n) {
  std::string path;
  for (const xmlNode* p = n; p != nullptr && p->type == XML_ELEMENT_NODE; p = p->parent) {
    std::string step = name_of(p);
    if (p->ns != nullptr && p->ns->prefix != nullptr) {
      step = std::string(reinterpret_cast<const char*>(p->ns->prefix)) + ":" + step;
    }
    path = "/" + step + path;
  }
  return path;
}

void scan(const xmlNode* element, const std::vector<std::string>& allowed, Crossing crossing,
          xml::Problems& out) {
  const std::string field = name_of(element);
  const bool may = std::find(allowed.begin(), allowed.end(), field) != allowed.end();
  auto stop = [&](std::string_view what, const std::string& where, int line) {
    out.push_back(xml::make_problem(
        "gate.personal-data", where, path_of(element), line,
        std::string(what) + " in " + where + " may not cross " + std::string(to_string(crossing)) +
            " (only in fields the gate rule allows: personal_data_fields)"));
  };
  for (const xmlAttr* a = element->properties; a != nullptr; a = a->next) {
    xmlChar* v = xmlNodeListGetString(element->doc, a->children, 1);
    if (v != nullptr) {
      const std::string attr = reinterpret_cast<const char*>(a->name);
      auto what = personal_number(reinterpret_cast<const char*>(v));
      xmlFree(v);
      if (what && std::find(allowed.begin(), allowed.end(), attr) == allowed.end()) {
        stop(*what, field + "/@" + attr, static_cast<int>(xmlGetLineNo(element)));
      }
    }
  }
  for (const xmlNode* c = element->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      scan(c, allowed, crossing, out);
    } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && !may &&
               c->content != nullptr) {
      if (auto what = personal_number(reinterpret_cast<const char*>(c->content))) {
        stop(*what, field, static_cast<int>(xmlGetLineNo(element)));
      }
    }
  }
}

bool rule_matches(const GateRule& r, std::string_view doc_type) {
  return std::any_of(r.doc_types.begin(), r.doc_types.end(),
                     [&](const std::string& p) { return pattern_matches(p, doc_type); });
}

}  // namespace

std::string_view to_string(Crossing c) { return c == Crossing::kInbound ? "inbound" : "outbound"; }

std::optional<GateStop> check_gate(const GateConfig& gate, Crossing crossing,
                                   std::string_view doc_type, std::size_t bytes,
                                   const xmlNode* body) {
  const auto& rules = crossing == Crossing::kInbound ? gate.inbound : gate.outbound;
  const std::string dir(to_string(crossing));
  const GateRule* rule = nullptr;
  for (const auto& r : rules) {
    if (rule_matches(r, doc_type)) {
      rule = &r;
      break;
    }
  }
  if (rule == nullptr) {
    return GateStop{"gate.doc-type",
                    "DocType " + std::string(doc_type) + " may not cross " + dir +
                        (rules.empty() ? " (no [[gate." + dir + "]] rule: the gate is closed)"
                                       : " (no [[gate." + dir + "]] rule names it)"),
                    {}};
  }
  if (bytes > rule->max_bytes) {
    return GateStop{"gate.too-large",
                    "a " + std::string(doc_type) + " of " + std::to_string(bytes) +
                        " bytes may not cross " + dir + ": the gate allows " +
                        std::to_string(rule->max_bytes),
                    {}};
  }
  if (crossing == Crossing::kOutbound && body != nullptr) {
    xml::Problems problems;
    scan(body, rule->personal_data_fields, crossing, problems);
    if (!problems.empty()) {
      std::string message =
          "personal data may not leave the internal network: " + xml::describe(problems, 3);
      return GateStop{"gate.personal-data", std::move(message), std::move(problems)};
    }
  }
  return std::nullopt;
}

}  // namespace sluice::pipeline
