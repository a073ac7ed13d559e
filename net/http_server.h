// The HTTPS listener: Boost.Beast over OpenSSL, one coroutine per connection with a timeout
// on every step (handshake, header, body, idle keep-alive), a body limit chosen per request
// by the handler, a header limit, request framing checked (RFC 9112), the body's bytes held
// against a process-wide budget, and connections admitted by net/admission.h (idle anonymous
// ones are closed to make room; authenticated clients keep their share). Requests are handed to an
// HttpHandler as plain values.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/error.h"
#include "net/http.h"
#include "net/listener.h"

namespace boost::asio {
class io_context;
}

namespace sluice {
class WorkerPool;
}

namespace sluice::net {

class BodyBudget;
class ServerTls;
struct ServerCounters {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // no room even after evicting
  std::atomic<std::uint64_t> connections_evicted{0};  // idle anonymous ones closed for room
  std::atomic<std::uint64_t> budget_refusals{0};      // 503: the body did not fit the budget
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::int64_t> in_flight{0};  // requests being handled
};

// One answered request, for the access log and the latency histograms: never a body or a
// query string (they may carry personal data), only what identifies the exchange.
struct RequestRecord {
  std::string_view listener;
  std::string_view method;  // "-" when the request line could not be read
  std::string_view path;
  unsigned status = 0;
  std::string_view sender;  // the client certificate's OU/CN, "-" without one
  std::string_view remote;  // address:port
  std::size_t bytes_in = 0;
  std::size_t bytes_out = 0;
  double seconds = 0;  // from the request's header read to its answer written
};
// Called on the connection's strand after each answer is written; it must not block.
using RequestObserver = std::function<void(const RequestRecord&)>;

class HttpServer {
 public:
  // Binds and starts accepting on `io`. Each connection runs on its own strand; CPU-bound
  // requests (RequestPlan::on_worker) run on `workers`, whose full queue answers 503. The
  // handler and the workers must outlive the server. Request bodies count against `budget`
  // (shared by the listeners of a process; may be nullptr: unbounded), which must outlive it.
  static Result<std::unique_ptr<HttpServer>> start(boost::asio::io_context& io,
                                                   const ListenerConfig& config,
                                                   std::shared_ptr<ServerTls> tls,
                                                   HttpHandler& handler, WorkerPool& workers,
                                                   BodyBudget* budget, std::string name,
                                                   RequestObserver observer = {});
  ~HttpServer();
  std::uint16_t port() const;
  // Stops accepting; open connections are left as they are (the destructor's call).
  void stop();
  // Drains the listener for a shutdown: stops accepting, and every connection stops taking
  // requests. One that has not begun a request (in its TLS handshake, or idle between
  // requests with no byte of the next one received) is closed at once: the client sent
  // nothing we have read, so it may resend anywhere. One whose request has begun reads it to
  // its end (within request_timeout_ms), has it handled, gets the answer with
  // `Connection: close` and closes; a request already read is never cut here. `drained` is
  // called once, on the thread of the last connection to close (at once, posted to the
  // io_context, when none is open), after every connection has closed: every answer was
  // written. It is never called while a connection is open, so the caller bounds the wait.
  // Thread-safe; call it at most once.
  void drain(std::function<void()> drained);
  const ServerCounters& counters() const;

  class Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::net
