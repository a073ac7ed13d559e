// The routing table: (DocType, sender, receiver) -> destinations. Every route that matches
// contributes its destinations (a case can go to the district centre and the city centre);
// the result keeps first-seen order without duplicates. Patterns: "*" matches anything,
// "case.*" or "440604/*" match a prefix, anything else matches exactly. The table is replaced
// whole at run time (replace()); a lookup uses the table it started with.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"

namespace sluice::pipeline {

bool pattern_matches(std::string_view pattern, std::string_view value);

class RouteTable {
 public:
  explicit RouteTable(std::vector<RouteConfig> routes) { replace(std::move(routes)); }
  std::vector<std::string> destinations(std::string_view doc_type, std::string_view sender,
                                        std::string_view receiver) const;
  void replace(std::vector<RouteConfig> routes) {
    routes_.store(std::make_shared<const std::vector<RouteConfig>>(std::move(routes)));
  }

 private:
  std::atomic<std::shared_ptr<const std::vector<RouteConfig>>> routes_;
};

}  // namespace sluice::pipeline
