#include "adapters/xslt/xslt_adapter.h"

#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/xslt.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/xsltutils.h>

#include <mutex>

#include "adapters/builder.h"
#include "common/fs.h"

namespace sluice::adapters::xslt {
namespace {

struct StyleFree {
  void operator()(xsltStylesheetPtr s) const { xsltFreeStylesheet(s); }
};
struct PrefsFree {
  void operator()(xsltSecurityPrefsPtr p) const { xsltFreeSecurityPrefs(p); }
};
struct TransformFree {
  void operator()(xsltTransformContextPtr c) const { xsltFreeTransformContext(c); }
};

std::string attr(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  std::string out = v != nullptr ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return out;
}

void silent(void*, const char*, ...) {}

class XsltAdapter final : public Adapter {
 public:
  XsltAdapter(Mapping m, std::unique_ptr<xsltStylesheet, StyleFree> style,
              std::unique_ptr<xsltSecurityPrefs, PrefsFree> prefs)
      : mapping_(std::move(m)), style_(std::move(style)), prefs_(std::move(prefs)) {}

  std::string_view name() const override { return "xslt"; }

  std::optional<xml::Problem> translate(std::string_view input, const Context& ctx,
                                        const Emit& emit) const override {
    auto doc = xml::parse(input, ctx.xml_limits);
    if (!doc) {
      return doc.error();
    }
    std::unique_ptr<xsltTransformContext, TransformFree> tctx(
        xsltNewTransformContext(style_.get(), doc->get()));
    if (!tctx) {
      return xml::make_problem("xslt.internal", "", "", 0, "cannot create a transform context");
    }
    xsltSetCtxtSecurityPrefs(prefs_.get(), tctx.get());
    tctx->maxTemplateDepth = 200;
    tctx->maxTemplateVars = 10'000;
    xsltSetTransformErrorFunc(tctx.get(), nullptr, silent);
    xml::DocPtr out(
        xsltApplyStylesheetUser(style_.get(), doc->get(), nullptr, nullptr, nullptr, tctx.get()));
    if (!out || tctx->state != XSLT_STATE_OK) {
      return xml::make_problem("xslt.failed", "", "", 0,
                               "the feed's stylesheet could not transform the input (a forbidden "
                               "file or network access, or an error in the input)");
    }
    xmlNode* root = xmlDocGetRootElement(out.get());
    if (!xml::is(root, kAdapterNs, "Records")) {
      return xml::make_problem("xslt.output", "", "", 0,
                               "the stylesheet's output is not sx:Records");
    }
    std::int64_t n = 0;
    for (xmlNode* rec = xml::first_child_element(root); rec != nullptr;
         rec = xml::next_element(rec)) {
      if (!xml::is(rec, kAdapterNs, "Record")) continue;
      if (static_cast<std::size_t>(++n) > ctx.max_records) {
        return xml::make_problem("xslt.too-many-records", "", "", 0,
                                 "more than " + std::to_string(ctx.max_records) + " records");
      }
      Translated t;
      t.record = n;
      std::string line = attr(rec, "line");
      t.line = line.empty() ? 0 : std::atoi(line.c_str());
      xmlBufferPtr buf = xmlBufferCreate();
      xmlNodeDump(buf, out.get(), rec, 0, 0);
      t.raw.assign(reinterpret_cast<const char*>(xmlBufferContent(buf)),
                   static_cast<std::size_t>(xmlBufferLength(buf)));
      xmlBufferFree(buf);
      xmlNode* body = xml::first_child_element(rec);
      if (body == nullptr || xml::next_element(body) != nullptr) {
        t.document = std::unexpected(xml::Problems{xml::make_problem(
            "xslt.record", "", "", t.line,
            "record " + std::to_string(n) + " must hold exactly one business document")});
      } else {
        EnvelopeFields f;
        f.doc_type = attr(rec, "doc-type");
        f.sender_message_id = attr(rec, "sender-message-id");
        f.receiver = attr(rec, "receiver").empty() ? mapping_.receiver : attr(rec, "receiver");
        f.correlation_id = attr(rec, "correlation-id");
        f.priority = mapping_.priority;
        f.expires_hours = mapping_.expires_hours;
        if (f.sender_message_id.empty()) {
          f.sender_message_id = content_id(ctx.feed, f.doc_type, t.raw);
        }
        t.document = wrap_body(body, f, ctx);
      }
      if (!t.document) {
        for (auto& p : t.document.error()) p.record = n;
      }
      emit(std::move(t));
    }
    return std::nullopt;
  }

 private:
  Mapping mapping_;
  std::unique_ptr<xsltStylesheet, StyleFree> style_;
  std::unique_ptr<xsltSecurityPrefs, PrefsFree> prefs_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping) {
  if (mapping.stylesheet.empty()) {
    return fail(Errc::kInvalidArgument,
                "mapping " + mapping.file.string() + ": the xslt adapter needs `stylesheet`");
  }
  static std::once_flag once;
  std::call_once(once, [] { xsltSetGenericErrorFunc(nullptr, silent); });
  auto text = read_file(mapping.stylesheet, 1u << 20);
  if (!text) return fail(text.error());
  xml::initialize(mapping.stylesheet.parent_path());  // xsl:import/include from its folder only
  xml::ParseLimits limits;
  limits.max_bytes = 1u << 20;
  auto doc = xml::parse(*text, limits);
  if (!doc) {
    return fail(Errc::kInvalidArgument,
                "stylesheet " + mapping.stylesheet.string() + ": " + xml::describe(doc.error()));
  }
  xmlDoc* raw = doc->release();
  // The stylesheet's own location is its base URI (for xsl:import); the parser set a
  // placeholder, which is freed here.
  xmlFree(const_cast<xmlChar*>(raw->URL));
  raw->URL = xmlStrdup(reinterpret_cast<const xmlChar*>(mapping.stylesheet.c_str()));
  std::unique_ptr<xsltStylesheet, StyleFree> style(xsltParseStylesheetDoc(raw));
  if (!style) {
    xmlFreeDoc(raw);
    return fail(Errc::kInvalidArgument,
                "stylesheet " + mapping.stylesheet.string() + " does not compile");
  }
  std::unique_ptr<xsltSecurityPrefs, PrefsFree> prefs(xsltNewSecurityPrefs());
  for (auto option :
       {XSLT_SECPREF_READ_FILE, XSLT_SECPREF_WRITE_FILE, XSLT_SECPREF_CREATE_DIRECTORY,
        XSLT_SECPREF_READ_NETWORK, XSLT_SECPREF_WRITE_NETWORK}) {
    xsltSetSecurityPrefs(prefs.get(), option, xsltSecurityForbid);
  }
  return std::unique_ptr<Adapter>(new XsltAdapter(mapping, std::move(style), std::move(prefs)));
}

}  // namespace sluice::adapters::xslt
