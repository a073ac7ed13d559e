// An http:// or https:// URL split into what a client needs to connect (parsed by
// Boost.URL: IPv6 literals such as [::1]:8443, default ports, percent-encoding).
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace sluice::net {

struct Url {
  bool tls = false;
  std::string host;               // without brackets for an IPv6 literal: "::1"
  std::string port;               // "443" / "80" when the URL names none
  std::string target;             // path + query, at least "/"
  std::string authority() const;  // the Host header value: "host:port" ("[::1]:8443")
};

// kInvalidArgument naming what is wrong when `url` is not an absolute http(s) URL with a host.
Result<Url> parse_url(std::string_view url);

}  // namespace sluice::net
