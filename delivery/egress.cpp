#include "delivery/egress.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/random.h"
#include "delivery/sink.h"
#include "delivery/sinks/ferry/ferry_sink.h"
#include "delivery/sinks/http/http_sink.h"
#include "delivery/sinks/spool/spool_sink.h"
#include "queue/queue.h"

namespace sluice::delivery {

namespace asio = boost::asio;

namespace {

// Each worker runs on its own strand; concrete executor types avoid type-erased executor
// copies on every operation. Sinks do the receiver-specific work (delivery/sinks/).
using IoStrand = asio::strand<asio::io_context::executor_type>;
template <class T, class Ex>
using awaitable = asio::awaitable<T, Ex>;
template <class Ex>
constexpr auto tuple_of() {
  return asio::as_tuple(asio::use_awaitable_t<Ex>());
}

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

// The circuit breaker of one destination, shared by its workers. Closed: every worker leases.
// After `breaker_failures` failures in a row it opens: nobody leases until the back-off ends
// (breaker_min_ms doubling to breaker_max_ms, or the receiver's Retry-After up to the max);
// then one worker probes with a single delivery. Success closes it; failure opens it again
// for twice as long. Thread-safe.
class Breaker {
 public:
  explicit Breaker(const DestinationConfig& c) : config_(c) {}

  struct Gate {
    bool lease = true;
    bool probe = false;
    std::int64_t wait_ms = 0;  // when !lease: how long until it may be asked again
  };
  Gate before_lease(std::int64_t now) {
    std::lock_guard lock(mutex_);
    if (open_until_ == 0) return {};
    if (now < open_until_) return {.lease = false, .wait_ms = open_until_ - now};
    if (probing_) return {.lease = false, .wait_ms = config_.breaker_min_ms};
    probing_ = true;
    return {.lease = true, .probe = true};
  }
  // The probe found nothing to deliver: another worker may probe.
  void abandon_probe() {
    std::lock_guard lock(mutex_);
    probing_ = false;
  }
  // Returns true when the destination was backed off and is now closed again.
  bool success() {
    std::lock_guard lock(mutex_);
    bool was_open = open_until_ != 0;
    failures_ = 0;
    open_until_ = 0;
    backoff_ms_ = 0;
    probing_ = false;
    return was_open;
  }
  struct Failed {
    std::int64_t open_until = 0;  // 0: still closed (the failure spends an attempt)
    bool opened = false;          // this failure opened it (or re-opened it after a probe)
  };
  Failed failure(std::int64_t now, std::int64_t retry_after_ms, bool probe) {
    std::lock_guard lock(mutex_);
    failures_ += 1;
    bool trip = open_until_ == 0 && failures_ >= config_.breaker_failures;
    if (probe || trip) {
      probing_ = false;
      backoff_ms_ = backoff_ms_ == 0 ? config_.breaker_min_ms
                                     : std::min(backoff_ms_ * 2, config_.breaker_max_ms);
      std::int64_t wait = std::max(backoff_ms_, std::min(retry_after_ms, config_.breaker_max_ms));
      open_until_ = now + wait;
      return {.open_until = open_until_, .opened = true};
    }
    return {.open_until = open_until_};
  }
  bool open() const {
    std::lock_guard lock(mutex_);
    return open_until_ != 0;
  }

 private:
  const DestinationConfig& config_;
  mutable std::mutex mutex_;
  int failures_ = 0;             // in a row. Guarded by mutex_.
  std::int64_t open_until_ = 0;  // 0: closed. Guarded by mutex_.
  std::int64_t backoff_ms_ = 0;  // Guarded by mutex_.
  bool probing_ = false;         // Guarded by mutex_.
};

struct Destination {
  explicit Destination(DestinationConfig c) : config(std::move(c)), breaker(config) {}
  DestinationConfig config;
  std::unique_ptr<Sink> sink;
  Waker waker;
  Breaker breaker;
  std::atomic<bool> retired{false};  // removed or replaced: its workers end
};

// Bridges a Channel's callback into the worker's coroutine, resuming on its strand.
template <class Token>
auto async_deliver(Channel& channel, std::vector<queue::Lease> leases, Token&& token) {
  return asio::async_initiate<Token, void(std::vector<Outcome>)>(
      [&channel](auto completion, std::vector<queue::Lease> leases) {
        auto ex = asio::get_associated_executor(completion);
        channel.deliver(std::move(leases), [completion = std::move(completion),
                                            ex](std::vector<Outcome> out) mutable {
          asio::post(ex, [completion = std::move(completion), out = std::move(out)]() mutable {
            std::move(completion)(std::move(out));
          });
        });
      },
      token, std::move(leases));
}

}  // namespace

struct Egress::Plan {
  std::vector<std::shared_ptr<Destination>> destinations;
};

class Egress::Impl : public std::enable_shared_from_this<Egress::Impl> {
 public:
  Impl(asio::io_context& io, queue::Store& store, Metrics& metrics, const Clock& clock)
      : io_(io), store_(store), metrics_(metrics), clock_(clock) {}

  Result<std::shared_ptr<Destination>> make(const DestinationConfig& config) const {
    auto d = std::make_shared<Destination>(config);
    Result<std::unique_ptr<Sink>> sink = fail(Errc::kInvalidArgument, "no sink");
    switch (config.kind) {
      case SinkKind::kHttp:
        sink = make_http_sink(io_, config);
        break;
      case SinkKind::kSpool:
        sink = make_spool_sink(config.path);
        break;
      case SinkKind::kFerry:
        if (ferry_ == nullptr) {
          sink = fail(Errc::kInvalidArgument, "kind = \"ferry\" needs the [ferry] link");
        } else {
          sink = make_ferry_sink(*ferry_);
        }
        break;
    }
    if (!sink) {
      return fail(
          Error(sink.error().code, "destination " + config.name + ": " + sink.error().message));
    }
    d->sink = std::move(*sink);
    return d;
  }

  Result<std::shared_ptr<Plan>> prepare(const std::vector<DestinationConfig>& configs) const {
    auto plan = std::make_shared<Plan>();
    std::lock_guard lock(mutex_);
    for (const auto& c : configs) {
      auto same = std::find_if(destinations_.begin(), destinations_.end(),
                               [&](const auto& d) { return d->config == c; });
      if (same != destinations_.end()) {
        plan->destinations.push_back(*same);
        continue;
      }
      auto d = make(c);
      if (!d) {
        return fail(d.error());
      }
      plan->destinations.push_back(std::move(*d));
    }
    return plan;
  }

  void commit(const Plan& plan) {
    std::vector<std::shared_ptr<Destination>> retired, started;
    {
      std::lock_guard lock(mutex_);
      for (const auto& d : destinations_) {
        if (std::find(plan.destinations.begin(), plan.destinations.end(), d) ==
            plan.destinations.end()) {
          retired.push_back(d);
        }
      }
      for (const auto& d : plan.destinations) {
        if (std::find(destinations_.begin(), destinations_.end(), d) == destinations_.end()) {
          started.push_back(d);
        }
      }
      destinations_ = plan.destinations;
    }
    for (const auto& d : retired) {
      d->retired.store(true);
      d->waker.notify_all();
    }
    if (stopping_.load()) return;
    for (const auto& d : started) spawn(d);
  }

  void start() {
    store_.set_ready_listener([self = weak_from_this()](const std::string& dest) {
      if (auto s = self.lock()) {
        s->wake(dest);
      }
    });
    std::lock_guard lock(mutex_);
    for (const auto& d : destinations_) spawn(d);
  }

  void stop() {
    stopping_.store(true);
    store_.set_ready_listener(nullptr);
    std::lock_guard lock(mutex_);
    for (auto& d : destinations_) {
      d->waker.notify_all();
    }
  }

  void wake(const std::string& dest) {
    std::lock_guard lock(mutex_);
    for (auto& d : destinations_) {
      if (d->config.name == dest) {
        d->waker.notify_one();
      }
    }
  }

  ferry::Link* ferry_ = nullptr;
  std::vector<std::shared_ptr<Destination>> destinations_;  // Guarded by mutex_.

 private:
  void spawn(const std::shared_ptr<Destination>& d) {
    for (int i = 0; i < d->config.concurrency; ++i) {
      IoStrand strand = asio::make_strand(io_.get_executor());
      asio::co_spawn(strand, worker(d, d->sink->open_channel()),
                     [name = d->config.name](std::exception_ptr e) {
                       if (e) spdlog::error("a delivery worker of {} ended by an exception", name);
                     });
    }
  }

  // Waits until the store may have due work for `d`, or at most until its next due time.
  template <class Ex>
  awaitable<void, Ex> idle(Destination& d, std::uint64_t generation) {
    auto next = store_.next_due_ms(d.config.name);
    std::chrono::milliseconds wait(60'000);
    if (next) {
      std::int64_t now = clock_.now_ms();
      wait = std::chrono::milliseconds(std::clamp<std::int64_t>(*next - now, 1, 60'000));
    }
    co_await d.waker.wait<Ex>(generation, wait);
  }

  // A worker that found work passes the wake-up on while more is due.
  void wake_next_if_due(Destination& d) {
    auto next = store_.next_due_ms(d.config.name);
    if (next && *next <= clock_.now_ms()) {
      d.waker.notify_one();
    }
  }

  // Settles one outcome with the store and tells the breaker. A delivery that fails while the
  // destination is backed off (the one that tripped it, those in flight, a failed probe) is
  // deferred to the end of the back-off without spending an attempt: attempts measure how
  // often a message failed while its destination otherwise worked, so an outage never
  // exhausts them. A refusal (a 4xx other than 408/425/429) ends the delivery at once.
  void settle(Destination& d, const queue::Lease& lease, const Outcome& out, bool probe) {
    const std::string& dest = d.config.name;
    if (out.kind == Outcome::Kind::kDelivered) {
      store_.ack(lease);
      metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"delivered\"");
      // A MessageId is a UUIDv7: its first 48 bits are the time it was accepted.
      if (std::array<unsigned char, 16> id{};
          parse_uuid(lease.message_id, id) && (id[6] >> 4) == 7) {
        std::int64_t accepted_ms = 0;
        for (int i = 0; i < 6; ++i) accepted_ms = (accepted_ms << 8) | id[i];
        metrics_.observe("sluice_delivery_latency_seconds", "destination=\"" + dest + "\"",
                         static_cast<double>(clock_.now_ms() - accepted_ms) / 1000.0);
      }
      if (d.breaker.success()) {
        spdlog::info("destination {} takes deliveries again", dest);
        d.waker.notify_all();
      }
      return;
    }
    if (out.kind == Outcome::Kind::kRefused) {
      store_.nack(lease, out.reason, true);
      metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"refused\"");
      metrics_.add("sluice_dead_letters_total", "destination=\"" + dest + "\"");
      spdlog::warn("delivery of {} to {} is dead: refused for good: {}", lease.message_id, dest,
                   out.reason);
      return;
    }
    auto failed = d.breaker.failure(clock_.now_ms(), out.retry_after_ms, probe || out.known_down);
    if (failed.opened) {
      metrics_.add("sluice_destination_backoffs_total", "destination=\"" + dest + "\"");
      spdlog::warn("destination {} backs off until {} ms from now{}: {}", dest,
                   failed.open_until - clock_.now_ms(), probe ? " (the probe failed)" : "",
                   out.reason);
    }
    if (failed.open_until != 0) {
      store_.defer(lease, out.reason, failed.open_until);
      metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"deferred\"");
      return;
    }
    store_.nack(lease, out.reason, false);
    metrics_.add("sluice_deliveries_total", "destination=\"" + dest + "\",result=\"failed\"");
    if (lease.attempt >= store_.retry_policy().max_attempts) {
      metrics_.add("sluice_dead_letters_total", "destination=\"" + dest + "\"");
      spdlog::warn("delivery of {} to {} is dead: attempt {} of {} failed: {}", lease.message_id,
                   dest, lease.attempt, store_.retry_policy().max_attempts, out.reason);
      return;
    }
    spdlog::warn("delivery of {} to {} (attempt {}) failed: {}", lease.message_id, dest,
                 lease.attempt, out.reason);
  }

  // One delivery worker: leases what is due (one case at a time), hands it to its channel,
  // settles every outcome with the store, and leases nothing while the destination's breaker
  // has it backed off, instead of spending every queued message's attempts.
  awaitable<void, IoStrand> worker(std::shared_ptr<Destination> held,
                                   std::unique_ptr<Channel> channel) {
    auto self = shared_from_this();
    Destination& d = *held;
    const std::size_t batch = std::max<std::size_t>(d.sink->batch(), 1);
    while (!stopping_.load() && !d.retired.load()) {
      std::uint64_t generation = d.waker.generation();
      if (store_.read_only()) {
        // Nothing delivered now could be acked: stop until the process restarts (the store
        // latched after a failed commit; /v1/health says so), instead of delivering the same
        // leases again and again.
        if (!read_only_logged_.exchange(true)) {
          spdlog::critical(
              "delivery stopped: the store is read-only after a failed commit, so no delivery "
              "could be recorded; free disk space (or raise [store] map_size_mb) and restart "
              "sluiced - nothing acknowledged is lost, undelivered messages go out after restart");
        }
        co_await d.waker.wait<IoStrand>(generation, std::chrono::seconds(5));
        continue;
      }
      auto gate = d.breaker.before_lease(clock_.now_ms());
      if (!gate.lease) {
        co_await d.waker.wait<IoStrand>(generation, std::chrono::milliseconds(gate.wait_ms));
        continue;
      }
      auto leases = store_.lease(d.config.name, gate.probe ? 1 : batch);
      if (leases.empty()) {
        if (gate.probe) d.breaker.abandon_probe();
        co_await idle<IoStrand>(d, generation);
        continue;
      }
      wake_next_if_due(d);
      // The payloads go to the channel; what settles each lease stays here.
      std::vector<queue::Lease> keys;
      keys.reserve(leases.size());
      for (auto& l : leases) {
        std::string payload = std::move(l.payload);
        keys.push_back(l);
        l.payload = std::move(payload);
      }
      auto outcomes =
          co_await async_deliver(*channel, std::move(leases), asio::use_awaitable_t<IoStrand>());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        Outcome o = i < outcomes.size() ? outcomes[i]
                                        : Outcome{.kind = Outcome::Kind::kRetry,
                                                  .reason = "the sink gave no outcome"};
        settle(d, keys[i], o, gate.probe);
      }
    }
  }

  asio::io_context& io_;
  queue::Store& store_;
  Metrics& metrics_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> read_only_logged_{false};
};

Egress::Egress(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Egress::~Egress() { stop(); }

Result<std::unique_ptr<Egress>> Egress::start(asio::io_context& io, queue::Store& store,
                                              const std::vector<DestinationConfig>& destinations,
                                              Metrics& metrics, const Clock& clock,
                                              ferry::Link* ferry) {
  auto impl = std::make_shared<Impl>(io, store, metrics, clock);
  impl->ferry_ = ferry;
  auto plan = impl->prepare(destinations);
  if (!plan) {
    return fail(plan.error());
  }
  impl->destinations_ = (*plan)->destinations;
  impl->start();
  return std::unique_ptr<Egress>(new Egress(std::move(impl)));
}

Result<std::shared_ptr<Egress::Plan>> Egress::prepare(
    const std::vector<DestinationConfig>& destinations) const {
  return impl_->prepare(destinations);
}

void Egress::commit(std::shared_ptr<Plan> plan) {
  if (plan) impl_->commit(*plan);
}

void Egress::stop() {
  if (impl_) {
    impl_->stop();
  }
}

}  // namespace sluice::delivery
