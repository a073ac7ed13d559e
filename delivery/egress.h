// Delivery of stored messages to their destinations: the scheduler, written once for every
// kind of receiver. Per destination, `concurrency` workers (each on its own strand, with its
// own Channel of the destination's Sink) lease due messages from the store — one case at a
// time, so a case's events arrive in order — hand them to the channel, and ack or nack each
// outcome. A destination that cannot be reached pauses (exponential, up to 30 s) instead of
// burning the attempts of every queued message. Time comes from the injected Clock. A
// destination of kind ferry sends over `ferry`, the link to the other half. The set of
// destinations changes at run time (prepare, then commit).
#pragma once

#include <memory>
#include <vector>

#include "common/error.h"
#include "delivery/destination.h"

namespace boost::asio {
class io_context;
}
namespace sluice {
class Clock;
class Metrics;
}  // namespace sluice
namespace sluice::queue {
class Store;
}
namespace sluice::ferry {
class Link;
}

namespace sluice::delivery {

class Egress {
 public:
  static Result<std::unique_ptr<Egress>> start(boost::asio::io_context& io, queue::Store& store,
                                               const std::vector<DestinationConfig>& destinations,
                                               Metrics& metrics, const Clock& clock,
                                               ferry::Link* ferry = nullptr);
  ~Egress();
  // Stops leasing; deliveries in flight finish. Unacked leases return after a restart.
  void stop();

  // A new set of destinations, its new and changed ones with their sinks built but not started.
  struct Plan;
  // Builds the sinks `destinations` need beyond those running (an unchanged destination keeps
  // its workers); touches nothing running. An error names the destination.
  Result<std::shared_ptr<Plan>> prepare(const std::vector<DestinationConfig>& destinations) const;
  // Puts a prepared set in use: a destination removed or changed stops leasing (what it has in
  // flight is settled first), and the new ones start their workers.
  void commit(std::shared_ptr<Plan> plan);

  class Impl;

 private:
  explicit Egress(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::delivery
