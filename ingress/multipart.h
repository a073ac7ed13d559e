// multipart/form-data (RFC 7578) for batch uploads: the boundary from the Content-Type, then
// each part's name, filename, content type and bytes (views into the body). Bounded by
// `max_parts`; a malformed body is an error naming what is wrong.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::ingress {

struct Part {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string_view data;
};

// The boundary parameter of a multipart Content-Type, or empty when it is not multipart.
std::string multipart_boundary(std::string_view content_type);
Result<std::vector<Part>> parse_multipart(std::string_view body, std::string_view boundary,
                                          std::size_t max_parts = 100);

}  // namespace sluice::ingress
