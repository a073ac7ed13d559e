// Where delivered documents go. A Sink is one kind of receiver (an HTTP(S) endpoint, a spool
// directory; later the ferry and a next-hop gateway); the scheduler above it (delivery/egress.h)
// leases, backs off and settles, written once for every kind. A sink opens one Channel per
// delivery worker; a channel delivers a batch of leases in order and reports one outcome each.
// Channels know nothing of the store: they never ack or nack.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "queue/queue.h"

namespace sluice::delivery {

struct Outcome {
  enum class Kind : std::uint8_t {
    kDelivered,    // the receiver took it
    kRetry,        // try again later (5xx, 408/425/429, a timeout, a broken connection)
    kRefused,      // permanent: the receiver will never take it (other 4xx)
    kUnreachable,  // the receiver could not be reached at all: the destination pauses
  };
  Kind kind = Kind::kRetry;
  std::string reason;               // for the delivery record and the log; never personal data
  std::int64_t retry_after_ms = 0;  // the receiver's Retry-After, when it sent one
  // kUnreachable without trying: the sink knows the receiver is down (the ferry link is not
  // up), so the destination backs off at once and no attempt is spent.
  bool known_down = false;
};

using DeliverDone = std::move_only_function<void(std::vector<Outcome>)>;

class Channel {
 public:
  virtual ~Channel() = default;
  // Delivers `leases` in order and calls `done` exactly once, from any thread, with one
  // outcome per lease. Only one deliver() at a time per channel.
  virtual void deliver(std::vector<queue::Lease> leases, DeliverDone done) = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // How many leases one deliver() takes (HTTP pipelining); 1 for most sinks.
  virtual std::size_t batch() const = 0;
  virtual std::unique_ptr<Channel> open_channel() = 0;
};

}  // namespace sluice::delivery
