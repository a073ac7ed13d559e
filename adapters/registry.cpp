#include "adapters/registry.h"

#include "adapters/csv/csv_adapter.h"
#include "adapters/json/json_adapter.h"
#include "adapters/xml/xml_adapter.h"
#include "adapters/xslt/xslt_adapter.h"

namespace sluice::adapters {

void Registry::add(const std::string& name, Factory factory) {
  factories_[name] = std::move(factory);
}

Result<std::unique_ptr<Adapter>> Registry::create(const Mapping& mapping) const {
  auto it = factories_.find(mapping.adapter);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, f] : factories_) known += (known.empty() ? "" : ", ") + name;
    return fail(Errc::kInvalidArgument, "mapping " + mapping.file.string() + " names adapter \"" +
                                            mapping.adapter + "\"; known adapters: " + known);
  }
  return it->second(mapping);
}

Result<std::unique_ptr<Adapter>> Registry::create(const std::filesystem::path& mapping_file) const {
  auto mapping = load_mapping(mapping_file);
  if (!mapping) return fail(mapping.error());
  return create(*mapping);
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

void register_builtin_adapters(Registry& registry) {
  registry.add("xml", standard_xml::create);
  registry.add("json", json::create);
  registry.add("csv", csv::create);
  registry.add("xslt", xslt::create);
}

}  // namespace sluice::adapters
