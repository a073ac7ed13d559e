#include "xml/validate.h"

#include <libxml/xmlschemas.h>

#include "xml/checks.h"
#include "xml/envelope.h"
#include "xml/parse.h"

namespace sluice::xml {
namespace {

struct SchemaFree {
  void operator()(xmlSchemaPtr s) const { xmlSchemaFree(s); }
};
struct ParserCtxtFree {
  void operator()(xmlSchemaParserCtxtPtr c) const { xmlSchemaFreeParserCtxt(c); }
};
struct ValidCtxtFree {
  void operator()(xmlSchemaValidCtxtPtr c) const { xmlSchemaFreeValidCtxt(c); }
};
using SchemaPtr = std::unique_ptr<xmlSchema, SchemaFree>;

struct LoadErrors {
  std::string first;
};

void on_load_error(void* ctx, xmlErrorPtr err) {
  auto* e = static_cast<LoadErrors*>(ctx);
  if (e->first.empty() && err != nullptr && err->message != nullptr) {
    e->first = std::string(err->file != nullptr ? err->file : "") + ":" +
               std::to_string(err->line) + ": " + err->message;
  }
}

Result<SchemaPtr> compile(const std::filesystem::path& file) {
  std::unique_ptr<xmlSchemaParserCtxt, ParserCtxtFree> pctxt(xmlSchemaNewParserCtxt(file.c_str()));
  if (!pctxt) {
    return fail(Errc::kInternal, "cannot create a schema parser for " + file.string());
  }
  LoadErrors errors;
  xmlSchemaSetParserStructuredErrors(pctxt.get(), on_load_error, &errors);
  SchemaPtr schema(xmlSchemaParse(pctxt.get()));
  if (!schema) {
    return fail(Errc::kInvalidArgument,
                "cannot compile schema " + file.string() + ": " +
                    (errors.first.empty() ? "unknown error" : errors.first));
  }
  return schema;
}

struct Collector {
  Problems* problems;
};

void on_valid_error(void* ctx, xmlErrorPtr err) {
  auto* c = static_cast<Collector*>(ctx);
  if (err == nullptr || c->problems->size() >= Validator::kMaxProblems) return;
  std::string msg = err->message != nullptr ? err->message : "invalid";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  auto* node = static_cast<xmlNode*>(err->node);
  std::string field, path;
  if (node != nullptr) {
    field = reinterpret_cast<const char*>(node->name);
    path = node_path(node);
  }
  c->problems->push_back(make_problem("schema.invalid", field, path, err->line, msg));
}

}  // namespace

class Validator::Impl {
 public:
  SchemaPtr envelope;
  SchemaPtr receipt;

  Problems run(xmlSchemaPtr schema, xmlDoc* doc) const {
    Problems problems;
    std::unique_ptr<xmlSchemaValidCtxt, ValidCtxtFree> vctxt(xmlSchemaNewValidCtxt(schema));
    if (!vctxt) {
      problems.push_back(make_problem("schema.internal", "", "", 0, "out of memory"));
      return problems;
    }
    Collector c{&problems};
    xmlSchemaSetValidStructuredErrors(vctxt.get(), on_valid_error, &c);
    int rc = xmlSchemaValidateDoc(vctxt.get(), doc);
    if (rc != 0 && problems.empty()) {
      problems.push_back(
          make_problem("schema.invalid", "", "", 0,
                       "the document does not match the schema (code " + std::to_string(rc) + ")"));
    }
    return problems;
  }
};

Validator::Validator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Validator::~Validator() = default;

Result<std::unique_ptr<Validator>> Validator::load(const std::filesystem::path& dir) {
  auto impl = std::make_unique<Impl>();
  auto env = compile(dir / "envelope-1.xsd");
  if (!env) return fail(env.error());
  auto rc = compile(dir / "receipt-1.xsd");
  if (!rc) return fail(rc.error());
  impl->envelope = std::move(*env);
  impl->receipt = std::move(*rc);
  return std::unique_ptr<Validator>(new Validator(std::move(impl)));
}

Problems Validator::validate_schema(xmlDoc* doc) const {
  xmlNode* root = xmlDocGetRootElement(doc);
  if (is(root, kReceiptNs, "Receipt")) {
    return impl_->run(impl_->receipt.get(), doc);
  }
  return impl_->run(impl_->envelope.get(), doc);
}

Problems Validator::validate(xmlDoc* doc) const {
  Problems problems = validate_schema(doc);
  if (problems.empty()) {
    check_semantics(doc, problems);
  }
  return problems;
}

}  // namespace sluice::xml
