#include "xml/checks.h"

#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>

#include "common/encoding.h"
#include "xml/envelope.h"
#include "xml/parse.h"

namespace sluice::xml {
namespace {

constexpr std::string_view kCreditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
constexpr std::array<int, 17> kCreditWeights{1,  3,  9,  27, 19, 26, 16, 17, 20,
                                             29, 25, 13, 8,  24, 10, 30, 28};
constexpr std::array<int, 17> kIdWeights{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
constexpr std::string_view kIdCheck = "10X98765432";

bool digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

int to_int(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool valid_province(int p) {
  return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) || (p >= 31 && p <= 37) ||
         (p >= 41 && p <= 46) || (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
         p == 81 || p == 82;
}

const char* ns_of(const xmlNode* n) {
  return n != nullptr && n->ns != nullptr ? reinterpret_cast<const char*>(n->ns->href) : "";
}

std::string local(const xmlNode* n) { return reinterpret_cast<const char*>(n->name); }

// First child element with this local name, in any namespace.
xmlNode* child_named(xmlNode* parent, const char* name) {
  for (xmlNode* c = first_child_element(parent); c != nullptr; c = next_element(c)) {
    if (std::strcmp(reinterpret_cast<const char*>(c->name), name) == 0) return c;
  }
  return nullptr;
}

std::string value(xmlNode* n) { return n == nullptr ? std::string() : trim_xml_space(text(n)); }

// Amount in fen (hundredths of a yuan); nullopt if not a decimal with <= 2 fraction digits.
std::optional<long long> fen(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = s[0] == '-';
  if (s[0] == '-' || s[0] == '+') s.remove_prefix(1);
  auto dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if ((!whole.empty() && !digits(whole)) || (!frac.empty() && !digits(frac)) || frac.size() > 2 ||
      whole.size() > 15) {
    return std::nullopt;
  }
  long long v = 0;
  for (char c : whole) v = v * 10 + (c - '0');
  v *= 100;
  if (frac.size() >= 1) v += (frac[0] - '0') * 10;
  if (frac.size() == 2) v += frac[1] - '0';
  return neg ? -v : v;
}

void add(Problems& out, const char* code, const char* rule, xmlNode* node, std::string message) {
  out.push_back(make_problem(code, local(node), node_path(node), xmlGetLineNo(node),
                             message + " (" + rule + ")"));
}

void walk(xmlNode* n, Problems& out) {
  for (xmlNode* e = first_child_element(n); e != nullptr; e = next_element(e)) {
    std::string name = local(e);
    bool in_common = std::strcmp(ns_of(e), kCommonNs) == 0;
    if (in_common && name == "IdNumber") {
      xmlNode* type = child_named(e->parent, "IdType");
      if (type != nullptr && value(type) == "居民身份证" && !valid_resident_id(value(e))) {
        add(out, "check.id-number", "R-IDCARD-CHECK", e,
            "resident ID number " + value(e) +
                " is not valid (GB 11643: check character, province or birth date)");
      }
    } else if (in_common && (name == "CreditCode" || (name == "Code" && e->parent != nullptr &&
                                                      (local(e->parent) == "Department" ||
                                                       local(e->parent) == "TargetDepartment")))) {
      if (!valid_credit_code(value(e))) {
        add(out, "check.credit-code", "R-CREDIT-CHECK", e,
            "unified social credit code " + value(e) + " has a wrong check character (GB 32100)");
      }
    } else if (name == "Region" || name == "Node") {
      std::string v = value(e);
      if (digits(v) && v.size() == 6 && !valid_region_code(v)) {
        add(out, "check.region-code", "R-REGION-CODE", e,
            "region code " + v + " names no province (GB/T 2260)");
      }
    } else if (name == "CaseSpecialProcedure") {
      xmlNode* start = child_named(e, "StartAt");
      xmlNode* end = child_named(e, "EndAt");
      auto s = start ? parse_datetime_ms(value(start)) : std::nullopt;
      auto t = end ? parse_datetime_ms(value(end)) : std::nullopt;
      if (s && t && *s > *t) {
        add(out, "check.time-order", "R-SPECIAL-ORDER", end, "EndAt is earlier than StartAt");
      }
    } else if (name == "CaseConclude") {
      xmlNode* cert = child_named(e, "Certificate");
      xmlNode* until = cert != nullptr ? child_named(cert, "ValidUntil") : nullptr;
      xmlNode* concluded = child_named(e, "ConcludedAt");
      auto u = until ? parse_datetime_ms(value(until)) : std::nullopt;
      auto c = concluded ? parse_datetime_ms(value(concluded)) : std::nullopt;
      if (u && c && *u < *c) {
        add(out, "check.certificate-validity", "R-CERT-VALIDITY", until,
            "the certificate's ValidUntil is earlier than ConcludedAt");
      }
    } else if (name == "CaseRegister" || name == "CatalogItem") {
      xmlNode* legal = child_named(e, "LegalDays");
      xmlNode* promised = child_named(e, "PromisedDays");
      if (legal != nullptr && promised != nullptr && digits(value(legal)) &&
          digits(value(promised)) && to_int(value(promised)) > to_int(value(legal))) {
        add(out, "check.days-order", "R-DAYS-ORDER", promised,
            "PromisedDays " + value(promised) + " exceeds LegalDays " + value(legal));
      }
    } else if (name == "CaseFee") {
      auto std_amount = fen(value(child_named(e, "StandardAmount")));
      auto charged = fen(value(child_named(e, "ChargedAmount")));
      auto reduction = fen(value(child_named(e, "ReductionAmount")));
      if (std_amount && charged && reduction && *charged + *reduction != *std_amount) {
        add(out, "check.fee-sum", "R-FEE-SUM", child_named(e, "ChargedAmount"),
            "ChargedAmount " + value(child_named(e, "ChargedAmount")) + " + ReductionAmount " +
                value(child_named(e, "ReductionAmount")) + " differs from StandardAmount " +
                value(child_named(e, "StandardAmount")));
      }
    }
    walk(e, out);
  }
}

}  // namespace

bool valid_resident_id(std::string_view id) {
  if (id.size() != 18 || !digits(id.substr(0, 17))) return false;
  if (!(digits(id.substr(17)) || id[17] == 'X')) return false;
  if (!valid_province(to_int(id.substr(0, 2)))) return false;
  int year = to_int(id.substr(6, 4)), month = to_int(id.substr(10, 2)),
      day = to_int(id.substr(12, 2));
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1900 || year > 2100 || month < 1 || month > 12 || day < 1 || day > kDays[month - 1]) {
    return false;
  }
  int sum = 0;
  for (std::size_t i = 0; i < 17; ++i) sum += (id[i] - '0') * kIdWeights[i];
  return id[17] == kIdCheck[sum % 11];
}

bool valid_credit_code(std::string_view code) {
  if (code.size() != 18) return false;
  int sum = 0;
  for (std::size_t i = 0; i < 18; ++i) {
    auto pos = kCreditAlphabet.find(code[i]);
    if (pos == std::string_view::npos) return false;
    if (i < 17) sum += static_cast<int>(pos) * kCreditWeights[i];
  }
  int check = 31 - sum % 31;
  return code[17] == kCreditAlphabet[check == 31 ? 0 : check];
}

bool valid_region_code(std::string_view code) {
  return code.size() == 6 && digits(code) && valid_province(to_int(code.substr(0, 2)));
}

void check_semantics(xmlDoc* doc, Problems& problems) {
  xmlNode* root = xmlDocGetRootElement(doc);
  if (root == nullptr) return;
  if (is(root, kEnvelopeNs, "Envelope")) {
    xmlNode* doc_type = child(root, kEnvelopeNs, "DocType");
    xmlNode* body = child(root, kEnvelopeNs, "Body");
    xmlNode* business = body != nullptr ? first_child_element(body) : nullptr;
    std::string dt = value(doc_type);
    const char* ns = nullptr;
    const char* element = body_element_for(dt, &ns);
    if (doc_type != nullptr && business != nullptr &&
        (element == nullptr || !is(business, ns, element))) {
      add(problems, "check.doctype-body", "R-DOCTYPE-BODY", doc_type,
          "DocType " + dt + " requires the Body to hold " +
              (element != nullptr ? std::string(element) : std::string("a known document")) +
              ", it holds " + local(business));
    }
  }
  walk(root, problems);
}

}  // namespace sluice::xml
