#include "delivery/egress.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "common/metrics.h"
#include "net/tls.h"
#include "net/url.h"
#include "queue/queue.h"

namespace sluice::delivery {

using net::make_client_context;
using net::parse_url;
using net::Url;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Each worker runs on its own strand; concrete executor types avoid type-erased executor
// copies on every operation.
using IoStrand = asio::strand<asio::io_context::executor_type>;
using PoolStrand = asio::strand<asio::thread_pool::executor_type>;
template <class Ex>
using Stream = beast::basic_stream<tcp, Ex>;
template <class T, class Ex>
using awaitable = asio::awaitable<T, Ex>;
template <class Ex>
constexpr auto tuple_of() {
  return asio::as_tuple(asio::use_awaitable_t<Ex>());
}
constexpr std::int64_t kMaxPauseMs = 30'000;

// Wakes the workers of one destination when the store has new due work. Waiters register
// a timer on their own strand; a wake-up cancels it there. notify_one() wakes a single worker
// (the one that then finds more due work wakes the next), so a commit does not stampede every
// idle worker. A generation counter closes the gap between "found nothing to lease" and
// "registered to be woken".
class Waker {
 public:
  std::uint64_t generation() const { return generation_.load(); }

  void notify_one() {
    std::shared_ptr<asio::steady_timer> waiter;
    {
      std::lock_guard lock(mutex_);
      generation_.fetch_add(1);
      if (waiters_.empty()) {
        return;
      }
      waiter = std::move(waiters_.front());
      waiters_.erase(waiters_.begin());
    }
    asio::post(waiter->get_executor(), [waiter] { waiter->cancel(); });
  }

  void notify_all() {
    std::vector<std::shared_ptr<asio::steady_timer>> waiters;
    {
      std::lock_guard lock(mutex_);
      generation_.fetch_add(1);
      waiters.swap(waiters_);
    }
    for (auto& t : waiters) {
      asio::post(t->get_executor(), [t] { t->cancel(); });
    }
  }

  template <class Ex>
  awaitable<void, Ex> wait(std::uint64_t seen, std::chrono::steady_clock::duration max_wait) {
    Ex ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex, max_wait);
    {
      std::lock_guard lock(mutex_);
      if (generation_.load() != seen) {
        co_return;
      }
      waiters_.push_back(timer);
    }
    co_await timer->async_wait(tuple_of<Ex>());
    std::lock_guard lock(mutex_);
    std::erase(waiters_, timer);
  }

 private:
  std::mutex mutex_;
  std::atomic<std::uint64_t> generation_{0};
  std::vector<std::shared_ptr<asio::steady_timer>> waiters_;  // Guarded by mutex_.
};

struct Outcome {
  bool ok = false;
  bool permanent = false;
  bool connection_failed = false;  // the destination could not be reached at all
  std::string reason;
};

struct Destination {
  DestinationConfig config;
  Url url;
  std::shared_ptr<asio::ssl::context> tls;
  Waker waker;
};

// One kept-alive connection to an HTTP(S) destination.
class Connection {
 public:
  using Ex = IoStrand;
  Connection(Ex ex, Destination& d) : ex_(std::move(ex)), dest_(d) {}

  // Delivers the leases in order over this connection: with more than one, as pipelined
  // HTTP/1.1 requests written at once, then the responses read in order. Returns one outcome
  // per lease. A failure part-way fails the rest (they are retried; receivers deduplicate).
  awaitable<std::vector<Outcome>, Ex> post(std::vector<queue::Lease>& leases) {
    constexpr auto kTuple = tuple_of<Ex>();
    std::vector<Outcome> out(leases.size());
    auto fail_from = [&](std::size_t i, const std::string& reason, bool connection) {
      for (; i < out.size(); ++i) {
        out[i].connection_failed = connection;
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
    // The requests, serialised into one buffer (header values are our own: a UUID, a DocType
    // from the standard's list, a number).
    std::string wire;
    for (auto& lease : leases) {
      wire += "POST " + dest_.url.target + " HTTP/1.1\r\nHost: " + dest_.url.host +
              "\r\nUser-Agent: sluice\r\nContent-Type: application/xml; charset=utf-8"
              "\r\nX-Sluice-Message-Id: " +
              lease.message_id + "\r\nX-Sluice-Doc-Type: " + lease.doc_type +
              "\r\nX-Sluice-Attempt: " + std::to_string(lease.attempt) +
              "\r\nContent-Length: " + std::to_string(lease.payload.size()) + "\r\n\r\n";
      wire += lease.payload;
      std::string().swap(lease.payload);  // not needed after this attempt
    }
    boost::system::error_code ec;
    if (tls_) {
      beast::get_lowest_layer(*tls_).expires_after(timeout);
      std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(wire), kTuple);
    } else {
      plain_->expires_after(timeout);
      std::tie(ec, std::ignore) = co_await asio::async_write(*plain_, asio::buffer(wire), kTuple);
    }
    if (ec) {
      close();
      fail_from(0, "POST " + dest_.config.url + ": " + ec.message(), false);
      co_return out;
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
        out[i].ok = true;
      } else {
        std::string body = res.body().substr(0, 200);
        out[i].reason = "HTTP " + std::to_string(code) + (body.empty() ? "" : ": " + body);
        out[i].permanent = code >= 400 && code < 500 && code != 408 && code != 425 && code != 429;
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
  Destination& dest_;
  std::optional<Stream<Ex>> plain_;
  std::optional<beast::ssl_stream<Stream<Ex>>> tls_;
  beast::flat_buffer buffer_;
};

}  // namespace

class Egress::Impl : public std::enable_shared_from_this<Egress::Impl> {
 public:
  Impl(asio::io_context& io, queue::Store& store, Metrics& metrics)
      : io_(io), store_(store), metrics_(metrics), spool_pool_(2) {}

  Result<void> add(const DestinationConfig& config) {
    auto d = std::make_unique<Destination>();
    d->config = config;
    if (config.kind == SinkKind::kHttp) {
      auto url = parse_url(config.url);
      if (!url) {
        return fail(url.error());
      }
      d->url = *url;
      if (url->tls) {
        auto ctx = make_client_context(config.ca, config.client_cert, config.client_key);
        if (!ctx) {
          return fail(Errc::kInvalidArgument,
                      "destination " + config.name + ": " + ctx.error().message);
        }
        d->tls = *ctx;
      }
    } else {
      std::error_code ec;
      std::filesystem::create_directories(config.path, ec);
      if (ec) {
        return fail(Errc::kIo, "destination " + config.name + ": cannot create " +
                                   config.path.string() + ": " + ec.message());
      }
    }
    destinations_.push_back(std::move(d));
    return {};
  }

  void start() {
    store_.set_ready_listener([self = weak_from_this()](const std::string& dest) {
      if (auto s = self.lock()) {
        s->wake(dest);
      }
    });
    for (auto& d : destinations_) {
      for (int i = 0; i < d->config.concurrency; ++i) {
        if (d->config.kind == SinkKind::kHttp) {
          IoStrand strand = asio::make_strand(io_.get_executor());
          asio::co_spawn(strand, http_worker(*d), asio::detached);
        } else {
          PoolStrand strand = asio::make_strand(spool_pool_.get_executor());
          asio::co_spawn(strand, spool_worker(*d), asio::detached);
        }
      }
    }
  }

  void stop() {
    stopping_.store(true);
    store_.set_ready_listener(nullptr);
    for (auto& d : destinations_) {
      d->waker.notify_all();
    }
    spool_pool_.join();
  }

  void wake(const std::string& dest) {
    for (auto& d : destinations_) {
      if (d->config.name == dest) {
        d->waker.notify_one();
      }
    }
  }

 private:
  // Waits until the store may have due work for `d`, or at most until its next due time.
  template <class Ex>
  awaitable<void, Ex> idle(Destination& d, std::uint64_t generation) {
    auto next = store_.next_due_ms(d.config.name);
    std::chrono::milliseconds wait(60'000);
    if (next) {
      std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
      wait = std::chrono::milliseconds(std::clamp<std::int64_t>(*next - now, 1, 60'000));
    }
    co_await d.waker.wait<Ex>(generation, wait);
  }

  // A worker that found work passes the wake-up on while more is due.
  void wake_next_if_due(Destination& d) {
    auto next = store_.next_due_ms(d.config.name);
    if (next && *next <= std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()) {
      d.waker.notify_one();
    }
  }

  template <class Ex>
  awaitable<void, Ex> pause(std::int64_t ms) {
    Ex ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex, std::chrono::milliseconds(ms));
    co_await t.async_wait(tuple_of<Ex>());
  }

  void settle(const queue::Lease& lease, const Outcome& out, const std::string& dest) {
    if (out.ok) {
      store_.ack(lease);
      metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"delivered\"");
    } else {
      store_.nack(lease, out.reason, out.permanent);
      metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"" +
                                                  (out.permanent ? "refused" : "failed") + "\"");
      spdlog::warn("delivery of {} to {} (attempt {}) failed: {}", lease.message_id, dest,
                   lease.attempt, out.reason);
    }
  }

  awaitable<void, IoStrand> http_worker(Destination& d) {
    auto self = shared_from_this();
    IoStrand ex = co_await asio::this_coro::executor;
    Connection conn(ex, d);
    std::int64_t pause_ms = 0;
    while (!stopping_.load()) {
      std::uint64_t generation = d.waker.generation();
      auto leases = store_.lease(d.config.name, static_cast<std::size_t>(d.config.pipeline));
      if (leases.empty()) {
        co_await idle<IoStrand>(d, generation);
        continue;
      }
      wake_next_if_due(d);
      auto outcomes = co_await conn.post(leases);
      bool unreachable = false;
      for (std::size_t i = 0; i < leases.size(); ++i) {
        settle(leases[i], outcomes[i], d.config.name);
        unreachable |= outcomes[i].connection_failed;
      }
      if (unreachable) {
        pause_ms = std::min(kMaxPauseMs, pause_ms == 0 ? 500 : pause_ms * 2);
        co_await pause<IoStrand>(pause_ms);
      } else {
        pause_ms = 0;
      }
    }
  }

  awaitable<void, PoolStrand> spool_worker(Destination& d) {
    auto self = shared_from_this();
    std::int64_t pause_ms = 0;
    while (!stopping_.load()) {
      std::uint64_t generation = d.waker.generation();
      auto leases = store_.lease(d.config.name, 1);
      if (leases.empty()) {
        co_await idle<PoolStrand>(d, generation);
        continue;
      }
      wake_next_if_due(d);
      const auto& lease = leases[0];
      auto written = write_file_durable(d.config.path / (lease.message_id + ".xml"), lease.payload);
      Outcome out;
      out.ok = written.has_value();
      if (!written) {
        out.reason = written.error().message;
        out.connection_failed = true;
      }
      settle(lease, out, d.config.name);
      if (out.connection_failed) {
        pause_ms = std::min(kMaxPauseMs, pause_ms == 0 ? 500 : pause_ms * 2);
        co_await pause<PoolStrand>(pause_ms);
      } else {
        pause_ms = 0;
      }
    }
  }

  asio::io_context& io_;
  queue::Store& store_;
  Metrics& metrics_;
  asio::thread_pool spool_pool_;  // blocking file writes stay off the network threads
  std::vector<std::unique_ptr<Destination>> destinations_;
  std::atomic<bool> stopping_{false};
};

Egress::Egress(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Egress::~Egress() { stop(); }

Result<std::unique_ptr<Egress>> Egress::start(asio::io_context& io, queue::Store& store,
                                              const std::vector<DestinationConfig>& destinations,
                                              Metrics& metrics) {
  auto impl = std::make_shared<Impl>(io, store, metrics);
  for (const auto& d : destinations) {
    if (auto r = impl->add(d); !r) {
      return fail(r.error());
    }
  }
  impl->start();
  return std::unique_ptr<Egress>(new Egress(std::move(impl)));
}

void Egress::stop() {
  if (impl_) {
    impl_->stop();
  }
}

}  // namespace sluice::delivery
