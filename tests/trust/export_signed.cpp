// Writes signed documents and receipts for the independent verifiers (xml-crypto, the xmlsec1
// CLI): every valid schema example signed as the gateway with ECDSA P-256 and with RSA-2048,
// a receipt for each, and tampered copies that must fail.
//   export_signed OUTDIR
#include <filesystem>
#include <fstream>
#include <iostream>

#include "tests/support/harness.h"
#include "trust/signer.h"
#include "xml/parse.h"

using namespace sluice;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: export_signed OUTDIR\n";
    return 2;
  }
  std::filesystem::path out = argv[1];
  std::filesystem::remove_all(out);
  std::filesystem::create_directories(out);
  xml::initialize(test::source_dir() / "schemas");
  int n = 0;
  for (const auto& [label, pki] :
       {std::pair{"ecdsa", test::dev_pki()}, std::pair{"rsa", test::dev_pki_rsa()}}) {
    auto signer = trust::DocumentSigner::create(pki / "gateway-outer.chain.pem",
                                                pki / "gateway-outer.key.pem", "sluice-outer");
    if (!signer) {
      std::cerr << signer.error().message << "\n";
      return 1;
    }
    for (const auto& dir :
         std::filesystem::directory_iterator(test::source_dir() / "schemas/examples")) {
      auto file = dir.path() / "valid-1.xml";
      if (!std::filesystem::exists(file) || dir.path().filename() == "receipt") continue;
      auto doc = xml::parse(test::read_text(file), {});
      if (!doc) continue;
      auto digest = (*signer)->sign(doc->get());
      if (!digest) {
        std::cerr << digest.error().message << "\n";
        return 1;
      }
      std::string name = std::string(label) + "-" + dir.path().filename().string();
      std::string signed_doc = xml::serialize(doc->get());
      std::ofstream(out / ("good-" + name + ".xml")) << signed_doc;
      auto receipt = (*signer)->receipt({.message_id = "01a206a5-7269-79a7-baea-dc5e35d66065",
                                         .sender = "440604/approval",
                                         .sender_message_id = "S-" + std::to_string(n),
                                         .doc_type = dir.path().filename().string(),
                                         .digest = *digest,
                                         .status = "accepted",
                                         .time_ms = 1'795'400'000'000});
      std::ofstream(out / ("good-receipt-" + name + ".xml")) << *receipt;
      // A changed DocVersion (signed header) and a changed receipt status must both fail.
      std::string t = signed_doc;
      t.replace(t.find("<env:DocVersion>1<"), 18, "<env:DocVersion>2<");
      std::ofstream(out / ("tampered-" + name + ".xml")) << t;
      std::string r = *receipt;
      r.replace(r.find(">accepted<"), 10, ">rejected<");
      std::ofstream(out / ("tampered-receipt-" + name + ".xml")) << r;
      ++n;
    }
  }
  // A receipt re-signed by a sender with its own (CA-issued) key: cryptographically valid,
  // but not a gateway's signature. Kept apart from the files the CLI checks glob over.
  std::filesystem::create_directories(out / "forged");
  auto sender = trust::DocumentSigner::create(test::dev_pki() / "sender-440604-approval.chain.pem",
                                              test::dev_pki() / "sender-440604-approval.key.pem",
                                              "sluice-outer");
  if (!sender) {
    std::cerr << sender.error().message << "\n";
    return 1;
  }
  auto forged = (*sender)->receipt({.message_id = "01a206a5-7269-79a7-baea-dc5e35d66065",
                                    .sender = "440604/approval",
                                    .sender_message_id = "S-forged",
                                    .doc_type = "case.accept",
                                    .digest = "AAAA",
                                    .status = "delivered",
                                    .time_ms = 1'795'400'000'000});
  if (!forged) {
    std::cerr << forged.error().message << "\n";
    return 1;
  }
  std::ofstream(out / "forged" / "receipt-by-sender.xml") << *forged;
  std::cout << "wrote " << n * 4 << " files to " << out << "\n";
  return n > 0 ? 0 : 1;
}
