// Internal: the in-memory window onto one destination's schedule. The schedule itself is in
// LMDB (`sched`: every pending delivery that may go now or later, i.e. the head of its
// ordering key or unordered, by next attempt time; `ktail` and `next`: the pending deliveries
// of each ordering key as a list, in order), written in the transaction that changes it. The window
// holds at most `capacity` of the earliest scheduled deliveries that are not leased, plus the
// leased ones, so memory stays flat however deep the backlog; the Store refills it from LMDB when
// it runs short. It is updated only after the write it mirrors has committed. Not thread-safe: the
// Store guards it with its index mutex.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::queue {

class DeliveryIndex {
 public:
  enum class Where : std::uint8_t {
    kDue,        // scheduled, waiting for next_at
    kLeased,     // handed out to a worker
    kFinishing,  // ack/nack/expiry is being committed
  };
  struct Item {
    std::uint64_t seq = 0;
    std::string message_id;  // 16 raw bytes
    std::string key;         // ordering key; empty = unordered
    std::string doc_type;    // carried so a lease needs no message-record read
    std::int64_t next_at_ms = 0;
    std::int64_t expires_ms = 0;
    std::uint32_t attempts = 0;
    std::uint32_t payload_bytes = 0;
    std::int64_t lease_until_ms = 0;
    Where where = Where::kDue;
  };

  // `capacity`: scheduled, unleased deliveries held at most. A new window knows nothing of
  // the stored schedule (complete() is false) until it is refilled.
  explicit DeliveryIndex(std::size_t capacity = 4096, bool complete = false)
      : capacity_(capacity == 0 ? 1 : capacity), complete_(complete) {}

  // A delivery was scheduled (a new message, the next of its key, a redrive). It enters the
  // window if the window holds the whole schedule or the delivery is due before the latest
  // one held; otherwise it stays in LMDB for a refill. Returns whether it entered.
  bool add(Item item);
  // Leases up to `max` due items; items found past their expiry are moved to `expired`
  // (state kFinishing) instead. Expired leases are reclaimed first.
  std::vector<Item> lease(std::int64_t now_ms, std::int64_t lease_timeout_ms, std::size_t max,
                          std::vector<Item>& expired);
  // The item's ack/nack is being written: it can no longer be reclaimed or leased.
  bool begin_finish(std::uint64_t seq);
  // The delivery ended (delivered, dead, expired): removes it.
  void finish(std::uint64_t seq);
  // A failed attempt was recorded: the item is due again at next_at_ms.
  void retry(std::uint64_t seq, std::int64_t next_at_ms, std::uint32_t attempts);
  // A write for this item failed: hand it back as due now.
  void release(std::uint64_t seq);

  // --- refilling from the stored schedule ---
  // Whether a refill could find more due by `now_ms` than the window holds.
  bool wants_refill(std::int64_t now_ms, std::size_t want) const;
  bool holds(std::uint64_t seq) const { return items_.contains(seq); }
  // Whether a stored entry (next_at, seq) not held belongs in the window: there is room, or
  // it is due before the latest unleased item held (which add_from_store then drops).
  bool takes(std::int64_t next_at_ms, std::uint64_t seq) const;
  void add_from_store(Item item);
  // A refill starts reading the schedule from its start; returns the bound it replaces (to
  // hand back to refilled() when the read fails).
  std::int64_t begin_refill();
  // The refill read the schedule to its end (complete) or stopped before an entry due at
  // `next_not_held_ms`: the earliest any delivery not held can be due.
  void refilled(bool reached_end, std::int64_t next_not_held_ms);

  std::optional<std::int64_t> next_due_ms() const;
  bool complete() const { return complete_; }
  std::size_t held() const { return items_.size(); }
  std::uint64_t leased() const { return leased_.size(); }
  std::uint64_t due_count(std::int64_t now_ms) const;  // of those held

 private:
  void make_due(Item& item);
  void drop_latest();  // the latest unleased item held leaves the window (it stays stored)
  void not_held(std::int64_t next_at_ms);

  std::size_t capacity_;
  // Every scheduled delivery is held; else none not held is due before next_not_held_ms_.
  bool complete_;
  std::int64_t next_not_held_ms_ = std::numeric_limits<std::int64_t>::min();
  bool dropped_ = false;  // an item left the window during the current refill
  std::map<std::uint64_t, Item> items_;
  std::set<std::pair<std::int64_t, std::uint64_t>> due_;     // (next_at, seq), unleased
  std::set<std::pair<std::int64_t, std::uint64_t>> leased_;  // (lease_until, seq)
};

}  // namespace sluice::queue
