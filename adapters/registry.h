// Adapters by name. Built-in adapters are added by one explicit call,
// register_builtin_adapters(registry) — no static-initialiser registration.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/mapping.h"
#include "common/error.h"

namespace sluice::adapters {

class Registry {
 public:
  using Factory = std::function<Result<std::unique_ptr<Adapter>>(const Mapping& mapping)>;
  void add(const std::string& name, Factory factory);
  // Loads `mapping_file` (TOML) and builds the adapter it names.
  Result<std::unique_ptr<Adapter>> create(const std::filesystem::path& mapping_file) const;
  Result<std::unique_ptr<Adapter>> create(const Mapping& mapping) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, Factory> factories_;
};

// Adds xml, json, csv and xslt.
void register_builtin_adapters(Registry& registry);

}  // namespace sluice::adapters
