#include "delivery/sinks/http/http_sink.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <optional>

#include "net/tls.h"
#include "net/url.h"

namespace sluice::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using IoStrand = asio::strand<asio::io_context::executor_type>;
template <class Ex>
using Stream = beast::basic_stream<tcp, Ex>;
template <class T, class Ex>
using awaitable = asio::awaitable<T, Ex>;
template <class Ex>
constexpr auto tuple_of() {
  return asio::as_tuple(asio::use_awaitable_t<Ex>());
}

// What every connection of one destination shares.
struct Target {
  DestinationConfig config;
  net::Url url;
  std::shared_ptr<asio::ssl::context> tls;
};

// One kept-alive connection to an HTTP(S) destination.
class Connection {
 public:
  using Ex = IoStrand;
  Connection(Ex ex, const Target& d) : ex_(std::move(ex)), dest_(d) {}

  // Delivers the leases in order over this connection: with more than one, as pipelined
  // HTTP/1.1 requests written at once, then the responses read in order. Returns one outcome
  // per lease. A failure part-way fails the rest (they are retried; receivers deduplicate).
  // Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; 0 when absent or unreadable.
  static std::int64_t retry_after_ms(std::string_view value) {
    if (value.empty()) return 0;
    std::int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && end == value.data() + value.size() && seconds >= 0) {
      return std::min<std::int64_t>(seconds, 86'400) * 1000;
    }
    std::tm tm{};
    std::string text(value);
    if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
      std::int64_t at = static_cast<std::int64_t>(timegm(&tm)) * 1000;
      std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
      return std::clamp<std::int64_t>(at - now, 0, 86'400'000);
    }
    return 0;
  }

  awaitable<std::vector<Outcome>, Ex> post(std::vector<queue::Lease>& leases) {
    constexpr auto kTuple = tuple_of<Ex>();
    std::vector<Outcome> out(leases.size());
    auto fail_from = [&](std::size_t i, const std::string& reason, bool connection) {
      for (; i < out.size(); ++i) {
        out[i].kind = connection ? Outcome::Kind::kUnreachable : Outcome::Kind::kRetry;
        out[i].reason = reason;
      }
    };
    auto timeout = std::chrono::milliseconds(dest_.config.timeout_ms);
    if (!open()) {
      auto [ec_r, results] = co_await asio::ip::basic_resolver<tcp, Ex>(ex_).async_resolve(
          dest_.url.host, dest_.url.port, kTuple);
      if (ec_r) {
        fail_from(0, "resolve " + dest_.url.host + ": " + ec_r.message(), true);
        co_return out;
      }
      boost::system::error_code ec_c;
      if (dest_.url.tls) {
        tls_.emplace(ex_, *dest_.tls);
        if (!SSL_set_tlsext_host_name(tls_->native_handle(), dest_.url.host.c_str()) ||
            !SSL_set1_host(tls_->native_handle(), dest_.url.host.c_str())) {
          close();
          fail_from(0, "TLS host name setup failed for " + dest_.url.host, true);
          co_return out;
        }
        beast::get_lowest_layer(*tls_).expires_after(timeout);
        std::tie(ec_c, std::ignore) =
            co_await beast::get_lowest_layer(*tls_).async_connect(results, kTuple);
        if (!ec_c) {
          std::tie(ec_c) = co_await tls_->async_handshake(asio::ssl::stream_base::client, kTuple);
        }
      } else {
        plain_.emplace(ex_);
        plain_->expires_after(timeout);
        std::tie(ec_c, std::ignore) = co_await plain_->async_connect(results, kTuple);
        if (!ec_c) plain_->socket().set_option(tcp::no_delay(true), ec_c);
      }
      if (ec_c) {
        close();
        fail_from(0, "connect " + dest_.config.url + ": " + ec_c.message(), true);
        co_return out;
      }
    }
    // The requests, serialised by Beast and written back to back (pipelined when more than
    // one) before any answer is read.
    boost::system::error_code ec;
    for (std::size_t i = 0; i < leases.size(); ++i) {
      auto& lease = leases[i];
      http::request<http::string_body> req{http::verb::post, dest_.url.target, 11};
      req.set(http::field::host, dest_.url.authority());
      req.set(http::field::user_agent, "sluice");
      req.set(http::field::content_type, "application/xml; charset=utf-8");
      req.set("X-Sluice-Message-Id", lease.message_id);
      req.set("X-Sluice-Doc-Type", lease.doc_type);
      req.set("X-Sluice-Attempt", std::to_string(lease.attempt));
      req.body() = std::move(lease.payload);  // not needed after this attempt
      req.keep_alive(true);
      req.prepare_payload();
      if (tls_) {
        beast::get_lowest_layer(*tls_).expires_after(timeout);
        std::tie(ec, std::ignore) = co_await http::async_write(*tls_, req, kTuple);
      } else {
        plain_->expires_after(timeout);
        std::tie(ec, std::ignore) = co_await http::async_write(*plain_, req, kTuple);
      }
      if (ec) {
        close();
        fail_from(0, "POST " + dest_.config.url + ": " + ec.message(), false);
        co_return out;
      }
    }
    for (std::size_t i = 0; i < leases.size(); ++i) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      if (tls_) {
        beast::get_lowest_layer(*tls_).expires_after(timeout);
        std::tie(ec, std::ignore) = co_await http::async_read(*tls_, buffer_, parser, kTuple);
      } else {
        plain_->expires_after(timeout);
        std::tie(ec, std::ignore) = co_await http::async_read(*plain_, buffer_, parser, kTuple);
      }
      if (ec) {
        close();
        fail_from(i, "POST " + dest_.config.url + ": " + ec.message(), false);
        co_return out;
      }
      auto& res = parser.get();
      unsigned code = res.result_int();
      if (code >= 200 && code < 300) {
        out[i].kind = Outcome::Kind::kDelivered;
      } else {
        std::string body = res.body().substr(0, 200);
        out[i].reason = "HTTP " + std::to_string(code);
        if (!body.empty()) {
          out[i].reason += ": ";
          out[i].reason += body;
        }
        bool permanent = code >= 400 && code < 500 && code != 408 && code != 425 && code != 429;
        out[i].kind = permanent ? Outcome::Kind::kRefused : Outcome::Kind::kRetry;
        if (!permanent) out[i].retry_after_ms = retry_after_ms(res[http::field::retry_after]);
      }
      if (!res.keep_alive()) {
        close();
        fail_from(i + 1, "the destination closed the connection before answering", false);
        co_return out;
      }
    }
    co_return out;
  }

  void close() {
    plain_.reset();
    tls_.reset();
    buffer_.clear();
  }

 private:
  bool open() const { return plain_.has_value() || tls_.has_value(); }

  Ex ex_;
  const Target& dest_;
  std::optional<Stream<Ex>> plain_;
  std::optional<beast::ssl_stream<Stream<Ex>>> tls_;
  beast::flat_buffer buffer_;
};

class HttpChannel final : public Channel {
 public:
  HttpChannel(asio::io_context& io, const Target& target)
      : strand_(asio::make_strand(io.get_executor())), conn_(strand_, target) {}

  void deliver(std::vector<queue::Lease> leases, DeliverDone done) override {
    std::size_t n = leases.size();
    asio::co_spawn(
        strand_,
        [this, leases = std::move(leases)]() mutable -> awaitable<std::vector<Outcome>, IoStrand> {
          co_return co_await conn_.post(leases);
        },
        [done = std::move(done), n](std::exception_ptr e, std::vector<Outcome> out) mutable {
          if (e) {
            out.assign(n, Outcome{.kind = Outcome::Kind::kRetry,
                                  .reason = "delivery failed inside the gateway"});
            spdlog::error("HTTP delivery coroutine ended by an exception");
          }
          done(std::move(out));
        });
  }

 private:
  IoStrand strand_;
  Connection conn_;
};

class HttpSink final : public Sink {
 public:
  HttpSink(asio::io_context& io, Target target) : io_(io), target_(std::move(target)) {}
  std::size_t batch() const override { return static_cast<std::size_t>(target_.config.pipeline); }
  std::unique_ptr<Channel> open_channel() override {
    return std::make_unique<HttpChannel>(io_, target_);
  }

 private:
  asio::io_context& io_;
  Target target_;
};

}  // namespace

Result<std::unique_ptr<Sink>> make_http_sink(asio::io_context& io,
                                             const DestinationConfig& config) {
  Target t;
  t.config = config;
  auto url = net::parse_url(config.url);
  if (!url) {
    return fail(url.error());
  }
  t.url = *url;
  if (url->tls) {
    auto ctx = net::make_client_context(config.ca, config.client_cert, config.client_key);
    if (!ctx) {
      return fail(Errc::kInvalidArgument, ctx.error().message);
    }
    t.tls = *ctx;
  }
  return std::unique_ptr<Sink>(new HttpSink(io, std::move(t)));
}

}  // namespace sluice::delivery
