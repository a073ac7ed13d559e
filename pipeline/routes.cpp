#include "pipeline/routes.h"

#include <algorithm>

namespace sluice::pipeline {

bool pattern_matches(std::string_view pattern, std::string_view value) {
  if (pattern == "*") {
    return true;
  }
  if (pattern.ends_with("*")) {
    return value.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == value;
}

std::vector<std::string> RouteTable::destinations(std::string_view doc_type,
                                                  std::string_view sender,
                                                  std::string_view receiver) const {
  std::vector<std::string> out;
  auto routes = routes_.load();
  for (const auto& r : *routes) {
    if (!pattern_matches(r.doc_type, doc_type) || !pattern_matches(r.sender, sender) ||
        !pattern_matches(r.receiver, receiver)) {
      continue;
    }
    for (const auto& d : r.destinations) {
      if (std::find(out.begin(), out.end(), d) == out.end()) {
        out.push_back(d);
      }
    }
  }
  return out;
}

}  // namespace sluice::pipeline
