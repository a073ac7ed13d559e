#include "adapters/builder.h"

#include <charconv>
#include <cstring>

#include "common/encoding.h"
#include "xml/envelope.h"

namespace sluice::adapters {
namespace {

const char* prefix_for(const char* ns) {
  if (std::strcmp(ns, xml::kCaseNs) == 0) return "case";
  if (std::strcmp(ns, xml::kPublicNs) == 0) return "pub";
  if (std::strcmp(ns, xml::kCatalogNs) == 0) return "cat";
  if (std::strcmp(ns, xml::kStatsNs) == 0) return "st";
  if (std::strcmp(ns, xml::kFeedbackNs) == 0) return "fb";
  return "rc";
}

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
const xmlChar* X(const std::string& s) { return reinterpret_cast<const xmlChar*>(s.c_str()); }

bool xml_safe(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

// Parses `value` by a pattern of yyyy MM dd HH mm ss and literal characters.
std::optional<std::string> format_datetime(std::string_view pattern, std::string_view value) {
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, s = 0;
  std::size_t vi = 0;
  for (std::size_t pi = 0; pi < pattern.size();) {
    auto take = [&](std::size_t n, int& out) {
      if (vi + n > value.size()) return false;
      for (std::size_t k = 0; k < n; ++k) {
        if (value[vi + k] < '0' || value[vi + k] > '9') return false;
      }
      std::from_chars(value.data() + vi, value.data() + vi + n, out);
      vi += n;
      return true;
    };
    std::string_view rest = pattern.substr(pi);
    bool ok = true;
    if (rest.starts_with("yyyy")) {
      ok = take(4, y);
      pi += 4;
    } else if (rest.starts_with("MM")) {
      ok = take(2, mo);
      pi += 2;
    } else if (rest.starts_with("dd")) {
      ok = take(2, d);
      pi += 2;
    } else if (rest.starts_with("HH")) {
      ok = take(2, h);
      pi += 2;
    } else if (rest.starts_with("mm")) {
      ok = take(2, mi);
      pi += 2;
    } else if (rest.starts_with("ss")) {
      ok = take(2, s);
      pi += 2;
    } else {
      ok = vi < value.size() && value[vi] == pattern[pi];
      ++vi;
      ++pi;
    }
    if (!ok) return std::nullopt;
  }
  if (vi != value.size() || y < 1900 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
      h > 23 || mi > 59 || s > 59) {
    return std::nullopt;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", y, mo, d, h, mi, s);
  return std::string(buf);
}

std::optional<std::string> format_amount(std::string_view v) {
  auto dot = v.find('.');
  std::string_view whole = v.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
  auto digits = [](std::string_view s) {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  if (whole.empty() || !digits(whole) || !digits(frac) || frac.size() > 2 || whole.size() > 15) {
    return std::nullopt;
  }
  std::string out(whole);
  out += '.';
  out += frac;
  out.append(2 - frac.size(), '0');
  return out;
}

// Finds (when the parent's last element child matches) or creates the container chain for
// all but the last step; returns the parent for the last step.
xmlNode* containers(xmlNode* parent, const std::vector<PathStep>& steps, const char* doc_href,
                    xmlNs* doc_ns, xmlNs* cm_ns) {
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    xmlNode* last = xmlGetLastChild(parent);
    while (last != nullptr && last->type != XML_ELEMENT_NODE) last = last->prev;
    const char* href = steps[i].common ? xml::kCommonNs : doc_href;
    if (last != nullptr && xml::is(last, href, steps[i].name.c_str())) {
      parent = last;
    } else {
      parent = xmlNewChild(parent, steps[i].common ? cm_ns : doc_ns, X(steps[i].name), nullptr);
    }
  }
  return parent;
}

struct Builder {
  const Mapping& mapping;
  const char* doc_ns_href;
  xmlNs* doc_ns;
  xmlNs* cm_ns;
  xml::Problems problems;

  void problem(const std::string& code, const FieldMapping& f, const std::string& message) {
    problems.push_back(
        xml::make_problem(code, f.path.substr(f.path.rfind('/') + 1), f.path, 0, message));
  }

  void fields(xmlNode* parent, const std::vector<FieldMapping>& list, const RecordView& rec) {
    for (const auto& f : list) {
      const auto& steps = f.steps;
      xmlNode* at = containers(parent, steps, doc_ns_href, doc_ns, cm_ns);
      xmlNs* ns = steps.back().common ? cm_ns : doc_ns;
      if (!f.each.empty()) {
        auto items = rec.each(f.each, f.separator);
        if (items.empty() && f.required) {
          problem("mapping.missing", f, "no items at " + f.each + " for " + f.path);
        }
        for (const auto& item : items) {
          xmlNode* el = xmlNewChild(at, ns, X(steps.back().name), nullptr);
          fields(el, f.fields, *item);
        }
        continue;
      }
      std::optional<std::string> raw = f.constant ? f.constant : rec.get(f.from);
      std::string v = raw ? trim_xml_space(*raw) : std::string();
      if (v.empty()) {
        if (f.required) {
          problem("mapping.missing", f,
                  "required value for " + f.path + " is missing (source " + f.from + ")");
        }
        continue;
      }
      auto converted = convert_value(f, std::move(v));
      if (!converted) {
        problem("mapping.value", f, converted.error() + " (source " + f.from + ")");
        continue;
      }
      xmlNewTextChild(at, ns, X(steps.back().name), X(*converted));
    }
  }
};

}  // namespace

std::expected<std::string, std::string> convert_value(const FieldMapping& f, std::string v) {
  v = trim_xml_space(std::move(v));
  if (!f.value_map.empty()) {
    auto it = f.value_map.find(v);
    if (it == f.value_map.end()) {
      return std::unexpected("value \"" + v + "\" of " + f.path + " is not in the code map");
    }
    v = it->second;
  }
  if (f.format.starts_with("datetime:")) {
    auto d = format_datetime(std::string_view(f.format).substr(9), v);
    if (!d) {
      return std::unexpected("\"" + v + "\" of " + f.path + " does not match " +
                             f.format.substr(9));
    }
    v = *d;
  } else if (f.format == "date") {
    auto d = format_datetime("yyyy-MM-dd", v);
    if (!d) d = format_datetime("yyyyMMdd", v);
    if (!d) return std::unexpected("\"" + v + "\" of " + f.path + " is not a date");
    v = d->substr(0, 10);
  } else if (f.format == "amount") {
    auto a = format_amount(v);
    if (!a) return std::unexpected("\"" + v + "\" of " + f.path + " is not an amount in yuan");
    v = *a;
  }
  if (!xml_safe(v)) {
    return std::unexpected("value of " + f.path + " contains a control character");
  }
  return v;
}

std::string content_id(std::string_view feed, std::string_view doc_type,
                       std::string_view canonical) {
  std::string material;
  material.reserve(feed.size() + doc_type.size() + canonical.size() + 2);
  material.append(feed).append("\n").append(doc_type).append("\n").append(canonical);
  std::string id = "h";
  id += std::string_view(sha256_hex(material)).substr(0, 40);
  return id;
}

namespace {

// Builds the envelope skeleton and returns (doc, body container).
std::pair<xml::DocPtr, xmlNode*> skeleton(const EnvelopeFields& f, const Context& ctx,
                                          xml::Problems& problems) {
  xml::DocPtr doc(xmlNewDoc(X("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, X("Envelope"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* env = xmlNewNs(root, X(xml::kEnvelopeNs), X("env"));
  xmlNs* cm = xmlNewNs(root, X(xml::kCommonNs), X("cm"));
  xmlSetNs(root, env);
  if (f.sender_message_id.empty()) {
    problems.push_back(xml::make_problem("mapping.missing", "SenderMessageId", "", 0,
                                         "the record has no value for SenderMessageId"));
  }
  xmlNewTextChild(root, env, X("SenderMessageId"), X(f.sender_message_id));
  xmlNode* sender = xmlNewChild(root, env, X("Sender"), nullptr);
  xmlNewTextChild(sender, cm, X("Node"), X(ctx.sender.node));
  xmlNewTextChild(sender, cm, X("System"), X(ctx.sender.system));
  auto slash = f.receiver.find('/');
  xmlNode* receiver = xmlNewChild(root, env, X("Receiver"), nullptr);
  xmlNewTextChild(receiver, cm, X("Node"), X(f.receiver.substr(0, slash)));
  xmlNewTextChild(receiver, cm, X("System"),
                  X(slash == std::string::npos ? std::string() : f.receiver.substr(slash + 1)));
  xmlNewTextChild(root, env, X("DocType"), X(f.doc_type));
  xmlNewTextChild(root, env, X("DocVersion"), X("1"));
  if (!f.correlation_id.empty()) {
    xmlNewTextChild(root, env, X("CorrelationId"), X(f.correlation_id));
  }
  std::string created = format_time_cn(ctx.now_ms);
  xmlNewTextChild(root, env, X("Created"), X(created));
  if (f.expires_hours > 0) {
    xmlNewTextChild(root, env, X("Expires"),
                    X(format_time_cn(ctx.now_ms + f.expires_hours * 3'600'000)));
  }
  if (!f.priority.empty()) {
    xmlNewTextChild(root, env, X("Priority"), X(f.priority));
  }
  xmlNode* body = xmlNewChild(root, env, X("Body"), nullptr);
  return {std::move(doc), body};
}

}  // namespace

std::expected<xml::DocPtr, xml::Problems> build_document(const Mapping& m, const RecordView& rec,
                                                         const Context& ctx) {
  xml::Problems problems;
  EnvelopeFields ef;
  ef.receiver = m.receiver;
  ef.doc_type = m.doc_type;
  ef.priority = m.priority;
  ef.expires_hours = m.expires_hours;
  if (m.sender_message_id == "content-hash") {
    ef.sender_message_id = content_id(ctx.feed, m.doc_type, rec.canonical());
  } else {
    ef.sender_message_id = trim_xml_space(rec.get(m.sender_message_id).value_or(""));
  }
  if (!m.correlation_id.empty()) {
    ef.correlation_id = trim_xml_space(rec.get(m.correlation_id).value_or(""));
  }
  auto [doc, body] = skeleton(ef, ctx, problems);
  const char* ns = nullptr;
  const char* element = xml::body_element_for(m.doc_type, &ns);
  xmlNode* root = xmlDocGetRootElement(doc.get());
  xmlNs* doc_ns = xmlNewNs(root, X(ns), X(prefix_for(ns)));
  xmlNs* cm_ns = xmlSearchNsByHref(doc.get(), root, X(xml::kCommonNs));
  xmlNode* business = xmlNewChild(body, doc_ns, X(element), nullptr);
  Builder b{m, ns, doc_ns, cm_ns, std::move(problems)};
  b.fields(business, m.fields, rec);
  if (!b.problems.empty()) {
    return std::unexpected(std::move(b.problems));
  }
  return std::move(doc);
}

std::expected<xml::DocPtr, xml::Problems> wrap_body(xmlNode* body, const EnvelopeFields& f,
                                                    const Context& ctx) {
  xml::Problems problems;
  if (xml::body_element_for(f.doc_type, nullptr) == nullptr) {
    problems.push_back(
        xml::make_problem("mapping.doc-type", "DocType", "", 0,
                          "\"" + f.doc_type + "\" is not a DocType of the standard"));
  }
  auto [doc, container] = skeleton(f, ctx, problems);
  if (!problems.empty()) {
    return std::unexpected(std::move(problems));
  }
  xmlNode* copy = xmlDocCopyNode(body, doc.get(), 1);
  if (copy == nullptr) {
    problems.push_back(xml::make_problem("mapping.internal", "", "", 0, "cannot copy the body"));
    return std::unexpected(std::move(problems));
  }
  xmlAddChild(container, copy);
  xmlReconciliateNs(doc.get(), copy);
  return std::move(doc);
}

}  // namespace sluice::adapters
