#include "trust/c14n.h"

#include <libxml/c14n.h>

#include "xml/parse.h"

namespace sluice::trust {

Result<std::string> canonical_document(xmlDoc* doc) {
  xmlChar* out = nullptr;
  int n = xmlC14NDocDumpMemory(doc, nullptr, XML_C14N_EXCLUSIVE_1_0, nullptr, 0, &out);
  if (n < 0 || out == nullptr) {
    return fail(Errc::kCrypto, "exclusive canonicalization of the document failed");
  }
  std::string s(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  xmlFree(out);
  return s;
}

Result<std::string> canonical_element(xmlNode* element) {
  // A copy as the root of its own document keeps exactly the namespaces the subtree uses,
  // which is what exclusive canonicalization renders in context too.
  xml::DocPtr copy(xmlNewDoc(reinterpret_cast<const xmlChar*>("1.0")));
  xmlNode* node = xmlDocCopyNode(element, copy.get(), 1);
  if (node == nullptr) {
    return fail(Errc::kCrypto, "cannot copy the element to canonicalize it");
  }
  xmlDocSetRootElement(copy.get(), node);
  return canonical_document(copy.get());
}

}  // namespace sluice::trust
