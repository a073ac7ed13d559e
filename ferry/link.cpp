#include "ferry/link.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/encoding.h"
#include "common/random.h"

namespace sluice::ferry {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

// The ZAP endpoint libzmq asks (RFC 27); it must be bound in the socket's context before the
// socket accepts a connection.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kZapDomain = "sluice-ferry";

// What the ZAP handler and the link thread share.
struct ZapState {
  std::vector<std::string> allowed;  // Z85 public keys
  std::atomic<bool> alive{true};
  std::atomic<std::uint64_t> denied{0};
  std::atomic<bool> stop{false};
};

// Replies to documents received come from other threads (the pipeline's completion thread);
// they land here and wake the link thread through an eventfd.
struct Mailbox {
  explicit Mailbox(int fd) : wake_fd(fd) {}
  ~Mailbox() { ::close(wake_fd); }
  // One write per batch of work, not per item: the eventfd is written only when no wake is
  // pending, and the link thread clears the flag before it takes the work, so an item pushed
  // after that takes a new wake. Many replies or sends thus meet one wake-up, and are sent
  // together (one RESULT, one DOCS message) instead of one message each.
  void wake() const {
    if (pending.exchange(true)) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }
  void woken() const {
    std::uint64_t v = 0;
    [[maybe_unused]] auto r = ::read(wake_fd, &v, sizeof v);
    pending.store(false);
  }
  mutable std::atomic<bool> pending{false};
  struct Answer {
    std::string routing_id;  // outer: the peer connection the document came from
    std::uint64_t epoch = 0;
    ResultEntry entry;
    std::uint64_t bytes = 0;
  };
  std::mutex mutex;
  std::vector<Answer> answers;                                       // guarded by mutex
  std::vector<std::pair<std::string, ferry::Answer>> query_answers;  // guarded by mutex
  const int wake_fd;
};

struct Outgoing {
  std::string message_id;
  std::string payload;
  SendDone done;
};

struct PendingQuery {
  SteadyClock::time_point deadline;
  QueryDone done;
};

struct InFlight {
  std::string message_id;
  std::uint64_t bytes = 0;
  SteadyClock::time_point deadline;
  SendDone done;
};

}  // namespace

class Link::Impl {
 public:
  Impl(LinkConfig config, Direction sends, ReceiveHandler on_receive, QueryHandler on_query,
       LinkObserver observer)
      : config_(std::move(config)),
        sends_(sends),
        on_receive_(std::move(on_receive)),
        on_query_(std::move(on_query)),
        observer_(std::move(observer)),
        epoch_(SecureRandom::instance().next_u64() | 1) {}

  ~Impl() { stop(); }

  Result<void> start() {
    // spdlog makes its registry on first use: here, before the link's threads log.
    spdlog::default_logger_raw();
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return fail(Errc::kIo, "eventfd failed");
    mailbox_ = std::make_shared<Mailbox>(fd);
    status_.endpoint = config_.endpoint;
    try {
      if (config_.side == Side::kOuter) {
        if (auto r = start_zap(); !r) return r;
        if (auto r = open_socket(); !r) return r;
      }
    } catch (const zmq::error_t& e) {
      return fail(Errc::kIo, "ferry " + config_.endpoint + ": " + e.what());
    }
    thread_ = std::thread([this] { run(); });
    return {};
  }

  void send(std::string message_id, std::string payload, SendDone done) {
    if (payload.size() + 4096 > config_.max_frame_bytes) {
      done(Sent{Sent::Kind::kRefused, "ferry.too-large",
                "document of " + std::to_string(payload.size()) +
                    " bytes is larger than a ferry frame (ferry.max_frame_kb)"});
      return;
    }
    {
      std::lock_guard lock(mutex_);
      if (!stopping_ && up_) {
        outbox_.push_back({std::move(message_id), std::move(payload), std::move(done)});
        mailbox_->wake();
        return;
      }
    }
    done(Sent{Sent::Kind::kDown, "ferry.down", "the ferry link is down: " + down_reason()});
  }

  void query(std::string message_id, QueryDone done) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_ && up_) {
        queries_.emplace_back(std::move(message_id), std::move(done));
        mailbox_->wake();
        return;
      }
    }
    done(fail(Errc::kUnavailable, "the ferry link is down: " + down_reason()));
  }

  LinkStatus status() const {
    std::lock_guard lock(mutex_);
    LinkStatus s = status_;
    s.waiting = outbox_.size();
    s.zap_denied_total = zap_ ? zap_->denied.load() : 0;
    return s;
  }

  std::string bound_endpoint() const {
    std::lock_guard lock(mutex_);
    return status_.endpoint;
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    if (mailbox_) mailbox_->wake();
    if (thread_.joinable()) thread_.join();
    if (zap_) zap_->stop = true;
    if (zap_thread_.joinable()) zap_thread_.join();
  }

 private:
  // ---- ZAP (outer) -------------------------------------------------------------------------

  Result<void> start_zap() {
    zap_ = std::make_shared<ZapState>();
    zap_->allowed = config_.allowed_keys;
    // Bound here, before the ROUTER exists, so no connection is ever accepted without it.
    auto zap = std::make_shared<zmq::socket_t>(ctx_, zmq::socket_type::rep);
    zap->set(zmq::sockopt::linger, 0);
    zap->bind(kZapEndpoint);
    zap_thread_ = std::thread([state = zap_, zap, wake = mailbox_] {
      try {
        serve_zap(*state, *zap);
      } catch (const std::exception& e) {
        spdlog::error(
            "ferry: the ZAP handler stopped ({}): the link closes and refuses every "
            "connection",
            e.what());
      }
      zap->close();
      state->alive = false;
      wake->wake();
    });
    return {};
  }

  static void serve_zap(ZapState& state, zmq::socket_t& zap) {
    std::map<std::string, SteadyClock::time_point> logged;  // one line per key a minute
    while (!state.stop) {
      zmq::pollitem_t item{zap.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(200));
      if ((item.revents & ZMQ_POLLIN) == 0) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(zap, std::back_inserter(req), zmq::recv_flags::dontwait)) continue;
      if (req.size() < 6) throw std::runtime_error("malformed ZAP request");
      const std::string request_id = req[1].to_string();
      const std::string address = req[3].to_string();
      const std::string mechanism = req[5].to_string();
      std::string key;
      if (mechanism == "CURVE" && req.size() >= 7 && req[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const std::uint8_t*>(req[6].data()), 32);
        key = z85;
      }
      bool admitted = false;
      for (const auto& k : state.allowed) admitted = admitted || (!key.empty() && k == key);
      if (!admitted) {
        state.denied.fetch_add(1);
        auto now = SteadyClock::now();
        auto& last = logged[key];
        if (now - last > std::chrono::minutes(1)) {
          last = now;
          spdlog::warn(
              "ferry: refused a connection from {}: {} key {} is not in "
              "ferry.allowed_keys",
              address, mechanism, key.empty() ? "(none)" : key);
        }
      }
      const std::string user_id = admitted ? key : std::string();
      std::array<zmq::const_buffer, 6> reply{
          zmq::str_buffer("1.0"),
          zmq::buffer(request_id),
          admitted ? zmq::str_buffer("200") : zmq::str_buffer("400"),
          admitted ? zmq::str_buffer("OK") : zmq::str_buffer("key not admitted"),
          zmq::buffer(user_id),
          zmq::str_buffer(""),
      };
      if (!zmq::send_multipart(zap, reply)) throw std::runtime_error("ZAP reply not sent");
    }
  }

  // ---- sockets -----------------------------------------------------------------------------

  Result<void> open_socket() {
    auto s = std::make_unique<zmq::socket_t>(
        ctx_, config_.side == Side::kOuter ? zmq::socket_type::router : zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(config_.max_frame_bytes));
    s->set(zmq::sockopt::heartbeat_ivl, static_cast<int>(config_.heartbeat_ms));
    s->set(zmq::sockopt::heartbeat_timeout, static_cast<int>(config_.stall_ms));
    s->set(zmq::sockopt::heartbeat_ttl, static_cast<int>(config_.stall_ms));
    s->set(zmq::sockopt::handshake_ivl, static_cast<int>(config_.stall_ms));
    s->set(zmq::sockopt::sndhwm, 10'000);
    s->set(zmq::sockopt::rcvhwm, 10'000);
    s->set(zmq::sockopt::curve_secretkey, config_.secret_key);
    s->set(zmq::sockopt::curve_publickey, config_.public_key);
    if (config_.side == Side::kOuter) {
      s->set(zmq::sockopt::curve_server, true);
      s->set(zmq::sockopt::zap_domain, kZapDomain);
      s->set(zmq::sockopt::router_mandatory, true);
      s->bind(config_.endpoint);
      std::lock_guard lock(mutex_);
      status_.endpoint = s->get(zmq::sockopt::last_endpoint);
      status_.state = "waiting for the inner half";
    } else {
      s->set(zmq::sockopt::curve_serverkey, config_.server_key);
      s->set(zmq::sockopt::immediate, true);
      s->set(zmq::sockopt::reconnect_ivl, static_cast<int>(config_.reconnect_min_ms));
      s->set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(config_.reconnect_max_ms));
      // Why a connection fails (refused key, wrong server key, unreachable) comes from the
      // socket's monitor.
      monitor_endpoint_ = "inproc://sluice-ferry-monitor-" + std::to_string(++monitor_count_);
      if (zmq_socket_monitor(
              s->handle(), monitor_endpoint_.c_str(),
              ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0) {
        return fail(Errc::kIo, std::string("zmq_socket_monitor: ") + zmq_strerror(zmq_errno()));
      }
      monitor_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
      monitor_->set(zmq::sockopt::linger, 0);
      monitor_->connect(monitor_endpoint_);
      s->connect(config_.endpoint);
      opened_at_ = SteadyClock::now();
      std::lock_guard lock(mutex_);
      status_.state = "connecting";
    }
    socket_ = std::move(s);
    return {};
  }

  void close_socket() {
    if (socket_ && config_.side == Side::kInner) {
      zmq_socket_monitor(socket_->handle(), nullptr, 0);
    }
    monitor_.reset();
    socket_.reset();
  }

  // ---- the link thread ---------------------------------------------------------------------

  void run() {
    auto next_beat = SteadyClock::now();
    while (true) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
      }
      auto now = SteadyClock::now();
      try {
        if (zap_ && !zap_->alive) {
          if (socket_) {
            go_down("the ZAP handler stopped: the link is closed and refuses every connection");
            close_socket();
            set_state("stopped");
          }
        } else if (config_.side == Side::kInner && !socket_ && now >= reconnect_at_) {
          if (auto r = open_socket(); !r) {
            note_error(r.error().message);
            schedule_reconnect();
          } else {
            send_hello();
          }
        }
        poll_once(now, next_beat);
        now = SteadyClock::now();
        if (socket_) {
          flush_answers();
          flush_queries();
          flush_outbox();
          if (now >= next_beat) {
            next_beat = now + milliseconds(config_.heartbeat_ms);
            heartbeat(now);
          }
          expire(now);
        }
      } catch (const zmq::error_t& e) {
        // EHOSTUNREACH from a ROUTER whose peer went, or a socket error: the link goes down
        // and (inner) reconnects.
        go_down(std::string("socket error: ") + e.what());
        if (config_.side == Side::kInner) {
          close_socket();
          schedule_reconnect();
        }
      }
      publish_status();
    }
    go_down("sluiced is stopping");
    fail_outbox("sluiced is stopping");
    close_socket();
    {
      std::lock_guard lock(mutex_);
      status_.state = "stopped";
      status_.up = false;
    }
  }

  void poll_once(SteadyClock::time_point now, SteadyClock::time_point next_beat) {
    std::int64_t timeout = std::max<std::int64_t>(1, ms_between(now, next_beat));
    if (!socket_) timeout = std::clamp<std::int64_t>(ms_between(now, reconnect_at_), 1, 200);
    zmq::pollitem_t items[3] = {
        {nullptr, mailbox_->wake_fd, ZMQ_POLLIN, 0},
        {socket_ ? socket_->handle() : nullptr, 0, ZMQ_POLLIN, 0},
        {monitor_ ? monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0},
    };
    int n = 1 + (socket_ ? 1 : 0) + (socket_ && monitor_ ? 1 : 0);
    zmq::poll(items, static_cast<std::size_t>(n), milliseconds(timeout));
    if (items[0].revents & ZMQ_POLLIN) mailbox_->woken();
    if (n >= 3 && (items[2].revents & ZMQ_POLLIN)) read_monitor();
    if (n >= 2 && (items[1].revents & ZMQ_POLLIN)) {
      for (int i = 0; i < 256 && socket_; ++i) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(*socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
          break;
        }
        on_message(parts);
      }
    }
  }

  void read_monitor() {
    while (monitor_) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(*monitor_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        return;
      }
      if (parts.size() < 2 || parts[0].size() < 6) continue;
      std::uint16_t event = 0;
      std::uint32_t value = 0;
      std::memcpy(&event, parts[0].data(), 2);
      std::memcpy(&value, static_cast<const char*>(parts[0].data()) + 2, 4);
      const std::string where = parts[1].to_string();
      switch (event) {
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          handshake_failed_ = true;
          note_error("the outer half refused this half's CURVE key (ZAP status " +
                     std::to_string(value) +
                     "): add its public key to the outer's "
                     "ferry.allowed_keys");
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
          handshake_failed_ = true;
          note_error("CURVE handshake with " + where +
                     " failed: is ferry.server_key the outer half's public key?");
          break;
        case ZMQ_EVENT_CONNECT_RETRIED:
          // A handshake failure already said why; a retry after it adds nothing.
          if (!up_ && !handshake_failed_) note_error("cannot connect to " + where + " (retrying)");
          break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
          handshake_failed_ = false;
          break;
        case ZMQ_EVENT_DISCONNECTED:
          if (up_) go_down("disconnected from " + where);
          break;
        default:
          break;
      }
    }
  }

  void on_message(std::vector<zmq::message_t>& parts) {
    std::size_t first = 0;
    std::string routing_id;
    if (config_.side == Side::kOuter) {
      if (parts.size() < 2) return;
      routing_id = parts[0].to_string();
      first = 1;
    }
    if (parts.size() <= first) return;
    auto control = decode_control(parts[first].to_string_view());
    if (!control) {
      spdlog::warn("ferry: dropped a message from the peer: {}", control.error().message);
      return;
    }
    heard_ = SteadyClock::now();
    if (config_.side == Side::kOuter && control->type != FrameType::kHello &&
        routing_id != peer_routing_id_) {
      // A connection that has not said HELLO (this half restarted under it): ask for one.
      send_control(routing_id, encode_hello(my_hello()));
    }
    switch (control->type) {
      case FrameType::kHello: {
        std::string peer_key;
        if (config_.side == Side::kOuter) {
          const char* uid = parts[first].gets("User-Id");
          peer_key = uid != nullptr ? uid : "";
        } else {
          peer_key = config_.server_key;
        }
        on_hello(control->hello, routing_id, peer_key);
        break;
      }
      case FrameType::kDocs:
        on_docs(*control, parts, first + 1, routing_id);
        break;
      case FrameType::kResult:
        on_results(control->results);
        break;
      case FrameType::kPing:
        send_control(routing_id, encode_ping(FrameType::kPong, control->ping_ms));
        break;
      case FrameType::kPong:
        break;
      case FrameType::kQuery:
        on_query(control->query, routing_id);
        break;
      case FrameType::kAnswer: {
        auto it = pending_queries_.find(control->answer.id);
        if (it == pending_queries_.end()) break;  // timed out already
        auto done = std::move(it->second.done);
        pending_queries_.erase(it);
        done(std::move(control->answer));
        break;
      }
    }
  }

  void on_query(const Query& q, const std::string& routing_id) {
    auto box = mailbox_;
    AnswerFn answer = [box, routing_id, id = q.id](Answer a) {
      a.id = id;
      std::lock_guard lock(box->mutex);
      box->query_answers.emplace_back(routing_id, std::move(a));
      box->wake();
    };
    if (!on_query_) {
      answer(Answer{});
      return;
    }
    on_query_(q.message_id, std::move(answer));
  }

  void flush_queries() {
    if (!up_) return;
    std::deque<std::pair<std::string, QueryDone>> queries;
    {
      std::lock_guard lock(mutex_);
      queries.swap(queries_);
    }
    for (auto& [message_id, done] : queries) {
      const std::uint64_t id = next_query_id_++;
      if (!send_control(peer_routing_id_, encode_query({id, message_id}))) {
        done(fail(Errc::kUnavailable, "the query could not be sent: the link is going down"));
        continue;
      }
      pending_queries_.emplace(
          id, PendingQuery{SteadyClock::now() + milliseconds(config_.query_timeout_ms),
                           std::move(done)});
    }
  }

  Hello my_hello() const {
    return Hello{.epoch = epoch_,
                 .credit_docs = config_.credit_docs,
                 .credit_bytes = config_.credit_bytes,
                 .gateway_id = config_.gateway_id};
  }

  void send_hello() { send_control({}, encode_hello(my_hello())); }

  void on_hello(const Hello& h, const std::string& routing_id, const std::string& peer_key) {
    const bool new_peer = !up_ || h.epoch != peer_epoch_ || routing_id != peer_routing_id_;
    if (new_peer && up_) {
      // The peer restarted or reconnected: answers to what we sent it are lost with the old
      // connection; those documents go again (the receiver deduplicates by MessageId).
      go_down("the peer " + h.gateway_id + " started a new session");
    }
    if (config_.side == Side::kOuter) {
      send_control(routing_id, encode_hello(my_hello()));  // the outer answers every HELLO
    } else if (new_peer && h.epoch != peer_epoch_ && peer_epoch_ != 0) {
      send_hello();  // the outer restarted and spoke first: introduce ourselves again
    }
    peer_epoch_ = h.epoch;
    peer_routing_id_ = routing_id;
    credit_docs_ = h.credit_docs;
    credit_bytes_ = h.credit_bytes;
    reconnect_backoff_ms_ = 0;
    if (!up_) {
      spdlog::info("ferry: link up with {} (key {})", h.gateway_id, peer_key);
      std::lock_guard lock(mutex_);
      up_ = true;
      status_.up = true;
      status_.state = "up";
      status_.up_since_ms = wall_ms();
      status_.peer_gateway = h.gateway_id;
      status_.peer_key = peer_key;
      status_.credit_docs = credit_docs_;
      status_.credit_bytes = credit_bytes_;
    }
  }

  void on_docs(const Control& c, std::vector<zmq::message_t>& parts, std::size_t first,
               const std::string& routing_id) {
    if (parts.size() - first != c.docs.size()) {
      spdlog::warn("ferry: dropped a DOCS message: {} headers, {} payload parts", c.docs.size(),
                   parts.size() - first);
      return;
    }
    const Direction expected =
        config_.side == Side::kOuter ? Direction::kOutbound : Direction::kInbound;
    for (std::size_t i = 0; i < c.docs.size(); ++i) {
      const DocHeader& h = c.docs[i];
      std::string_view payload = parts[first + i].to_string_view();
      received_total_++;
      auto refuse = [&](Fate fate, std::string code, std::string reason) {
        if (fate == Fate::kRefused) received_refused_total_++;
        spdlog::warn("ferry: {} document {} from the peer: {}",
                     fate == Fate::kRefused ? "refused" : "deferred", h.message_id, reason);
        if (fate == Fate::kRefused && observer_.refused_here) {
          observer_.refused_here(h.direction, h.message_id, code, reason);
        }
        queue_answer(routing_id, h.epoch, {h.seq, fate, std::move(code), std::move(reason)}, 0);
      };
      if (h.direction != expected) {
        refuse(Fate::kRefused, "ferry.wrong-direction",
               std::string("a document crossing ") + std::string(to_string(h.direction)) +
                   " may not arrive at this half");
        continue;
      }
      if (auto ok = check_payload(h, payload); !ok) {
        refuse(Fate::kRefused, "ferry.digest-mismatch", ok.error().message);
        continue;
      }
      if (receiving_docs_ + 1 > config_.credit_docs ||
          (receiving_docs_ > 0 && receiving_bytes_ + payload.size() > config_.credit_bytes)) {
        refuse(Fate::kRetry, "ferry.over-credit",
               "more documents unanswered than this half granted");
        continue;
      }
      receiving_docs_++;
      receiving_bytes_ += payload.size();
      Received r{h.direction, h.message_id, std::string(payload)};
      auto box = mailbox_;
      Reply reply = [box, routing_id, epoch = h.epoch, seq = h.seq,
                     bytes = payload.size()](Verdict v) {
        std::lock_guard lock(box->mutex);
        box->answers.push_back(
            {routing_id, epoch, {seq, v.fate, std::move(v.code), std::move(v.reason)}, bytes});
        box->wake();
      };
      on_receive_(std::move(r), std::move(reply));
    }
  }

  void queue_answer(const std::string& routing_id, std::uint64_t epoch, ResultEntry e,
                    std::uint64_t bytes) {
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->answers.push_back({routing_id, epoch, std::move(e), bytes | kNotCounted});
  }
  // Marks an answer for a document that never took credit.
  static constexpr std::uint64_t kNotCounted = 1ull << 63;

  // Sends every answer waiting, one RESULT message per connection and epoch.
  void flush_answers() {
    std::vector<Mailbox::Answer> answers;
    {
      std::lock_guard lock(mailbox_->mutex);
      answers.swap(mailbox_->answers);
    }
    std::vector<std::pair<std::string, ferry::Answer>> query_answers;
    {
      std::lock_guard lock(mailbox_->mutex);
      query_answers.swap(mailbox_->query_answers);
    }
    for (auto& [routing_id, a] : query_answers) send_control(routing_id, encode_answer(a));
    if (answers.empty()) return;
    std::map<std::pair<std::string, std::uint64_t>, Results> by_peer;
    for (auto& a : answers) {
      if ((a.bytes & kNotCounted) == 0) {
        receiving_docs_--;
        receiving_bytes_ -= a.bytes;
      }
      auto& r = by_peer[{a.routing_id, a.epoch}];
      r.epoch = a.epoch;
      r.entries.push_back(std::move(a.entry));
    }
    for (auto& [key, results] : by_peer) {
      if (!send_control(key.first, encode_results(results))) {
        // The connection is gone: the sender will send these documents again, and they are
        // answered as duplicates then.
        spdlog::debug("ferry: {} answers not sent: the connection closed", results.entries.size());
      }
    }
  }

  void flush_outbox() {
    while (up_) {
      std::vector<Outgoing> batch;
      std::uint64_t batch_bytes = 0;
      {
        std::lock_guard lock(mutex_);
        while (!outbox_.empty() && batch.size() < config_.batch_docs) {
          const auto size = outbox_.front().payload.size();
          const auto docs = in_flight_.size() + batch.size();
          const bool fits = docs < credit_docs_ &&
                            (docs == 0 || in_flight_bytes_ + batch_bytes + size <= credit_bytes_);
          if (!fits) break;
          batch_bytes += size;
          batch.push_back(std::move(outbox_.front()));
          outbox_.pop_front();
        }
      }
      if (batch.empty()) return;
      std::vector<DocHeader> headers;
      std::vector<zmq::message_t> parts;
      if (config_.side == Side::kOuter) parts.emplace_back(peer_routing_id_);
      parts.emplace_back();  // the control part, below
      const std::uint64_t first_seq = next_seq_;
      for (auto& o : batch) {
        DocHeader h;
        h.direction = sends_;
        h.epoch = epoch_;
        h.seq = next_seq_++;
        h.message_id = o.message_id;
        h.length = static_cast<std::uint32_t>(o.payload.size());
        h.sha256 = sha256(o.payload);
        headers.push_back(std::move(h));
        parts.emplace_back(o.payload.data(), o.payload.size());
      }
      parts[config_.side == Side::kOuter ? 1 : 0] = zmq::message_t(encode_docs(headers));
      std::optional<zmq::send_result_t> sent;
      try {
        sent = zmq::send_multipart(*socket_, parts, zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        // The peer's connection went (EHOSTUNREACH on the ROUTER): these documents were not
        // sent; say so now rather than leave their leases to time out.
        for (auto& o : batch) {
          o.done(Sent{Sent::Kind::kDown, "ferry.down",
                      std::string("the ferry link went down: ") + e.what()});
        }
        throw;
      }
      if (!*sent) {
        // The pipe is full or (inner) not connected: put them back, first, and try later.
        next_seq_ = first_seq;
        std::lock_guard lock(mutex_);
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
          outbox_.push_front(std::move(*it));
        }
        return;
      }
      auto deadline = SteadyClock::now() + milliseconds(config_.answer_timeout_ms);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        in_flight_bytes_ += batch[i].payload.size();
        in_flight_.emplace(first_seq + i,
                           InFlight{std::move(batch[i].message_id), batch[i].payload.size(),
                                    deadline, std::move(batch[i].done)});
      }
      sent_total_ += batch.size();
    }
  }

  void on_results(const Results& r) {
    if (r.epoch != epoch_) return;  // answers to an earlier run of this half
    for (const auto& e : r.entries) {
      auto it = in_flight_.find(e.seq);
      if (it == in_flight_.end()) continue;  // answered already (timed out, link went down)
      InFlight f = std::move(it->second);
      in_flight_.erase(it);
      in_flight_bytes_ -= f.bytes;
      Sent s;
      switch (e.fate) {
        case Fate::kStored:
        case Fate::kDuplicate:
          s.kind = Sent::Kind::kStored;
          stored_total_++;
          break;
        case Fate::kRefused:
          s.kind = Sent::Kind::kRefused;
          refused_total_++;
          break;
        case Fate::kRetry:
          s.kind = Sent::Kind::kRetry;
          retried_total_++;
          break;
      }
      s.code = e.code;
      s.reason = e.reason;
      if (observer_.answered) observer_.answered(sends_, f.message_id, s);
      f.done(std::move(s));
    }
  }

  void heartbeat(SteadyClock::time_point now) {
    if (config_.side == Side::kInner && !up_) {
      if (ms_between(opened_at_, now) > config_.stall_ms) {
        // Connected or not, the outer has not answered HELLO: start afresh.
        note_error(down_reason_.empty() ? "no answer from the outer half at " + config_.endpoint +
                                              " in " + std::to_string(config_.stall_ms) + " ms"
                                        : down_reason_);
        close_socket();
        schedule_reconnect();
        return;
      }
      send_hello();
      return;
    }
    if (!up_) return;
    if (ms_between(heard_, now) > config_.stall_ms) {
      go_down("nothing heard from the peer for " + std::to_string(ms_between(heard_, now)) +
              " ms (ferry.stall_ms " + std::to_string(config_.stall_ms) + ")");
      if (config_.side == Side::kInner) {
        close_socket();
        schedule_reconnect();
      }
      return;
    }
    send_control(peer_routing_id_,
                 encode_ping(FrameType::kPing, static_cast<std::uint64_t>(wall_ms())));
  }

  void expire(SteadyClock::time_point now) {
    for (auto it = pending_queries_.begin(); it != pending_queries_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      auto done = std::move(it->second.done);
      it = pending_queries_.erase(it);
      done(fail(Errc::kTimeout, "the other half did not answer in " +
                                    std::to_string(config_.query_timeout_ms) + " ms"));
    }
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      InFlight f = std::move(it->second);
      it = in_flight_.erase(it);
      in_flight_bytes_ -= f.bytes;
      retried_total_++;
      f.done(
          Sent{Sent::Kind::kRetry, "ferry.no-answer",
               "no answer from the peer in " + std::to_string(config_.answer_timeout_ms) + " ms"});
    }
  }

  // Sends one control part (to `routing_id` on the outer). False when it could not be sent.
  bool send_control(const std::string& routing_id, const std::string& control) {
    if (!socket_) return false;
    try {
      if (config_.side == Side::kOuter) {
        if (routing_id.empty()) return false;
        if (!socket_->send(zmq::buffer(routing_id),
                           zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          return false;
        }
      }
      return socket_->send(zmq::buffer(control), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return false;  // that connection has gone
      throw;
    }
  }

  void go_down(const std::string& reason) {
    const bool was_up = up_;
    {
      std::lock_guard lock(mutex_);
      up_ = false;
      status_.up = false;
      if (was_up) {
        status_.link_downs_total++;
        status_.state = config_.side == Side::kOuter ? "waiting for the inner half" : "connecting";
      }
      status_.last_error = reason;
      down_reason_ = reason;
    }
    if (was_up) spdlog::warn("ferry: link down: {}", reason);
    peer_routing_id_.clear();
    auto in_flight = std::move(in_flight_);
    in_flight_.clear();
    in_flight_bytes_ = 0;
    for (auto& [seq, f] : in_flight) {
      f.done(Sent{Sent::Kind::kDown, "ferry.down", "the ferry link went down: " + reason});
    }
    auto queries = std::move(pending_queries_);
    pending_queries_.clear();
    for (auto& [id, q] : queries) {
      q.done(fail(Errc::kUnavailable, "the ferry link went down: " + reason));
    }
    fail_outbox(reason);
  }

  void fail_outbox(const std::string& reason) {
    std::deque<Outgoing> waiting;
    std::deque<std::pair<std::string, QueryDone>> queries;
    {
      std::lock_guard lock(mutex_);
      waiting.swap(outbox_);
      queries.swap(queries_);
    }
    for (auto& [id, done] : queries) {
      done(fail(Errc::kUnavailable, "the ferry link went down: " + reason));
    }
    for (auto& o : waiting) {
      o.done(Sent{Sent::Kind::kDown, "ferry.down", "the ferry link went down: " + reason});
    }
  }

  // Records why the link is not up; each distinct reason is logged at most once a minute (a
  // refused key is retried every reconnect interval).
  void note_error(const std::string& reason) {
    auto now = SteadyClock::now();
    auto& last = logged_[reason];
    if (last == SteadyClock::time_point{} || now - last > std::chrono::minutes(1)) {
      last = now;
      spdlog::warn("ferry: {}", reason);
    }
    if (logged_.size() > 64) logged_.clear();
    std::lock_guard lock(mutex_);
    status_.last_error = reason;
    down_reason_ = reason;
  }

  void schedule_reconnect() {
    reconnect_backoff_ms_ = reconnect_backoff_ms_ == 0
                                ? config_.reconnect_min_ms
                                : std::min(reconnect_backoff_ms_ * 2, config_.reconnect_max_ms);
    reconnect_at_ = SteadyClock::now() + milliseconds(reconnect_backoff_ms_);
    set_state("connecting (again in " + std::to_string(reconnect_backoff_ms_) + " ms)");
  }

  void set_state(std::string s) {
    std::lock_guard lock(mutex_);
    status_.state = std::move(s);
  }

  std::string down_reason() const {
    std::lock_guard lock(mutex_);
    return down_reason_.empty() ? status_.state : down_reason_;
  }

  void publish_status() {
    std::lock_guard lock(mutex_);
    status_.last_heard_ms = heard_ == SteadyClock::time_point{}
                                ? 0
                                : wall_ms() - ms_between(heard_, SteadyClock::now());
    status_.in_flight = in_flight_.size();
    status_.credit_docs = credit_docs_;
    status_.credit_bytes = credit_bytes_;
    status_.received_in_progress = receiving_docs_;
    status_.sent_total = sent_total_;
    status_.stored_total = stored_total_;
    status_.refused_total = refused_total_;
    status_.retried_total = retried_total_;
    status_.received_total = received_total_;
    status_.received_refused_total = received_refused_total_;
  }

  const LinkConfig config_;
  const Direction sends_;
  ReceiveHandler on_receive_;
  QueryHandler on_query_;
  LinkObserver observer_;
  const std::uint64_t epoch_;

  zmq::context_t ctx_;
  std::shared_ptr<Mailbox> mailbox_;
  std::shared_ptr<ZapState> zap_;
  std::thread zap_thread_;
  std::thread thread_;

  mutable std::mutex mutex_;
  bool stopping_ = false;                                  // guarded by mutex_
  std::deque<Outgoing> outbox_;                            // guarded by mutex_
  std::deque<std::pair<std::string, QueryDone>> queries_;  // guarded by mutex_
  LinkStatus status_;                                      // guarded by mutex_
  std::string down_reason_;                                // guarded by mutex_
  std::atomic<bool> up_{false};  // written by the link thread under mutex_

  // The link thread's own.
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;
  std::string monitor_endpoint_;
  bool handshake_failed_ = false;
  std::map<std::string, SteadyClock::time_point> logged_;
  int monitor_count_ = 0;
  SteadyClock::time_point opened_at_;
  SteadyClock::time_point heard_;
  SteadyClock::time_point reconnect_at_;
  std::int64_t reconnect_backoff_ms_ = 0;
  std::string peer_routing_id_;
  std::uint64_t peer_epoch_ = 0;
  std::uint64_t credit_docs_ = 0;
  std::uint64_t credit_bytes_ = 0;
  std::map<std::uint64_t, InFlight> in_flight_;
  std::map<std::uint64_t, PendingQuery> pending_queries_;
  std::uint64_t next_query_id_ = 1;
  std::uint64_t in_flight_bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t receiving_docs_ = 0;
  std::uint64_t receiving_bytes_ = 0;
  std::uint64_t sent_total_ = 0, stored_total_ = 0, refused_total_ = 0, retried_total_ = 0;
  std::uint64_t received_total_ = 0, received_refused_total_ = 0;
};

Link::Link(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Link::~Link() = default;

Result<std::unique_ptr<Link>> Link::start(LinkConfig config, Direction sends,
                                          ReceiveHandler on_receive, QueryHandler on_query,
                                          LinkObserver observer) {
  auto impl = std::make_unique<Impl>(std::move(config), sends, std::move(on_receive),
                                     std::move(on_query), std::move(observer));
  if (auto r = impl->start(); !r) return fail(r.error());
  return std::unique_ptr<Link>(new Link(std::move(impl)));
}

void Link::send(std::string message_id, std::string payload, SendDone done) {
  impl_->send(std::move(message_id), std::move(payload), std::move(done));
}
void Link::query(std::string message_id, QueryDone done) {
  impl_->query(std::move(message_id), std::move(done));
}
LinkStatus Link::status() const { return impl_->status(); }
std::string Link::bound_endpoint() const { return impl_->bound_endpoint(); }
void Link::stop() { impl_->stop(); }

}  // namespace sluice::ferry
