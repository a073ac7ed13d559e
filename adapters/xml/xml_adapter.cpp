#include "adapters/xml/xml_adapter.h"

namespace sluice::adapters::standard_xml {
namespace {

class XmlAdapter final : public Adapter {
 public:
  std::string_view name() const override { return "xml"; }
  std::optional<xml::Problem> translate(std::string_view input, const Context& ctx,
                                        const Emit& emit) const override {
    Translated t;
    t.record = 1;
    t.raw.assign(input);
    auto doc = xml::parse(input, ctx.xml_limits);
    if (doc) {
      t.document = std::move(*doc);
    } else {
      auto p = doc.error();
      p.record = 1;
      t.document = std::unexpected(xml::Problems{std::move(p)});
    }
    emit(std::move(t));
    return std::nullopt;
  }
};

}  // namespace

Result<std::unique_ptr<Adapter>> create(const Mapping&) {
  return std::unique_ptr<Adapter>(new XmlAdapter());
}

}  // namespace sluice::adapters::standard_xml
