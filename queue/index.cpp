#include "queue/index.h"

#include <algorithm>

namespace sluice::queue {

void DeliveryIndex::make_due(Item& item) {
  item.where = Where::kDue;
  due_.emplace(item.next_at_ms, item.seq);
}

void DeliveryIndex::not_held(std::int64_t next_at_ms) {
  if (complete_) {
    complete_ = false;
    next_not_held_ms_ = next_at_ms;
  } else {
    next_not_held_ms_ = std::min(next_not_held_ms_, next_at_ms);
  }
}

void DeliveryIndex::drop_latest() {
  auto last = std::prev(due_.end());
  auto [at, seq] = *last;
  due_.erase(last);
  items_.erase(seq);
  dropped_ = true;
  not_held(at);
}

bool DeliveryIndex::takes(std::int64_t next_at_ms, std::uint64_t seq) const {
  return due_.size() < capacity_ || std::pair(next_at_ms, seq) < *due_.rbegin();
}

bool DeliveryIndex::add(Item item) {
  std::uint64_t seq = item.seq;
  if (items_.contains(seq)) {
    return true;  // a refill read it from the store first
  }
  if (!takes(item.next_at_ms, seq)) {
    not_held(item.next_at_ms);
    return false;
  }
  if (due_.size() >= capacity_) {
    drop_latest();
  }
  auto [it, inserted] = items_.emplace(seq, std::move(item));
  make_due(it->second);
  return true;
}

void DeliveryIndex::add_from_store(Item item) {
  if (items_.contains(item.seq)) {
    return;
  }
  if (due_.size() >= capacity_) {
    drop_latest();
  }
  auto [it, inserted] = items_.emplace(item.seq, std::move(item));
  make_due(it->second);
}

bool DeliveryIndex::wants_refill(std::int64_t now_ms, std::size_t want) const {
  if (complete_ || next_not_held_ms_ > now_ms) {
    return false;
  }
  std::size_t due = 0;
  for (auto it = due_.begin(); it != due_.end() && it->first <= now_ms && due < want; ++it) {
    ++due;
  }
  return due < want;
}

std::int64_t DeliveryIndex::begin_refill() {
  std::int64_t before = next_not_held_ms_;
  dropped_ = false;
  next_not_held_ms_ = std::numeric_limits<std::int64_t>::max();
  return before;
}

void DeliveryIndex::refilled(bool reached_end, std::int64_t next_not_held_ms) {
  // What this refill dropped counts (drop_latest lowered next_not_held_ms_ since the reset).
  bool dropped = dropped_;
  dropped_ = false;
  if (reached_end && !dropped) {
    complete_ = true;
    next_not_held_ms_ = std::numeric_limits<std::int64_t>::max();
    return;
  }
  complete_ = false;
  if (!reached_end) {
    next_not_held_ms_ = std::min(next_not_held_ms_, next_not_held_ms);
  }
}

std::vector<DeliveryIndex::Item> DeliveryIndex::lease(std::int64_t now_ms,
                                                      std::int64_t lease_timeout_ms,
                                                      std::size_t max, std::vector<Item>& expired) {
  // Leases whose holder never answered become due again.
  while (!leased_.empty() && leased_.begin()->first <= now_ms) {
    std::uint64_t seq = leased_.begin()->second;
    leased_.erase(leased_.begin());
    auto it = items_.find(seq);
    if (it != items_.end() && it->second.where == Where::kLeased) {
      it->second.next_at_ms = now_ms;
      make_due(it->second);
    }
  }
  std::vector<Item> out;
  while (out.size() < max && !due_.empty() && due_.begin()->first <= now_ms) {
    std::uint64_t seq = due_.begin()->second;
    due_.erase(due_.begin());
    auto it = items_.find(seq);
    if (it == items_.end()) {
      continue;
    }
    Item& item = it->second;
    if (item.expires_ms != 0 && item.expires_ms <= now_ms) {
      item.where = Where::kFinishing;
      expired.push_back(item);
      continue;
    }
    item.where = Where::kLeased;
    item.lease_until_ms = now_ms + lease_timeout_ms;
    leased_.emplace(item.lease_until_ms, seq);
    out.push_back(item);
  }
  return out;
}

bool DeliveryIndex::begin_finish(std::uint64_t seq) {
  auto it = items_.find(seq);
  if (it == items_.end() || it->second.where != Where::kLeased) {
    return false;
  }
  leased_.erase({it->second.lease_until_ms, seq});
  it->second.where = Where::kFinishing;
  return true;
}

void DeliveryIndex::finish(std::uint64_t seq) {
  auto it = items_.find(seq);
  if (it == items_.end()) {
    return;
  }
  Item& item = it->second;
  if (item.where == Where::kLeased) {
    leased_.erase({item.lease_until_ms, seq});
  } else if (item.where == Where::kDue) {
    due_.erase({item.next_at_ms, seq});
  }
  items_.erase(it);
}

void DeliveryIndex::retry(std::uint64_t seq, std::int64_t next_at_ms, std::uint32_t attempts) {
  auto it = items_.find(seq);
  if (it == items_.end()) {
    return;
  }
  Item& item = it->second;
  if (item.where == Where::kLeased) {
    leased_.erase({item.lease_until_ms, seq});
  } else if (item.where == Where::kDue) {
    due_.erase({item.next_at_ms, seq});
  }
  item.attempts = attempts;
  item.next_at_ms = next_at_ms;
  make_due(item);
}

void DeliveryIndex::release(std::uint64_t seq) {
  auto it = items_.find(seq);
  if (it == items_.end() || it->second.where == Where::kDue) {
    return;
  }
  if (it->second.where == Where::kLeased) {
    leased_.erase({it->second.lease_until_ms, seq});
  }
  make_due(it->second);
}

std::optional<std::int64_t> DeliveryIndex::next_due_ms() const {
  std::optional<std::int64_t> next;
  if (!due_.empty()) {
    next = due_.begin()->first;
  }
  if (!leased_.empty() && (!next || leased_.begin()->first < *next)) {
    next = leased_.begin()->first;
  }
  if (!complete_ && (!next || next_not_held_ms_ < *next)) {
    next = next_not_held_ms_;
  }
  return next;
}

std::uint64_t DeliveryIndex::due_count(std::int64_t now_ms) const {
  std::uint64_t n = 0;
  for (const auto& [at, seq] : due_) {
    if (at > now_ms) {
      break;
    }
    ++n;
  }
  return n;
}

}  // namespace sluice::queue
