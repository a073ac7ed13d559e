#include "net/admission.h"

#include <algorithm>
#include <vector>

namespace sluice::net {

ConnectionAdmission::List::iterator ConnectionAdmission::oldest_idle(const std::string* address) {
  auto first_idle = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->anonymous || it->busy || (address != nullptr && it->address != *address)) continue;
    if (!it->spoke) return it;
    if (first_idle == entries_.end()) first_idle = it;
  }
  return first_idle;
}

ConnectionAdmission::List::iterator ConnectionAdmission::victim() {
  // From the address that holds the most anonymous connections, then one that never sent a
  // byte, then the oldest: a flood from a few sources closes its own connections, never the
  // one connection of a client elsewhere that the server has not read from yet.
  auto best = entries_.end();
  std::size_t best_count = 0;
  bool best_silent = false;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->anonymous || it->busy) continue;
    auto from = anonymous_from_.find(it->address);
    std::size_t count = from != anonymous_from_.end() ? from->second : 0;
    bool silent = !it->spoke;
    if (best == entries_.end() || count > best_count ||
        (count == best_count && silent && !best_silent)) {
      best = it;
      best_count = count;
      best_silent = silent;
    }
  }
  return best;
}

std::function<void()> ConnectionAdmission::remove(List::iterator it) {
  if (it->anonymous) {
    anonymous_ -= 1;
    auto from = anonymous_from_.find(it->address);
    if (from != anonymous_from_.end() && --from->second == 0) anonymous_from_.erase(from);
  }
  std::function<void()> evict = std::move(it->evict);
  by_id_.erase(it->id);
  entries_.erase(it);
  return evict;
}

std::uint64_t ConnectionAdmission::admit(const std::string& address, std::function<void()> evict) {
  std::vector<std::function<void()>> victims;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    auto make_room = [&](const std::string* of_address) {
      auto it = of_address != nullptr ? oldest_idle(of_address) : victim();
      if (it == entries_.end()) return false;
      victims.push_back(remove(it));
      return true;
    };
    bool room = true;
    auto from = anonymous_from_.find(address);
    if (from != anonymous_from_.end() && from->second >= limits_.max_anonymous_per_address) {
      room = make_room(&address);
    }
    if (room && anonymous_ >= limits_.max_anonymous) room = make_room(nullptr);
    if (room && entries_.size() >= limits_.max_connections) room = make_room(nullptr);
    if (room) {
      id = next_id_++;
      entries_.push_back(Entry{.id = id, .address = address, .evict = std::move(evict)});
      by_id_[id] = std::prev(entries_.end());
      anonymous_ += 1;
      anonymous_from_[address] += 1;
    }
  }
  for (auto& v : victims) {
    evicted_.fetch_add(1);
    if (v) v();
  }
  return id;
}

void ConnectionAdmission::authenticated(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !it->second->anonymous) return;
  Entry& e = *it->second;
  e.anonymous = false;
  anonymous_ -= 1;
  auto from = anonymous_from_.find(e.address);
  if (from != anonymous_from_.end() && --from->second == 0) anonymous_from_.erase(from);
}

void ConnectionAdmission::spoke(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  if (auto it = by_id_.find(id); it != by_id_.end()) it->second->spoke = true;
}

void ConnectionAdmission::busy(std::uint64_t id, bool busy) {
  std::lock_guard lock(mutex_);
  if (auto it = by_id_.find(id); it != by_id_.end()) it->second->busy = busy;
}

void ConnectionAdmission::release(std::uint64_t id) {
  std::function<void()> unused;
  std::lock_guard lock(mutex_);
  if (auto it = by_id_.find(id); it != by_id_.end()) unused = remove(it->second);
}

std::size_t ConnectionAdmission::open() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t ConnectionAdmission::anonymous() const {
  std::lock_guard lock(mutex_);
  return anonymous_;
}

bool BodyBudget::try_reserve(std::size_t bytes) {
  std::size_t used = used_.load();
  do {
    if (bytes > max_ || used > max_ - bytes) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes));
  return true;
}

}  // namespace sluice::net
