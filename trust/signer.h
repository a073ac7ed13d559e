// The gateway's signatures: every document Sluice accepts is signed before it is stored
// (the profile in dsig.h), and every acceptance or delivery gets a signed receipt.
// Thread-safe; the key is loaded once.
#pragma once

#include <libxml/tree.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.h"
#include "trust/keys.h"

namespace sluice::trust {

struct ReceiptFields {
  std::string message_id;
  std::string sender;  // node/system
  std::string sender_message_id;
  std::string doc_type;
  std::string digest;  // base64 SHA-256 of the canonical signed document
  std::string status;  // accepted | delivered | rejected | expired
  std::string reason_code;
  std::string reason_text;
  std::int64_t time_ms = 0;
};

class DocumentSigner {
 public:
  static Result<std::unique_ptr<DocumentSigner>> create(const std::filesystem::path& cert_chain,
                                                        const std::filesystem::path& key,
                                                        std::string signer_name);
  // Signs `doc` in place: a ds:Signature becomes the last child of the root element. Returns
  // the Reference's DigestValue (base64 SHA-256 of the canonical document).
  Result<std::string> sign(xmlDoc* doc) const;
  // A signed rc:Receipt (schemas/receipt-1.xsd), serialised.
  Result<std::string> receipt(const ReceiptFields& fields) const;
  const SigningKey& key() const { return key_; }
  const std::string& signer_name() const { return signer_name_; }

 private:
  DocumentSigner(SigningKey key, std::string name)
      : key_(std::move(key)), signer_name_(std::move(name)) {}
  SigningKey key_;
  std::string signer_name_;
};

// The canonical (exclusive C14N) form of the SignedInfo this profile produces; it is what
// gets signed, and what a correct canonicaliser produces from the serialised element.
std::string canonical_signed_info(const char* signature_method, const std::string& digest_b64);

}  // namespace sluice::trust
