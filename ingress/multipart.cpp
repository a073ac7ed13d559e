#include "ingress/multipart.h"

#include <algorithm>
#include <cctype>

namespace sluice::ingress {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The value of `param` in a header value like `form-data; name="a"; filename="b.csv"`.
std::string param(std::string_view header, std::string_view name) {
  std::string h = lower(header);
  std::string key = std::string(name) + "=";
  std::size_t pos = 0;
  while ((pos = h.find(key, pos)) != std::string::npos) {
    if (pos == 0 || h[pos - 1] == ' ' || h[pos - 1] == ';') break;
    pos += key.size();
  }
  if (pos == std::string::npos) return {};
  pos += key.size();
  if (pos < header.size() && header[pos] == '"') {
    std::size_t end = header.find('"', pos + 1);
    return std::string(header.substr(
        pos + 1, end == std::string_view::npos ? std::string_view::npos : end - pos - 1));
  }
  std::size_t end = header.find(';', pos);
  std::string v(
      header.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  if (!lower(content_type).starts_with("multipart/form-data")) return {};
  return param(content_type, "boundary");
}

Result<std::vector<Part>> parse_multipart(std::string_view body, std::string_view boundary,
                                          std::size_t max_parts) {
  if (boundary.empty() || boundary.size() > 70) {
    return fail(Errc::kMalformed, "multipart boundary is missing or longer than 70 characters");
  }
  std::string delim = "--" + std::string(boundary);
  std::vector<Part> parts;
  std::size_t pos = body.find(delim);
  if (pos == std::string_view::npos) {
    return fail(Errc::kMalformed, "multipart body has no boundary line");
  }
  for (;;) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") break;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n") {
      return fail(Errc::kMalformed, "multipart boundary line is not followed by CRLF");
    }
    pos += 2;
    std::size_t header_end = body.find("\r\n\r\n", pos);
    if (header_end == std::string_view::npos) {
      return fail(Errc::kMalformed,
                  "multipart part " + std::to_string(parts.size() + 1) + " has no header end");
    }
    Part part;
    std::string_view headers = body.substr(pos, header_end - pos);
    while (!headers.empty()) {
      std::size_t eol = headers.find("\r\n");
      std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = lower(line.substr(0, colon));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-disposition") {
        part.name = param(value, "name");
        part.filename = param(value, "filename");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    std::size_t data_start = header_end + 4;
    std::size_t next = body.find("\r\n" + delim, data_start);
    if (next == std::string_view::npos) {
      return fail(Errc::kMalformed,
                  "multipart part " + std::to_string(parts.size() + 1) + " is not terminated");
    }
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    if (parts.size() > max_parts) {
      return fail(Errc::kTooLarge, "more than " + std::to_string(max_parts) + " parts");
    }
    pos = next + 2;
  }
  return parts;
}

}  // namespace sluice::ingress
