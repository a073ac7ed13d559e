// Delivery of stored messages to their destinations. Per destination, `concurrency` workers
// lease due messages from the store and deliver them:
//  - http/https: POST over a kept-alive connection (Beast client), headers
//    X-Sluice-Message-Id, X-Sluice-Doc-Type, X-Sluice-Attempt so receivers can deduplicate;
//    2xx acks; 408/425/429/5xx and network errors retry with backoff; other 4xx are permanent.
//  - spool: <dir>/<MessageId>.xml written to a temp name, fsynced, renamed, dir fsynced.
// With `pipeline` > 1 a worker sends that many due messages as pipelined HTTP/1.1 requests on
// its connection and reads the answers in order (for receivers that support pipelining).
// A worker whose destination is unreachable pauses (exponential, up to 30 s) instead of
// burning the attempts of every queued message.
#pragma once

#include <memory>
#include <vector>

#include "common/error.h"
#include "delivery/destination.h"

namespace boost::asio {
class io_context;
}
namespace sluice {
class Metrics;
}
namespace sluice::queue {
class Store;
}

namespace sluice::delivery {

class Egress {
 public:
  static Result<std::unique_ptr<Egress>> start(boost::asio::io_context& io, queue::Store& store,
                                               const std::vector<DestinationConfig>& destinations,
                                               Metrics& metrics);
  ~Egress();
  // Stops leasing; deliveries in flight finish. Unacked leases return after a restart.
  void stop();

  class Impl;

 private:
  explicit Egress(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::delivery
