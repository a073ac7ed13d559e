// libFuzzer: the hardened parser, the envelope reader and the validator (XSD + checks).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "xml/envelope.h"
#include "xml/parse.h"
#include "xml/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unique_ptr<sluice::xml::Validator> validator = [] {
    sluice::xml::initialize(SLUICE_SOURCE_DIR "/schemas");
    return std::move(*sluice::xml::Validator::load(SLUICE_SOURCE_DIR "/schemas"));
  }();
  auto doc = sluice::xml::parse(std::string_view(reinterpret_cast<const char*>(data), size), {});
  if (!doc) return 0;
  (void)sluice::xml::read_envelope(doc->get());
  (void)validator->validate(doc->get());
  (void)sluice::xml::serialize(doc->get());
  return 0;
}
