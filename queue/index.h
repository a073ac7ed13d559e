// Internal: the in-memory scheduling index of one destination's pending deliveries. It is
// rebuilt from LMDB on open and updated only after the write that it mirrors has committed.
// Not thread-safe: the Store guards it with its index mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::queue {

class DeliveryIndex {
 public:
  enum class Where : std::uint8_t {
    kWaiting,    // behind an earlier delivery of the same ordering key
    kDue,        // head of its key (or unordered), waiting for next_at
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
    Where where = Where::kWaiting;
  };

  // Adds a pending delivery. Items of one key must be added in increasing seq order.
  void add(Item item);
  // Leases up to `max` due items; items found past their expiry are moved to `expired`
  // (state kFinishing) instead. Expired leases are reclaimed first.
  std::vector<Item> lease(std::int64_t now_ms, std::int64_t lease_timeout_ms, std::size_t max,
                          std::vector<Item>& expired);
  // The item's ack/nack is being written: it can no longer be reclaimed or leased.
  bool begin_finish(std::uint64_t seq);
  // The delivery ended (delivered, dead, expired): removes it and promotes the next of its
  // key. Returns true if another item became due.
  bool finish(std::uint64_t seq);
  // A failed attempt was recorded: the item is due again at next_at_ms.
  void retry(std::uint64_t seq, std::int64_t next_at_ms, std::uint32_t attempts);
  // A write for this item failed: hand it back as due now.
  void release(std::uint64_t seq);

  std::optional<std::int64_t> next_due_ms() const;
  std::uint64_t size() const { return items_.size(); }
  std::uint64_t leased() const { return leased_.size(); }
  std::uint64_t due_count(std::int64_t now_ms) const;
  std::uint64_t bytes() const { return bytes_; }

 private:
  void make_due(Item& item);

  std::map<std::uint64_t, Item> items_;
  std::unordered_map<std::string, std::deque<std::uint64_t>> chains_;  // key -> seqs, head first
  std::set<std::pair<std::int64_t, std::uint64_t>> due_;               // (next_at, seq)
  std::set<std::pair<std::int64_t, std::uint64_t>> leased_;            // (lease_until, seq)
  std::uint64_t bytes_ = 0;
};

}  // namespace sluice::queue
