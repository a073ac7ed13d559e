#include "net/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>

#include "net/tls.h"

namespace sluice::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

class HttpsClient::Impl {
 public:
  explicit Impl(ClientOptions o) : options_(std::move(o)) {}

  Result<void> connect() {
    close();
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(options_.host, options_.port, ec);
    if (ec) {
      return fail(Errc::kUnavailable, "resolve " + options_.host + ": " + ec.message());
    }
    if (options_.tls) {
      if (!ctx_) {
        auto ctx = make_client_context(options_.ca, options_.cert, options_.key);
        if (!ctx) {
          return fail(ctx.error());
        }
        ctx_ = *ctx;
      }
      tls_.emplace(io_, *ctx_);
      SSL_set_tlsext_host_name(tls_->native_handle(), options_.host.c_str());
      SSL_set1_host(tls_->native_handle(), options_.host.c_str());
      beast::get_lowest_layer(*tls_).expires_after(options_.timeout);
      beast::get_lowest_layer(*tls_).connect(results, ec);
      if (!ec) {
        tls_->handshake(asio::ssl::stream_base::client, ec);
      }
    } else {
      plain_.emplace(io_);
      plain_->expires_after(options_.timeout);
      plain_->connect(results, ec);
    }
    if (ec) {
      close();
      return fail(Errc::kUnavailable,
                  "connect " + options_.host + ":" + options_.port + ": " + ec.message());
    }
    return {};
  }

  void close() {
    tls_.reset();
    plain_.reset();
    buffer_.clear();
  }

  Result<ClientResponse> request(const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& content_type,
                                 const std::vector<std::pair<std::string, std::string>>& headers) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!tls_ && !plain_) {
        if (auto r = connect(); !r) {
          return fail(r.error());
        }
      }
      http::request<http::string_body> req{http::string_to_verb(method), target, 11};
      req.set(http::field::host, options_.host);
      req.set(http::field::user_agent, "sluicectl");
      if (!body.empty() || method == "POST") {
        req.set(http::field::content_type, content_type);
      }
      for (const auto& [k, v] : headers) {
        req.set(k, v);
      }
      req.body() = body;
      req.keep_alive(true);
      req.prepare_payload();
      http::response_parser<http::string_body> parser;
      parser.body_limit(256u << 20);
      boost::system::error_code ec;
      if (tls_) {
        beast::get_lowest_layer(*tls_).expires_after(options_.timeout);
        http::write(*tls_, req, ec);
        if (!ec) http::read(*tls_, buffer_, parser, ec);
      } else {
        plain_->expires_after(options_.timeout);
        http::write(*plain_, req, ec);
        if (!ec) http::read(*plain_, buffer_, parser, ec);
      }
      if (ec) {
        close();
        // A kept-alive connection the server closed: retry once on a fresh one.
        if (attempt == 0 &&
            (ec == http::error::end_of_stream || ec == asio::error::eof ||
             ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated)) {
          continue;
        }
        return fail(Errc::kUnavailable, method + " " + target + ": " + ec.message());
      }
      auto& res = parser.get();
      ClientResponse out;
      out.status = res.result_int();
      out.body = std::move(res.body());
      for (const auto& f : res) {
        out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      if (!res.keep_alive()) {
        close();
      }
      return out;
    }
    return fail(Errc::kUnavailable, method + " " + target + ": connection closed");
  }

 private:
  ClientOptions options_;
  asio::io_context io_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::optional<beast::tcp_stream> plain_;
  beast::flat_buffer buffer_;
};

HttpsClient::HttpsClient(ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpsClient::~HttpsClient() = default;

Result<ClientResponse> HttpsClient::request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->request(method, target, body, content_type, headers);
}

}  // namespace sluice::net
