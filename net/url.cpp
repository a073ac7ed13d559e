#include "net/url.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace sluice::net {

std::string Url::authority() const {
  bool v6 = host.find(':') != std::string::npos;
  std::string out;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += port;
  return out;
}

Result<Url> parse_url(std::string_view text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) {
    return fail(Errc::kInvalidArgument,
                "not an absolute URL (" + parsed.error().message() + "): " + std::string(text));
  }
  const boost::urls::url_view& u = *parsed;
  Url out;
  if (u.scheme() == "https") {
    out.tls = true;
  } else if (u.scheme() != "http") {
    return fail(Errc::kInvalidArgument,
                "url must start with http:// or https://: " + std::string(text));
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return fail(Errc::kInvalidArgument, "url has no host: " + std::string(text));
  }
  if (u.has_userinfo()) {
    return fail(Errc::kInvalidArgument, "url must not carry credentials: " + std::string(text));
  }
  switch (u.host_type()) {
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::ipv4:
      out.host = u.host_ipv4_address().to_string();
      break;
    default:
      out.host = u.host();  // decoded registered name
  }
  out.port = u.has_port() && !u.port().empty() ? std::string(u.port()) : (out.tls ? "443" : "80");
  if (u.has_port() && u.port_number() == 0) {
    return fail(Errc::kInvalidArgument, "url has an invalid port: " + std::string(text));
  }
  out.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) {
    out.target += '?';
    out.target += u.encoded_query();
  }
  return out;
}

}  // namespace sluice::net
