// Scheduling: retry backoff, the in-memory delivery index per destination (kept in step with
// committed writes), the queue bounds, and handing out leases.
#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "queue/store_impl.h"

namespace sluice::queue {

std::int64_t backoff_delay_ms(const RetryPolicy& p, std::uint32_t failed_attempts, double unit) {
  double delay = static_cast<double>(p.initial_backoff_ms) *
                 std::pow(std::max(1.0, p.multiplier),
                          static_cast<double>(std::max<std::uint32_t>(failed_attempts, 1) - 1));
  delay = std::min(delay, static_cast<double>(p.max_backoff_ms));
  double jitter = std::clamp(p.jitter, 0.0, 1.0);
  delay *= 1.0 - jitter * std::clamp(unit, 0.0, 1.0);
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(delay));
}

// --- Impl: index ----------------------------------------------------------------------------

Store::Impl::DestQueue& Store::Impl::dest_queue(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    // A destination the store has never held a delivery for: its schedule is empty.
    it = queues_.try_emplace(name, options_.schedule_window, true).first;
  }
  return it->second;
}

void Store::Impl::append_completed(std::vector<std::pair<std::string, DeliveryIndex::Item>> items,
                                   std::uint64_t reserved_bytes,
                                   std::uint64_t reserved_deliveries) {
  std::lock_guard lock(index_mutex_);
  reserved_bytes_ -= reserved_bytes;
  reserved_items_ -= reserved_deliveries;
  for (auto& [dest, item] : items) {
    dest_queue(dest).window.add(std::move(item));
  }
}

void Store::Impl::index_added(const std::string& dest, DeliveryIndex::Item item) {
  std::lock_guard lock(index_mutex_);
  dest_queue(dest).window.add(std::move(item));
}

void Store::Impl::index_finished(const std::string& dest, std::uint64_t seq,
                                 std::optional<DeliveryIndex::Item> next) {
  std::lock_guard lock(index_mutex_);
  auto& q = dest_queue(dest);
  q.window.finish(seq);
  if (next) {
    q.window.add(std::move(*next));
  }
}

void Store::Impl::index_retry(const std::string& dest, std::uint64_t seq, std::int64_t next_at,
                              std::uint32_t attempts) {
  std::lock_guard lock(index_mutex_);
  if (auto it = queues_.find(dest); it != queues_.end()) {
    it->second.window.retry(seq, next_at, attempts);
  }
}

void Store::Impl::index_release(const std::string& dest, std::uint64_t seq) {
  std::lock_guard lock(index_mutex_);
  if (auto it = queues_.find(dest); it != queues_.end()) {
    it->second.window.release(seq);
  }
}

bool Store::Impl::index_begin_finish(const std::string& dest, std::uint64_t seq) {
  std::lock_guard lock(index_mutex_);
  auto it = queues_.find(dest);
  return it != queues_.end() && it->second.window.begin_finish(seq);
}

void Store::Impl::refill(const std::string& name, DestQueue& q) {
  auto dest_id = committed_dest_id(name);
  if (!dest_id) {
    q.window.refilled(true, 0);  // never stored anything: nothing to read
    return;
  }
  std::int64_t before = q.window.begin_refill();
  auto fail_refill = [&](const std::string& what) {
    spdlog::error("reading the schedule of {} failed: {}", name, what);
    q.window.refilled(false, before);
  };
  auto txn = read_txn();
  if (!txn) {
    return fail_refill(txn.error().describe());
  }
  auto cur = lmdb::Cursor::open(txn->get(), dbis_.sched);
  if (!cur) {
    return fail_refill(cur.error().describe());
  }
  // The window's deliveries come first in the schedule (or near it): one pass over at most
  // those plus a window's worth loads the earliest it lacks.
  const std::size_t budget = q.window.held() + options_.schedule_window;
  std::string from = record::schedule_key(*dest_id, 0, 0);
  MDB_val k = lmdb::val(from), v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_SET_RANGE);
  std::size_t seen = 0;
  for (; rc == 0; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
    std::uint32_t dest = 0;
    std::int64_t at = 0;
    std::uint64_t seq = 0;
    if (!record::parse_schedule_key(lmdb::view(k), dest, at, seq)) {
      return fail_refill("a corrupt schedule entry");
    }
    if (dest != *dest_id) {
      break;  // the end of this destination's schedule
    }
    if (q.window.holds(seq)) {
      continue;
    }
    if (++seen > budget || !q.window.takes(at, seq)) {
      q.window.refilled(false, at);
      return;
    }
    auto found = lmdb::get(txn->get(), dbis_.dlv, record::delivery_key(dest, seq));
    auto dl = found && found->has_value() ? record::decode_delivery(**found) : std::nullopt;
    if (!dl) {
      return fail_refill("scheduled delivery #" + std::to_string(seq) + " is missing or corrupt");
    }
    q.window.add_from_store(scheduled_item(*this, txn->get(), seq, std::move(*dl)));
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return fail_refill(mdb_strerror(rc));
  }
  q.window.refilled(true, 0);
}

void Store::Impl::notify(const std::string& dest) {
  std::shared_ptr<const ReadyListener> listener;
  {
    std::lock_guard lock(listener_mutex_);
    listener = listener_;
  }
  if (listener) {
    (*listener)(dest);
  }
}

Result<void> Store::Impl::reserve(std::uint64_t bytes, std::uint64_t deliveries) {
  std::lock_guard lock(index_mutex_);
  // Only undelivered messages count: history never fills the queue (it has bounds of its own).
  if (indexed_bytes_ + reserved_bytes_ + bytes > options_.max_queued_bytes) {
    return fail(Errc::kQueueFull,
                "queue is full: " + std::to_string(indexed_bytes_ + reserved_bytes_) +
                    " undelivered payload bytes, limit " +
                    std::to_string(options_.max_queued_bytes) +
                    " (store.max_queued_mb); it clears as destinations take "
                    "deliveries");
  }
  if (indexed_items_ + reserved_items_ + deliveries > options_.max_queued_messages) {
    return fail(Errc::kQueueFull,
                "queue is full: " + std::to_string(indexed_items_ + reserved_items_) +
                    " undelivered deliveries, limit " +
                    std::to_string(options_.max_queued_messages) +
                    " (store.max_queued_messages); it clears as destinations "
                    "take deliveries");
  }
  reserved_bytes_ += bytes;
  reserved_items_ += deliveries;
  return {};
}

std::vector<Lease> Store::Impl::lease(const std::string& destination, std::size_t max) {
  std::vector<DeliveryIndex::Item> items, expired;
  std::int64_t now = clock_->now_ms();
  {
    std::lock_guard lock(index_mutex_);
    auto it = queues_.find(destination);
    if (it == queues_.end()) {
      return {};
    }
    DestQueue& q = it->second;
    if (q.window.wants_refill(now, max)) {
      refill(destination, q);
    }
    items = q.window.lease(now, options_.lease_timeout_ms, max, expired);
  }
  for (const auto& item : expired) {
    submit(make_settle_op(*this, SettleKind::kExpire, destination, item.seq, "", false, nullptr));
  }
  std::vector<Lease> out;
  if (items.empty()) {
    return out;
  }
  out.reserve(items.size());
  auto txn = read_txn();
  for (auto& item : items) {
    std::optional<std::string_view> body;
    if (txn) {
      if (auto b = lmdb::get(txn->get(), dbis_.body, item.message_id); b && b->has_value()) {
        body = **b;
      }
    }
    if (!body) {
      spdlog::error("delivery {}#{} has no stored message; handing it back", destination, item.seq);
      index_release(destination, item.seq);
      continue;
    }
    Lease l;
    l.destination = destination;
    l.seq = item.seq;
    l.message_id = text_id(item.message_id);
    l.attempt = item.attempts + 1;
    l.doc_type = std::move(item.doc_type);
    l.ordering_key = std::move(item.key);
    l.expires_ms = item.expires_ms;
    l.payload.assign(*body);
    out.push_back(std::move(l));
  }
  return out;
}

std::optional<std::int64_t> Store::Impl::next_due_ms(const std::string& destination) const {
  std::lock_guard lock(index_mutex_);
  auto it = queues_.find(destination);
  if (it == queues_.end()) {
    return std::nullopt;
  }
  return it->second.window.next_due_ms();
}

std::vector<Lease> Store::lease(const std::string& destination, std::size_t max) {
  // A latched store can settle nothing: a lease handed out now could never be acked and
  // would come back at once, again and again (a redelivery storm).
  if (impl_->latched()) return {};
  return impl_->lease(destination, max);
}

bool Store::read_only() const { return impl_->latched(); }

std::optional<std::int64_t> Store::next_due_ms(const std::string& destination) const {
  return impl_->next_due_ms(destination);
}

void Store::set_ready_listener(ReadyListener listener) { impl_->set_listener(std::move(listener)); }

}  // namespace sluice::queue
