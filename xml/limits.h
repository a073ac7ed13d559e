// Bounds on one untrusted XML document, checked while it is parsed (xml/parse.h). A light
// header so that configuration can name them without pulling libxml2 in.
#pragma once

#include <cstddef>

namespace sluice::xml {

enum class Comments { kStrip, kRefuse };

struct ParseLimits {
  std::size_t max_bytes = 1u << 20;
  int max_depth = 48;
  std::size_t max_elements = 20'000;
  std::size_t max_attributes = 20'000;
  // On one element, counted in a linear scan before libxml2 reads the document: libxml2 checks
  // a tag's attributes against each other, so one huge tag would cost seconds of CPU.
  std::size_t max_attributes_per_element = 256;
  Comments comments = Comments::kStrip;
};

}  // namespace sluice::xml
