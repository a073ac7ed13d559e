#include "delivery/sinks/ferry/ferry_sink.h"

#include <atomic>
#include <mutex>

#include "ferry/link.h"

namespace sluice::delivery {

namespace {

Outcome outcome_of(const ferry::Sent& s) {
  using K = ferry::Sent::Kind;
  switch (s.kind) {
    case K::kStored:
      return {Outcome::Kind::kDelivered, "stored by the other half", 0};
    case K::kRefused:
      return {Outcome::Kind::kRefused, s.code + ": " + s.reason, 0};
    case K::kRetry:
      return {Outcome::Kind::kRetry, s.code + ": " + s.reason, 0};
    case K::kDown:
      break;
  }
  return {Outcome::Kind::kUnreachable, s.reason, 0, true};
}

class FerryChannel final : public Channel {
 public:
  explicit FerryChannel(ferry::Link& link) : link_(link) {}

  void deliver(std::vector<queue::Lease> leases, DeliverDone done) override {
    // One answer per lease, in lease order, whichever order the link answers them in.
    struct Batch {
      std::mutex mutex;
      std::vector<Outcome> outcomes;
      std::size_t left = 0;
      DeliverDone done;
    };
    auto batch = std::make_shared<Batch>();
    batch->outcomes.resize(leases.size());
    batch->left = leases.size();
    batch->done = std::move(done);
    for (std::size_t i = 0; i < leases.size(); ++i) {
      link_.send(std::move(leases[i].message_id), std::move(leases[i].payload),
                 [batch, i](ferry::Sent s) {
                   DeliverDone finish;
                   std::vector<Outcome> all;
                   {
                     std::lock_guard lock(batch->mutex);
                     batch->outcomes[i] = outcome_of(s);
                     if (--batch->left == 0) {
                       finish = std::move(batch->done);
                       all = std::move(batch->outcomes);
                     }
                   }
                   if (finish) finish(std::move(all));
                 });
    }
  }

 private:
  ferry::Link& link_;
};

class FerrySink final : public Sink {
 public:
  explicit FerrySink(ferry::Link& link) : link_(link) {}
  std::size_t batch() const override { return 32; }
  std::unique_ptr<Channel> open_channel() override { return std::make_unique<FerryChannel>(link_); }

 private:
  ferry::Link& link_;
};

}  // namespace

std::unique_ptr<Sink> make_ferry_sink(ferry::Link& link) {
  return std::make_unique<FerrySink>(link);
}

}  // namespace sluice::delivery
