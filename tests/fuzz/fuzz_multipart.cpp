// libFuzzer: the multipart/form-data parser of batch uploads. The first line of the input
// is used as the Content-Type, the rest as the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ingress/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  std::string_view content_type = in.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  std::string boundary = sluice::ingress::multipart_boundary(content_type);
  auto parts = sluice::ingress::parse_multipart(body, boundary);
  if (parts) {
    for (const auto& p : *parts) {
      if (p.data.data() < body.data() ||
          p.data.data() + p.data.size() > body.data() + body.size()) {
        __builtin_trap();  // a part must be a view into the body
      }
    }
  }
  return 0;
}
