#include "net/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <spdlog/spdlog.h>

#include <mutex>
#include <unordered_set>

#include "common/worker_pool.h"
#include "net/admission.h"
#include "net/framing.h"
#include "net/tls.h"

namespace sluice::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Concrete executor types throughout: no type-erased executor copies per operation. Every
// connection lives on its own strand: its socket, its Beast timeouts and its coroutine all
// run there, so a timeout can never close the socket while a completion is running.
using IoExecutor = asio::io_context::executor_type;
using Strand = asio::strand<IoExecutor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Strand>;
using Socket = asio::basic_stream_socket<tcp, Strand>;
using TcpStream = beast::basic_stream<tcp, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;
template <class T>
using awaitable = asio::awaitable<T, Strand>;
constexpr asio::use_awaitable_t<Strand> kAwait;
constexpr auto kTuple = asio::as_tuple(kAwait);

// A response handed back from any thread to the session's strand. The session waits on
// `timer` (the request's deadline); respond() stores the answer and cancels the timer.
struct PendingAnswer {
  explicit PendingAnswer(Strand strand) : strand(strand), timer(strand) {}
  Strand strand;
  Timer timer;
  std::optional<HttpResponse> answer;  // only touched on the strand
  bool abandoned = false;              // the deadline passed and 504 was sent
};

// What another thread may do to a session: close it when admission evicts it, or drain it
// for a shutdown. Touched only on the session's strand.
struct SessionControl {
  explicit SessionControl(Strand s) : strand(s), drain_timer(s) {}
  // Whether a byte of the request being waited for has arrived (then a drain lets it finish).
  bool request_begun() const {
    return buffer != nullptr && (buffer->size() > 0 || (parser != nullptr && parser->got_some()));
  }
  Strand strand;
  TcpStream* stream = nullptr;  // while the session runs
  bool evicted = false;
  bool draining = false;  // answer the request in hand with Connection: close, take no other
  // From the accept until a request's header has been read (the handshake, then each wait
  // for the next request): the buffer and parser of that wait, while it runs.
  bool awaiting_request = true;
  const beast::flat_buffer* buffer = nullptr;
  const http::basic_parser<true>* parser = nullptr;
  Timer drain_timer;  // bounds the reading of a header begun when the drain came
};

// Holds ServerCounters::in_flight up for as long as a request is being handled.
struct InFlight {
  explicit InFlight(std::atomic<std::int64_t>& c) : count(c) { count.fetch_add(1); }
  ~InFlight() { count.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  std::atomic<std::int64_t>& count;
};

// Completion of a detached coroutine: an exception that escaped it is logged, never lost.
auto log_escape(const char* what) {
  return [what](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} ended by an exception: {}", what, ex.what());
    } catch (...) {
      spdlog::error("{} ended by an unknown exception", what);
    }
  };
}

// After the deadline, how long a request that reached the store may still take to commit.
constexpr std::int64_t kDeadlineGraceMs = 5'000;

// JSON string content: quotes, backslashes and control characters escaped.
std::string json_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

HttpResponse json_error(unsigned status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = R"({"error":{"code":")";
  r.body += json_escape(code);
  r.body += R"(","message":")";
  r.body += json_escape(message);
  r.body += R"("}})";
  return r;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, const ListenerConfig& config, std::shared_ptr<ServerTls> tls,
       HttpHandler& handler, WorkerPool& workers, BodyBudget* budget, std::string name,
       RequestObserver observer)
      : io_(io),
        config_(config),
        tls_(std::move(tls)),
        handler_(handler),
        workers_(workers),
        budget_(budget),
        name_(std::move(name)),
        observer_(std::move(observer)),
        accept_strand_(asio::make_strand(io)),
        acceptor_(accept_strand_),
        admission_(AdmissionLimits{.max_connections = config.max_connections,
                                   .max_anonymous = config.max_anonymous_connections,
                                   .max_anonymous_per_address = config.max_anonymous_per_address}) {
  }

  Result<void> bind() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config_.address, ec);
    if (ec) {
      return fail(Errc::kInvalidArgument,
                  name_ + " address " + config_.address + ": " + ec.message());
    }
    tcp::endpoint ep(address, config_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return fail(Errc::kIo, "cannot listen on " + config_.address + ":" +
                                 std::to_string(config_.port) + " (" + name_ +
                                 "): " + ec.message());
    }
    auto local = acceptor_.local_endpoint(ec);
    if (ec) {
      return fail(Errc::kIo, "listening socket of " + name_ + ": " + ec.message());
    }
    port_ = local.port();
    return {};
  }

  void start() {
    asio::co_spawn(
        accept_strand_, [self = shared_from_this()] { return self->accept_loop(); },
        log_escape("accept loop"));
  }

  // On the acceptor's strand: the accept loop may be running on another io thread.
  void stop() {
    asio::post(accept_strand_, [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
  }

  void drain(std::function<void()> drained) {
    std::vector<std::shared_ptr<SessionControl>> open;
    {
      std::lock_guard lock(sessions_mutex_);
      draining_ = true;
      if (sessions_.empty()) {
        asio::post(io_, std::move(drained));
      } else {
        drained_ = std::move(drained);
        open.assign(sessions_.begin(), sessions_.end());
      }
    }
    stop();
    for (const auto& control : open) {
      drain_session(control);
    }
  }

  std::uint16_t port() const { return port_; }
  ServerCounters& counters() { return counters_; }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
          co_return;
        }
        spdlog::warn("{}: accept failed: {}", name_, ec.message());
        continue;
      }
      std::string address;
      {
        boost::system::error_code ep_ec;
        auto ep = socket.remote_endpoint(ep_ec);
        if (!ep_ec) address = ep.address().to_string();
      }
      auto control = std::make_shared<SessionControl>(socket.get_executor());
      std::uint64_t ticket = admission_.admit(address, [this, control] {
        counters_.connections_evicted.fetch_add(1);
        asio::post(control->strand, [control] {
          control->evicted = true;
          if (control->stream != nullptr) control->stream->close();
        });
      });
      if (ticket == 0) {
        counters_.connections_refused.fetch_add(1);
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      bool draining = false;
      {
        // Registered in the same step that checks for a drain, so a drain reaches every
        // session that will run.
        std::lock_guard lock(sessions_mutex_);
        draining = draining_;
        if (!draining) sessions_.insert(control);
      }
      if (draining) {
        // Accepted before the drain closed the acceptor: it has sent nothing we read.
        admission_.release(ticket);
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      counters_.connections_accepted.fetch_add(1);
      counters_.open_connections.fetch_add(1);
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(
          socket.get_executor(),
          [self = shared_from_this(), s = std::move(socket), control, ticket]() mutable {
            return self->session(std::move(s), std::move(control), ticket);
          },
          log_escape("session"));
    }
  }

  awaitable<void> session(Socket socket, std::shared_ptr<SessionControl> control,
                          std::uint64_t ticket) {
    struct Guard {
      Impl& server;
      std::shared_ptr<SessionControl> control;
      std::uint64_t ticket;
      ~Guard() {
        server.admission_.release(ticket);
        server.counters_.open_connections.fetch_sub(1);
        server.session_ended(control);
      }
    } guard{*this, control, ticket};
    if (control->evicted || control->draining) co_return;
    std::string remote;
    {
      boost::system::error_code ec;
      auto ep = socket.remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    auto ctx = tls_->context();
    beast::ssl_stream<TcpStream> stream(TcpStream(std::move(socket)), *ctx);
    auto& tcp_layer = beast::get_lowest_layer(stream);
    control->stream = &tcp_layer;
    struct Detach {
      SessionControl& c;
      ~Detach() { c.stream = nullptr; }
    } detach{*control};
    {
      // Until the client sends its first byte the connection is idle, the first to be
      // closed when admission needs room; the handshake deadline counts from the accept.
      auto until = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(config_.handshake_timeout_ms);
      // The timer's handler runs on this strand. It may already be queued when the wait ends
      // (then the session may end before it runs): `armed` tells it whether the stream is
      // still waiting. An eviction may have closed the socket: cancel without throwing.
      auto armed = std::make_shared<bool>(true);
      Timer silence(co_await asio::this_coro::executor);
      silence.expires_at(until);
      silence.async_wait([&tcp_layer, armed](const boost::system::error_code& ec) {
        if (ec || !*armed) return;
        boost::system::error_code ignored;
        tcp_layer.socket().cancel(ignored);
      });
      auto [ec_w] = co_await tcp_layer.socket().async_wait(tcp::socket::wait_read, kTuple);
      *armed = false;
      silence.cancel();
      if (control->draining) co_return;
      if (ec_w || control->evicted) {
        counters_.handshake_failures.fetch_add(1);
        co_return;
      }
      admission_.spoke(ticket);
      tcp_layer.expires_at(until);
    }
    {
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
      if (control->draining) co_return;
      if (ec) {
        counters_.handshake_failures.fetch_add(1);
        spdlog::info("{}: TLS handshake with {} failed: {}", name_, remote, ec.message());
        co_return;
      }
    }
    PeerIdentity peer = peer_identity(stream.native_handle());
    if (peer.authenticated) admission_.authenticated(ticket);
    beast::flat_buffer buffer;
    bool keep_alive = true;
    while (keep_alive) {
      // Draining: the last answer was already on its way with keep-alive; nothing of a next
      // request has been read (bytes of one pipelined behind it go unanswered, which a client
      // must expect of a closing connection, RFC 9112 §9.3.2).
      if (control->draining) break;
      Exchange ex;
      ex.remote = remote;
      if (peer.authenticated) ex.sender = peer.sender();
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
      // The real limit is chosen per request once the header is known.
      parser.body_limit(std::max(config_.max_body_bytes, config_.max_batch_bytes));
      tcp_layer.expires_after(std::chrono::milliseconds(config_.idle_timeout_ms));
      control->awaiting_request = true;
      control->buffer = &buffer;
      control->parser = &parser;
      auto [ec_h, n_h] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      control->awaiting_request = false;
      control->buffer = nullptr;
      control->parser = nullptr;
      ex.start = std::chrono::steady_clock::now();
      if (ec_h) {
        if (!tcp_layer.socket().is_open()) {
          break;  // closed by a drain or an eviction: nothing to answer
        }
        if (ec_h == http::error::body_limit) {
          co_await send(ex, stream,
                        json_error(413, "http.body-too-large",
                                   "request body exceeds the limit of " +
                                       std::to_string(std::max(config_.max_body_bytes,
                                                               config_.max_batch_bytes)) +
                                       " bytes"),
                        false);
        } else if (ec_h == http::error::header_limit) {
          co_await send(ex, stream,
                        json_error(431, "http.header-too-large",
                                   "request header exceeds " +
                                       std::to_string(config_.max_header_bytes) + " bytes"),
                        false);
        } else if (ec_h != http::error::end_of_stream &&
                   ec_h != asio::ssl::error::stream_truncated && ec_h != beast::error::timeout &&
                   ec_h != asio::error::eof && ec_h != asio::error::connection_reset) {
          co_await send(
              ex, stream,
              json_error(400, "http.bad-request", "malformed HTTP request: " + ec_h.message()),
              false);
        }
        break;
      }
      auto& header = parser.get();
      ex.method = std::string(header.method_string());
      ex.path = std::string(header.target().substr(0, header.target().find('?')));
      {
        // RFC 9112 §6: a body delimited any other way than one Content-Length or exactly
        // "chunked" is refused and the connection closed (request smuggling starts there).
        std::vector<std::string_view> te;
        std::vector<std::string_view> cl;
        for (const auto& f : header) {
          if (f.name() == http::field::transfer_encoding) te.push_back(f.value());
          if (f.name() == http::field::content_length) cl.push_back(f.value());
        }
        if (auto bad = check_request_framing(te, cl, header.version())) {
          counters_.requests.fetch_add(1);
          co_await send(ex, stream, json_error(bad->status, bad->code, bad->message), false);
          break;
        }
      }
      std::string target(header.target());
      std::string path = target.substr(0, target.find('?'));
      std::optional<std::uint64_t> declared;
      if (auto len = parser.content_length()) declared = *len;
      RequestPlan plan = handler_.plan(RequestHead{.method = header.method_string(),
                                                   .path = path,
                                                   .peer = peer,
                                                   .content_length = declared});
      if (plan.refuse) {
        // Decided on the header: the body is never read into memory.
        counters_.requests.fetch_add(1);
        co_await send(ex, stream, std::move(*plan.refuse), false);
        if (auto len = parser.content_length()) {
          co_await linger(stream, buffer, *len);
        }
        break;
      }
      auto deadline =
          std::chrono::steady_clock::now() +
          (plan.timeout.count() > 0 ? plan.timeout
                                    : std::chrono::milliseconds(config_.handler_timeout_ms));
      std::size_t limit = plan.body_limit;
      parser.body_limit(limit);
      if (auto len = parser.content_length(); len && *len > limit) {
        co_await send(ex, stream,
                      json_error(413, "http.body-too-large",
                                 "request body of " + std::to_string(*len) +
                                     " bytes exceeds the limit of " + std::to_string(limit)),
                      false);
        co_await linger(stream, buffer, *len);
        break;
      }
      // The body's bytes count against the process-wide budget before any is read: the
      // declared length, or the whole limit when chunked.
      std::shared_ptr<BodyBudget::Lease> lease;
      if (budget_ != nullptr) {
        std::size_t want = 0;
        if (auto len = parser.content_length()) {
          want = static_cast<std::size_t>(*len);
        } else if (parser.chunked()) {
          want = limit;
        }
        if (want > budget_->max()) {
          counters_.requests.fetch_add(1);
          co_await send(ex, stream,
                        json_error(413, "http.body-too-large",
                                   "request body of " + std::to_string(want) +
                                       " bytes exceeds max_body_bytes_in_flight (" +
                                       std::to_string(budget_->max()) + ")"),
                        false);
          if (auto len = parser.content_length()) co_await linger(stream, buffer, *len);
          break;
        }
        if (want > 0) {
          if (!budget_->try_reserve(want)) {
            counters_.requests.fetch_add(1);
            counters_.budget_refusals.fetch_add(1);
            HttpResponse busy = json_error(
                503, "server.busy",
                "request bodies being received already take " + std::to_string(budget_->used()) +
                    " of the " + std::to_string(budget_->max()) + " bytes allowed at once; " +
                    "this one needs " + std::to_string(want) + "; try again shortly");
            busy.headers.emplace_back("Retry-After", "1");
            co_await send(ex, stream, std::move(busy), false);
            if (auto len = parser.content_length()) co_await linger(stream, buffer, *len);
            break;
          }
          lease = std::make_shared<BodyBudget::Lease>(budget_, want);
        }
      }
      if (beast::iequals(header[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, header.version()};
        tcp_layer.expires_after(std::chrono::milliseconds(config_.request_timeout_ms));
        auto [ec_c, n_c] = co_await http::async_write(stream, cont, kTuple);
        if (ec_c) break;
      }
      tcp_layer.expires_after(std::chrono::milliseconds(config_.request_timeout_ms));
      auto [ec_b, n_b] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (ec_b) {
        if (ec_b == http::error::body_limit) {
          co_await send(
              ex, stream,
              json_error(413, "http.body-too-large",
                         "request body exceeds the limit of " + std::to_string(limit) + " bytes"),
              false);
        } else if (ec_b == beast::error::timeout) {
          co_await send(ex, stream,
                        json_error(408, "http.timeout",
                                   "the request was not received within " +
                                       std::to_string(config_.request_timeout_ms) + " ms"),
                        false);
        }
        break;
      }
      counters_.requests.fetch_add(1);
      auto req_msg = parser.release();
      keep_alive = req_msg.keep_alive();
      HttpRequest req;
      req.method = std::string(req_msg.method_string());
      req.target = std::move(target);
      req.path = std::move(path);
      if (auto q = req.target.find('?'); q != std::string::npos) {
        req.query = req.target.substr(q + 1);
      }
      for (const auto& field : req_msg) {
        req.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
      }
      req.body = std::move(req_msg.body());
      ex.bytes_in = req.body.size();
      req.peer = peer;
      req.remote = remote;
      req.deadline = deadline;
      HttpResponse res;
      {
        InFlight in_flight(counters_.in_flight);
        // The socket must not time out while the handler works; the deadline bounds it.
        tcp_layer.expires_never();
        admission_.busy(ticket, true);
        res = co_await handle(std::move(req), plan.on_worker, deadline, lease);
        admission_.busy(ticket, false);
      }
      lease.reset();
      if (res.status == 504 || (res.status >= 500 && res.status != 503)) {
        keep_alive = false;  // a late answer may still be on its way; start afresh
      }
      if (control->draining) {
        keep_alive = false;  // answered, and told this connection takes no more
      }
      tcp_layer.expires_after(std::chrono::milliseconds(config_.request_timeout_ms));
      if (!co_await send(ex, stream, std::move(res), keep_alive)) {
        break;
      }
    }
    tcp_layer.expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  }

  // On the session's strand: it takes no further request; closed now unless a request has
  // begun, whose header then has request_timeout_ms to arrive (the body has the same).
  void drain_session(const std::shared_ptr<SessionControl>& control) {
    asio::post(control->strand, [control, timeout = config_.request_timeout_ms] {
      control->draining = true;
      if (control->stream == nullptr || !control->awaiting_request) {
        return;  // not started (it sees `draining`), or its request is being read or handled
      }
      if (!control->request_begun()) {
        control->stream->close();
        return;
      }
      control->drain_timer.expires_after(std::chrono::milliseconds(timeout));
      control->drain_timer.async_wait(
          [weak = std::weak_ptr<SessionControl>(control)](const boost::system::error_code& ec) {
            auto c = weak.lock();
            if (!ec && c && c->awaiting_request && c->stream != nullptr) c->stream->close();
          });
    });
  }

  // Called by every session as it ends, on its strand; the last one of a drain calls back.
  void session_ended(const std::shared_ptr<SessionControl>& control) {
    std::function<void()> drained;
    {
      std::lock_guard lock(sessions_mutex_);
      sessions_.erase(control);
      if (draining_ && sessions_.empty()) drained = std::exchange(drained_, nullptr);
    }
    if (drained) drained();
  }

  // Runs the handler (on the worker pool or here on the strand) and waits for its answer,
  // at most until `deadline` plus a grace for work already handed to the store; then 504.
  // A handler that throws is answered with 500.
  awaitable<HttpResponse> handle(HttpRequest req, bool on_worker,
                                 std::chrono::steady_clock::time_point deadline,
                                 std::shared_ptr<BodyBudget::Lease> lease) {
    auto strand = co_await asio::this_coro::executor;
    auto pending = std::make_shared<PendingAnswer>(strand);
    pending->timer.expires_at(deadline + std::chrono::milliseconds(kDeadlineGraceMs));
    auto respond = [pending](HttpResponse res) {
      asio::post(pending->strand, [pending, res = std::move(res)]() mutable {
        if (pending->abandoned || pending->answer) return;
        pending->answer = std::move(res);
        pending->timer.cancel();
      });
    };
    // The job keeps the body's share of the budget for as long as it holds the body.
    auto job = [self = shared_from_this(), respond, req = std::move(req),
                lease = std::move(lease)]() mutable {
      std::string what = req.method + " " + req.path;
      try {
        self->handler_.handle(std::move(req), respond);
      } catch (const std::exception& e) {
        spdlog::error("{}: handler failed on {}: {}", self->name_, what, e.what());
        respond(json_error(500, "internal.error", "the request failed inside the gateway"));
      } catch (...) {
        spdlog::error("{}: handler failed on {}", self->name_, what);
        respond(json_error(500, "internal.error", "the request failed inside the gateway"));
      }
    };
    if (on_worker) {
      if (!workers_.try_post(std::move(job))) {
        HttpResponse busy =
            json_error(503, "server.busy",
                       "every worker is busy (" + std::to_string(workers_.max_queued()) +
                           " requests waiting); try again shortly");
        busy.headers.emplace_back("Retry-After", "1");
        co_return busy;
      }
    } else {
      job();
    }
    if (!pending->answer) {
      co_await pending->timer.async_wait(kTuple);
    }
    if (pending->answer) {
      co_return std::move(*pending->answer);
    }
    pending->abandoned = true;
    co_return json_error(504, "request.deadline",
                         "no answer within the request's deadline; if the request stored a "
                         "document, sending it again with the "
                         "same SenderMessageId returns the original");
  }

  // Lingering close: after refusing a body, read and discard what the client is still
  // sending (bounded), so that it reads our answer instead of a connection reset.
  awaitable<void> linger(beast::ssl_stream<TcpStream>& stream, beast::flat_buffer& buffer,
                         std::uint64_t declared) {
    constexpr std::uint64_t kMaxDrain = 8u << 20;
    std::uint64_t left = std::min<std::uint64_t>(declared, kMaxDrain);
    left = left > buffer.size() ? left - buffer.size() : 0;
    buffer.clear();
    auto& tcp_layer = beast::get_lowest_layer(stream);
    tcp_layer.expires_after(std::chrono::seconds(2));
    char scratch[16 * 1024];
    while (left > 0) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kTuple);
      if (ec || n == 0) break;
      left = n >= left ? 0 : left - n;
    }
  }

  // What the access log and the latency histograms need of the exchange being answered.
  struct Exchange {
    std::string method = "-";
    std::string path = "-";
    std::string sender = "-";
    std::string_view remote;
    std::size_t bytes_in = 0;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };

  awaitable<bool> send(Exchange& ex, beast::ssl_stream<TcpStream>& stream, HttpResponse res,
                       bool keep_alive) {
    const unsigned status = res.status;
    const std::size_t bytes_out = res.body.size();
    const bool ok = co_await send(stream, std::move(res), keep_alive);
    if (observer_) {
      observer_(RequestRecord{
          .listener = name_,
          .method = ex.method,
          .path = ex.path,
          .status = status,
          .sender = ex.sender,
          .remote = ex.remote,
          .bytes_in = ex.bytes_in,
          .bytes_out = bytes_out,
          .seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - ex.start).count()});
    }
    co_return ok;
  }

  awaitable<bool> send(beast::ssl_stream<TcpStream>& stream, HttpResponse res, bool keep_alive) {
    http::response<http::string_body> msg{static_cast<http::status>(res.status), 11};
    msg.set(http::field::server, "sluice");
    msg.set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) {
      msg.set(k, v);
    }
    msg.body() = std::move(res.body);
    msg.keep_alive(keep_alive);
    msg.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, msg, kTuple);
    co_return !ec;
  }

  asio::io_context& io_;
  ListenerConfig config_;
  std::shared_ptr<ServerTls> tls_;
  HttpHandler& handler_;
  WorkerPool& workers_;
  BodyBudget* budget_;
  std::string name_;
  RequestObserver observer_;
  Strand accept_strand_;
  Acceptor acceptor_;
  ConnectionAdmission admission_;
  std::uint16_t port_ = 0;
  ServerCounters counters_;
  std::mutex sessions_mutex_;
  // Every session from its accept to its end, so that a drain reaches each and learns when
  // the last one has ended.
  std::unordered_set<std::shared_ptr<SessionControl>> sessions_;  // Guarded by sessions_mutex_.
  bool draining_ = false;                                         // Guarded by sessions_mutex_.
  std::function<void()> drained_;                                 // Guarded by sessions_mutex_.
};

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(asio::io_context& io,
                                                      const ListenerConfig& config,
                                                      std::shared_ptr<ServerTls> tls,
                                                      HttpHandler& handler, WorkerPool& workers,
                                                      BodyBudget* budget, std::string name,
                                                      RequestObserver observer) {
  auto impl = std::make_shared<Impl>(io, config, std::move(tls), handler, workers, budget,
                                     std::move(name), std::move(observer));
  if (auto r = impl->bind(); !r) {
    return fail(r.error());
  }
  impl->start();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::stop() { impl_->stop(); }
void HttpServer::drain(std::function<void()> drained) { impl_->drain(std::move(drained)); }
const ServerCounters& HttpServer::counters() const { return impl_->counters(); }

}  // namespace sluice::net
