// One end of the ferry link (docs/ferry.md). The outer half binds a ROUTER as CURVE server and
// admits, through a ZAP handler that runs before the bind, only the configured inner public
// keys; the inner half connects a DEALER with the outer's public key pinned, and never listens.
// Both directions share the link: each end sends documents (send()) and answers documents it
// receives (the handler's Reply). One thread owns the ZeroMQ sockets; every public method is
// thread-safe and none blocks on the network.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "ferry/frame.h"

namespace sluice::ferry {

enum class Side : std::uint8_t { kOuter, kInner };

struct LinkConfig {
  Side side = Side::kOuter;
  std::string endpoint;    // outer: bind ("tcp://ADDR:PORT"); inner: connect
  std::string public_key;  // our CURVE key pair (Z85)
  std::string secret_key;
  std::string server_key;                    // inner: the outer's public key, pinned
  std::vector<std::string> allowed_keys;     // outer: inner public keys the ZAP handler admits
  std::string gateway_id;                    // said in HELLO
  std::uint32_t credit_docs = 256;           // granted to the peer: unanswered documents
  std::uint64_t credit_bytes = 64ull << 20;  // and their payload bytes
  std::size_t max_frame_bytes = 16u << 20;   // ZMQ_MAXMSGSIZE: no part may be larger
  std::size_t batch_docs = 64;               // documents per DOCS message at most
  std::int64_t heartbeat_ms = 1'000;         // PING (and ZMTP heartbeat) interval
  std::int64_t stall_ms = 10'000;            // nothing heard for this long: the link is down
  std::int64_t answer_timeout_ms = 30'000;   // a document unanswered this long: retry it
  std::int64_t reconnect_min_ms = 100;       // inner: backoff after a link went down...
  std::int64_t reconnect_max_ms = 10'000;    // ...doubling up to this
  std::int64_t query_timeout_ms = 3'000;     // a query unanswered this long fails
};

// A document received from the peer.
struct Received {
  Direction direction = Direction::kInbound;
  std::string message_id;
  std::string payload;  // length and SHA-256 already checked against the header
};

// The receiver's answer to one document; the link sends it in the next RESULT message.
struct Verdict {
  Fate fate = Fate::kStored;
  std::string code;
  std::string reason;
};
// Called exactly once per received document, from any thread.
using Reply = std::move_only_function<void(Verdict)>;
// Receives documents on the link thread: it must hand the work elsewhere and return.
using ReceiveHandler = std::function<void(Received, Reply)>;

// What became of a document sent.
struct Sent {
  enum class Kind : std::uint8_t {
    kStored,   // the peer has it in its synced store (stored now, or a duplicate)
    kRefused,  // the peer refused it for good: code and reason say why
    kRetry,    // the peer asked to have it later, or did not answer in time
    kDown,     // the link is down: nothing was sent, or its answer was lost with the link
  };
  Kind kind = Kind::kDown;
  std::string code;
  std::string reason;
};
using SendDone = std::move_only_function<void(Sent)>;

// Queries: what the other half knows of a document this half sent it (its state there and
// its delivery receipt). Answered once, from any thread: kUnavailable while the link is
// down, kTimeout when the other half does not answer in query_timeout_ms.
using QueryDone = std::move_only_function<void(Result<Answer>)>;
using AnswerFn = std::move_only_function<void(Answer)>;
// Answers the other half's queries; called on the link thread: hand the work elsewhere.
using QueryHandler = std::function<void(std::string message_id, AnswerFn)>;

// Optional observers, called on the link thread (they must hand any work elsewhere): a
// document this end refused itself, before any handler saw it (it crossed the wrong way, or
// its payload does not match its header), and the peer's answer to a document this end sent.
struct LinkObserver {
  std::function<void(Direction, const std::string& message_id, const std::string& code,
                     const std::string& reason)>
      refused_here;
  std::function<void(Direction, const std::string& message_id, const Sent&)> answered;
};

struct LinkStatus {
  bool up = false;
  std::string state;               // "up", "connecting", "waiting for the inner half", "stopped"
  std::string endpoint;            // the bound (outer) or connected (inner) endpoint
  std::string peer_key;            // the peer's CURVE public key (outer: the admitted inner key)
  std::string peer_gateway;        // from the peer's HELLO
  std::int64_t last_heard_ms = 0;  // wall clock of the last frame from the peer (0: never)
  std::int64_t up_since_ms = 0;
  std::uint64_t in_flight = 0;    // sent, unanswered
  std::uint64_t waiting = 0;      // queued to send (credit or link down)
  std::uint64_t credit_docs = 0;  // the peer's grant to us
  std::uint64_t credit_bytes = 0;
  std::uint64_t received_in_progress = 0;  // received, not yet answered by this half
  std::uint64_t sent_total = 0, stored_total = 0, refused_total = 0, retried_total = 0;
  std::uint64_t received_total = 0, received_refused_total = 0;
  std::uint64_t zap_denied_total = 0;  // outer: connections refused for an unknown key
  std::uint64_t link_downs_total = 0;
  std::string last_error;  // why it went down last, or why it is not up
};

class Link {
 public:
  // Binds (outer, after starting the ZAP handler) or connects (inner) and starts the thread.
  static Result<std::unique_ptr<Link>> start(LinkConfig config, Direction sends,
                                             ReceiveHandler on_receive, QueryHandler on_query = {},
                                             LinkObserver observer = {});
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Queues one document; `done` is called once, on the link thread. A document that is too
  // large for a frame is refused at once; while the link is down, kDown at once.
  void send(std::string message_id, std::string payload, SendDone done);
  void query(std::string message_id, QueryDone done);
  LinkStatus status() const;
  // The endpoint actually bound (outer: with the port chosen for ":0"/":*").
  std::string bound_endpoint() const;
  // Answers every waiting document kDown and joins the thread. Idempotent.
  void stop();

  class Impl;

 private:
  explicit Link(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ferry
