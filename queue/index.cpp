#include "queue/index.h"

namespace sluice::queue {

void DeliveryIndex::make_due(Item& item) {
  item.where = Where::kDue;
  due_.emplace(item.next_at_ms, item.seq);
}

void DeliveryIndex::add(Item item) {
  std::uint64_t seq = item.seq;
  bytes_ += item.payload_bytes;
  auto [it, inserted] = items_.emplace(seq, std::move(item));
  if (!inserted) {
    return;
  }
  Item& stored = it->second;
  if (stored.key.empty()) {
    make_due(stored);
    return;
  }
  auto& chain = chains_[stored.key];
  chain.push_back(seq);
  if (chain.size() == 1) {
    make_due(stored);
  } else {
    stored.where = Where::kWaiting;
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

bool DeliveryIndex::finish(std::uint64_t seq) {
  auto it = items_.find(seq);
  if (it == items_.end()) {
    return false;
  }
  Item& item = it->second;
  if (item.where == Where::kLeased) {
    leased_.erase({item.lease_until_ms, seq});
  } else if (item.where == Where::kDue) {
    due_.erase({item.next_at_ms, seq});
  }
  bytes_ -= item.payload_bytes;
  bool promoted = false;
  if (!item.key.empty()) {
    auto chain_it = chains_.find(item.key);
    if (chain_it != chains_.end()) {
      auto& chain = chain_it->second;
      std::erase(chain, seq);
      if (chain.empty()) {
        chains_.erase(chain_it);
      } else {
        auto head = items_.find(chain.front());
        if (head != items_.end() && head->second.where == Where::kWaiting) {
          make_due(head->second);
          promoted = true;
        }
      }
    }
  }
  items_.erase(it);
  return promoted;
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
  if (it == items_.end() || it->second.where == Where::kDue ||
      it->second.where == Where::kWaiting) {
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
