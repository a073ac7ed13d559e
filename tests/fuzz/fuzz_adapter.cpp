// libFuzzer: one shipped feed's adapter (chosen at build time by SLUICE_FUZZ_MAPPING) over
// arbitrary input, with every translated document validated.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "adapters/registry.h"
#include "xml/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unique_ptr<sluice::xml::Validator> validator = [] {
    sluice::xml::initialize(SLUICE_SOURCE_DIR "/schemas");
    return std::move(*sluice::xml::Validator::load(SLUICE_SOURCE_DIR "/schemas"));
  }();
  static const std::unique_ptr<sluice::adapters::Adapter> adapter = [] {
    sluice::adapters::Registry r;
    sluice::adapters::register_builtin_adapters(r);
    auto a = r.create(
        std::filesystem::path(SLUICE_SOURCE_DIR "/adapters/mappings/" SLUICE_FUZZ_MAPPING));
    if (!a) __builtin_trap();
    return std::move(*a);
  }();
  sluice::adapters::Context ctx;
  ctx.sender = {"440600", "fuzz"};
  ctx.feed = "fuzz";
  ctx.now_ms = 1'795'400'000'000;
  ctx.max_records = 1000;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto emit = [](sluice::adapters::Translated&& t) {
    if (t.document) (void)validator->validate(t.document->get());
  };
  (void)adapter->translate(input, ctx, emit);
  (void)adapter->translate_record(input, ctx, emit);
  return 0;
}
