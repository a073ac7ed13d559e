#include "xml/parse.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlsave.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "common/encoding.h"

namespace sluice::xml {
namespace {

std::mutex g_allowed_mutex;
std::vector<std::filesystem::path> g_allowed_dirs;  // Guarded by g_allowed_mutex.
xmlExternalEntityLoader g_default_loader = nullptr;

bool allowed(const std::filesystem::path& canonical) {
  std::lock_guard lock(g_allowed_mutex);
  for (const auto& dir : g_allowed_dirs) {
    auto rel = canonical.lexically_relative(dir);
    if (!rel.empty() && *rel.begin() != "..") return true;
  }
  return false;
}

xmlParserInputPtr guarded_loader(const char* url, const char* id, xmlParserCtxtPtr ctxt) {
  if (url != nullptr) {
    std::string_view u(url);
    if (u.starts_with("file://")) {
      u.remove_prefix(7);
    }
    if (u.find("://") == std::string_view::npos) {
      std::error_code ec;
      auto canonical = std::filesystem::weakly_canonical(std::filesystem::path(u), ec);
      if (!ec && allowed(canonical)) {
        return g_default_loader(canonical.c_str(), id, ctxt);
      }
    }
  }
  // Everything else (network, files elsewhere, external DTDs and entities) is refused.
  return nullptr;
}

std::size_t line_at(std::string_view bytes, std::size_t pos) {
  return 1 + static_cast<std::size_t>(std::count(bytes.begin(), bytes.begin() + pos, '\n'));
}

// Counts the attributes (namespace declarations included) of every start tag in one linear
// pass over the bytes, before libxml2 sees them: libxml2 compares a tag's attributes pairwise,
// so a single element with 100,000 attributes costs seconds. Comments, CDATA sections,
// processing instructions and declarations are skipped; '<' cannot occur in an attribute
// value, and '=' outside quotes within a tag only assigns an attribute. Input that is not
// well-formed is left for libxml2 to describe.
std::optional<Problem> scan_attributes(std::string_view b, std::size_t max_per_element) {
  std::size_t i = 0;
  const std::size_t n = b.size();
  auto skip_past = [&](std::size_t from, std::string_view end) {
    std::size_t at = b.find(end, from);
    return at == std::string_view::npos ? n : at + end.size();
  };
  while ((i = b.find('<', i)) != std::string_view::npos) {
    std::string_view rest = b.substr(i);
    if (rest.starts_with("<!--")) {
      i = skip_past(i + 4, "-->");
    } else if (rest.starts_with("<![CDATA[")) {
      i = skip_past(i + 9, "]]>");
    } else if (rest.starts_with("<?")) {
      i = skip_past(i + 2, "?>");
    } else if (rest.starts_with("<!") || rest.starts_with("</")) {
      i = skip_past(i + 2, ">");
    } else {
      std::size_t count = 0;
      char quote = 0;
      std::size_t j = i + 1;
      for (; j < n; ++j) {
        char c = b[j];
        if (quote != 0) {
          if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == '=') {
          if (++count > max_per_element) {
            return make_problem("xml.too-many-attributes", "", "", static_cast<int>(line_at(b, i)),
                                "an element has more than " + std::to_string(max_per_element) +
                                    " attributes (the limit on one element)");
          }
        } else if (c == '>') {
          break;
        }
      }
      i = j + 1;
    }
  }
  return std::nullopt;
}

struct ParseState {
  const ParseLimits* limits;
  int depth = 0;
  std::size_t elements = 0;
  std::size_t attributes = 0;
  std::optional<Problem> problem;
  startElementNsSAX2Func start = nullptr;
  endElementNsSAX2Func end = nullptr;
};

ParseState* state_of(void* ctx) {
  return static_cast<ParseState*>(static_cast<xmlParserCtxtPtr>(ctx)->_private);
}

void stop(void* ctx, Problem p) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  ParseState* st = state_of(ctx);
  if (!st->problem) {
    p.line = xmlSAX2GetLineNumber(ctx);
    st->problem = std::move(p);
  }
  xmlStopParser(ctxt);
}

void on_internal_subset(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  stop(ctx, make_problem("xml.doctype-forbidden", "", "", 0,
                         "a DOCTYPE is not allowed (no DTDs or entity declarations are accepted)"));
}

void on_entity_decl(void* ctx, const xmlChar*, int, const xmlChar*, const xmlChar*, xmlChar*) {
  stop(ctx, make_problem("xml.entity-forbidden", "", "", 0, "entity declarations are not allowed"));
}

void on_reference(void* ctx, const xmlChar* name) {
  stop(ctx, make_problem("xml.entity-forbidden", "", "", 0,
                         "reference to undeclared entity &" +
                             std::string(reinterpret_cast<const char*>(name)) + ";"));
}

void on_start(void* ctx, const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri,
              int nb_namespaces, const xmlChar** namespaces, int nb_attributes, int nb_defaulted,
              const xmlChar** attributes) {
  ParseState* st = state_of(ctx);
  st->depth += 1;
  st->elements += 1;
  st->attributes += static_cast<std::size_t>(nb_attributes);
  const ParseLimits& lim = *st->limits;
  if (st->depth > lim.max_depth) {
    stop(ctx, make_problem(
                  "xml.too-deep", reinterpret_cast<const char*>(localname), "", 0,
                  "elements are nested deeper than the limit of " + std::to_string(lim.max_depth)));
    return;
  }
  if (st->elements > lim.max_elements) {
    stop(ctx, make_problem("xml.too-many-elements", "", "", 0,
                           "more than " + std::to_string(lim.max_elements) + " elements"));
    return;
  }
  if (static_cast<std::size_t>(nb_attributes + nb_namespaces) > lim.max_attributes_per_element) {
    stop(ctx,
         make_problem("xml.too-many-attributes", reinterpret_cast<const char*>(localname), "", 0,
                      "an element has more than " + std::to_string(lim.max_attributes_per_element) +
                          " attributes (the limit on one element)"));
    return;
  }
  if (st->attributes > lim.max_attributes) {
    stop(ctx, make_problem("xml.too-many-attributes", "", "", 0,
                           "more than " + std::to_string(lim.max_attributes) + " attributes"));
    return;
  }
  st->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
            attributes);
}

void on_end(void* ctx, const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri) {
  ParseState* st = state_of(ctx);
  st->depth -= 1;
  st->end(ctx, localname, prefix, uri);
}

void on_comment_refused(void* ctx, const xmlChar*) {
  stop(ctx, make_problem("xml.comment-forbidden", "", "", 0,
                         "comments are not allowed in a signed document"));
}

void on_pi_refused(void* ctx, const xmlChar* target, const xmlChar*) {
  stop(ctx,
       make_problem("xml.pi-forbidden", "", "", 0,
                    "processing instruction <?" +
                        std::string(reinterpret_cast<const char*>(target)) + "?> is not allowed"));
}

void on_error(void*, xmlErrorPtr) {
  // Errors are read from the context after parsing; nothing goes to stderr.
}

struct CtxtFree {
  void operator()(xmlParserCtxtPtr c) const { xmlFreeParserCtxt(c); }
};

}  // namespace

void initialize(const std::filesystem::path& allowed_dir) {
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    g_default_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(guarded_loader);
  });
  if (!allowed_dir.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::weakly_canonical(allowed_dir, ec);
    std::lock_guard lock(g_allowed_mutex);
    if (!ec &&
        std::find(g_allowed_dirs.begin(), g_allowed_dirs.end(), dir) == g_allowed_dirs.end()) {
      g_allowed_dirs.push_back(dir);
    }
  }
}

std::expected<DocPtr, Problem> parse(std::string_view bytes, const ParseLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return std::unexpected(make_problem("xml.too-large", "", "", 0,
                                        "document is " + std::to_string(bytes.size()) +
                                            " bytes, more than the limit of " +
                                            std::to_string(limits.max_bytes)));
  }
  if (bytes.empty()) {
    return std::unexpected(make_problem("xml.empty", "", "", 0, "the document is empty"));
  }
  if (auto p = scan_attributes(bytes, limits.max_attributes_per_element)) {
    return std::unexpected(std::move(*p));
  }
  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt || ctxt->sax == nullptr) {
    return std::unexpected(make_problem("xml.internal", "", "", 0, "out of memory"));
  }
  ParseState state{.limits = &limits};
  xmlSAXHandler* sax = ctxt->sax;
  state.start = sax->startElementNs;
  state.end = sax->endElementNs;
  sax->startElementNs = on_start;
  sax->endElementNs = on_end;
  sax->internalSubset = on_internal_subset;
  sax->externalSubset = nullptr;
  sax->entityDecl = on_entity_decl;
  sax->reference = on_reference;
  sax->getEntity = nullptr;
  sax->getParameterEntity = nullptr;
  sax->resolveEntity = nullptr;
  sax->serror = on_error;
  sax->error = nullptr;
  sax->warning = nullptr;
  if (limits.comments == Comments::kStrip) {
    sax->comment = nullptr;
    sax->processingInstruction = nullptr;
  } else {
    sax->comment = on_comment_refused;
    sax->processingInstruction = on_pi_refused;
  }
  ctxt->_private = &state;
  const int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
  xmlDoc* doc = xmlCtxtReadMemory(ctxt.get(), bytes.data(), static_cast<int>(bytes.size()),
                                  "input.xml", nullptr, options);
  DocPtr owned(doc);
  if (state.problem) {
    return std::unexpected(std::move(*state.problem));
  }
  if (!owned || !ctxt->wellFormed) {
    const xmlError* err = xmlCtxtGetLastError(ctxt.get());
    std::string msg = err != nullptr && err->message != nullptr
                          ? trim_xml_space(err->message)
                          : "the document is not well-formed XML";
    return std::unexpected(make_problem("xml.not-well-formed", "", "",
                                        err != nullptr ? err->line : 0,
                                        "not well-formed XML: " + msg));
  }
  if (xmlDocGetRootElement(owned.get()) == nullptr) {
    return std::unexpected(make_problem("xml.not-well-formed", "", "", 0, "no root element"));
  }
  return owned;
}

std::string serialize(xmlDoc* doc) {
  xmlChar* mem = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
  std::string out;
  if (mem != nullptr) {
    out.assign(reinterpret_cast<const char*>(mem), static_cast<std::size_t>(size));
    xmlFree(mem);
  }
  return out;
}

xmlNode* first_child_element(xmlNode* parent) {
  for (xmlNode* n = parent != nullptr ? parent->children : nullptr; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) {
      return n;
    }
  }
  return nullptr;
}

xmlNode* next_element(xmlNode* node) {
  for (xmlNode* n = node != nullptr ? node->next : nullptr; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) {
      return n;
    }
  }
  return nullptr;
}

bool is(const xmlNode* node, const char* ns, const char* name) {
  if (node == nullptr || node->type != XML_ELEMENT_NODE ||
      std::strcmp(reinterpret_cast<const char*>(node->name), name) != 0) {
    return false;
  }
  const char* node_ns =
      node->ns != nullptr ? reinterpret_cast<const char*>(node->ns->href) : nullptr;
  if (ns == nullptr || node_ns == nullptr) {
    return ns == node_ns;
  }
  return std::strcmp(ns, node_ns) == 0;
}

xmlNode* child(xmlNode* parent, const char* ns, const char* name) {
  for (xmlNode* n = first_child_element(parent); n != nullptr; n = next_element(n)) {
    if (is(n, ns, name)) {
      return n;
    }
  }
  return nullptr;
}

std::string text(const xmlNode* node) {
  if (node == nullptr) {
    return {};
  }
  xmlChar* content = xmlNodeGetContent(node);
  std::string out = content != nullptr ? reinterpret_cast<const char*>(content) : "";
  xmlFree(content);
  return out;
}

std::string node_path(xmlNode* node) {
  xmlChar* p = xmlGetNodePath(node);
  std::string out = p != nullptr ? reinterpret_cast<const char*>(p) : "";
  xmlFree(p);
  return out;
}

}  // namespace sluice::xml
