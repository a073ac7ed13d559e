#include "tools/sink/sink.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

#include "common/fs.h"

namespace sluice::tools {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}

class Sink::Impl : public std::enable_shared_from_this<Sink::Impl> {
 public:
  Impl(asio::io_context& io, SinkOptions options, OnMessage on_message)
      : io_(io), options_(std::move(options)), on_message_(std::move(on_message)), acceptor_(io) {}

  void start() {
    if (!options_.cert.empty()) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_->use_certificate_chain_file(options_.cert.string());
      tls_->use_private_key_file(options_.key.string(), asio::ssl::context::pem);
    }
    if (!options_.write_dir.empty()) {
      std::filesystem::create_directories(options_.write_dir);
    }
    tcp::endpoint ep(asio::ip::make_address(options_.address), options_.port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(
        io_, [self = shared_from_this()] { return self->accept_loop(); }, asio::detached);
  }

  void stop() {
    asio::post(io_, [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
  }

  std::uint16_t port() const { return port_; }

  SinkStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (!acceptor_.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(
          socket.get_executor(),
          [self = shared_from_this(), s = std::move(socket)]() mutable {
            return self->session(std::move(s));
          },
          asio::detached);
    }
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64u << 20);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (ec) co_return;
      auto req = parser.release();
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      if (req.method() == http::verb::get && req.target() == "/stats") {
        res.body() = stats_json();
      } else if (req.method() == http::verb::post) {
        bool failed = false;
        res.body() = accept(req, failed);
        if (failed) {
          res.result(http::status::internal_server_error);
        } else if (res.body().empty()) {
          res.result(http::status::service_unavailable);
          res.body() = "{\"error\":\"refusing on purpose (unavailable)\"}";
          if (options_.retry_after_s > 0) {
            res.set(http::field::retry_after, std::to_string(options_.retry_after_s));
          }
        }
      } else {
        res.result(http::status::not_found);
      }
      res.prepare_payload();
      auto [ec_w, n_w] = co_await http::async_write(stream, res, kTuple);
      if (ec_w || !res.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (tls_) {
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
      if (ec) co_return;
      co_await serve(stream);
    } else {
      beast::tcp_stream stream(std::move(socket));
      co_await serve(stream);
    }
  }

  // Returns the JSON answer, or empty to refuse with 503. A message counts as received only
  // once it is kept (written, when the sink writes): a reader that sees it counted finds it
  // on disk, and a write that failed is answered 500 so the gateway delivers it again.
  std::string accept(const http::request<http::string_body>& req, bool& failed) {
    std::string id(req["X-Sluice-Message-Id"]);
    bool fresh = false;
    {
      std::lock_guard lock(mutex_);
      stats_.requests += 1;
      if (stats_.refused < options_.fail_first || unavailable_.load()) {
        stats_.refused += 1;
        return {};
      }
      fresh = seen_.insert(id).second;
      if (!fresh) {
        stats_.duplicates += 1;
      }
    }
    if (fresh) {
      if (!options_.write_dir.empty()) {
        std::string name = id.empty() ? "unnamed" : id;
        if (name.find('/') == std::string::npos && name.find("..") == std::string::npos) {
          if (auto w = write_file_durable(options_.write_dir / (name + ".xml"), req.body()); !w) {
            std::lock_guard lock(mutex_);
            seen_.erase(id);
            failed = true;
            return "{\"error\":\"not kept: " + w.error().message + "\"}";
          }
        }
      }
      if (on_message_) on_message_(id, req.body());
      std::lock_guard lock(mutex_);
      stats_.distinct += 1;
    }
    return R"({"received":true})";
  }

 public:
  std::string stats_json_impl() const {
    auto s = stats();
    return "{\"requests\":" + std::to_string(s.requests) +
           ",\"distinct\":" + std::to_string(s.distinct) +
           ",\"duplicates\":" + std::to_string(s.duplicates) +
           ",\"refused\":" + std::to_string(s.refused) + "}";
  }

  std::atomic<bool> unavailable_{false};

 private:
  std::string stats_json() const { return stats_json_impl(); }

  asio::io_context& io_;
  SinkOptions options_;
  OnMessage on_message_;
  tcp::acceptor acceptor_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  SinkStats stats_;                       // Guarded by mutex_.
  std::unordered_set<std::string> seen_;  // Guarded by mutex_.
};

Sink::Sink(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sink::~Sink() { impl_->stop(); }

std::unique_ptr<Sink> Sink::start(asio::io_context& io, SinkOptions options, OnMessage on_message) {
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(on_message));
  impl->start();
  return std::unique_ptr<Sink>(new Sink(std::move(impl)));
}

std::uint16_t Sink::port() const { return impl_->port(); }
SinkStats Sink::stats() const { return impl_->stats(); }
void Sink::set_unavailable(bool unavailable) { impl_->unavailable_.store(unavailable); }
std::string Sink::stats_json() const { return impl_->stats_json_impl(); }

}  // namespace sluice::tools
