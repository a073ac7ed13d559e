// Internal: the on-disk record formats of the queue (see FORMAT.md). Every record starts
// with a version byte; decoders refuse versions they do not know.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"

namespace sluice::queue::record {

inline constexpr std::uint8_t kMessageVersion = 1;
inline constexpr std::uint8_t kDeliveryVersion = 1;

struct Message {
  std::int64_t received_ms = 0;
  std::int64_t expires_ms = 0;
  std::uint32_t payload_bytes = 0;
  std::string sender;
  std::string sender_message_id;
  std::string doc_type;
  std::string ordering_key;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> deliveries;  // (destination id, seq)
  std::map<std::string, std::string> attributes;
};

struct Delivery {
  std::uint8_t state = 0;
  std::uint32_t attempts = 0;
  std::int64_t next_at_ms = 0;
  std::int64_t last_attempt_ms = 0;
  std::int64_t done_ms = 0;
  std::int64_t expires_ms = 0;
  std::uint32_t payload_bytes = 0;
  std::string message_id;  // 16 raw bytes
  std::string ordering_key;
  std::string last_error;
};

std::string encode(const Message& m);
// Where the (dest, seq) pairs start in encode(m), so that a record encoded before its
// deliveries are numbered can be completed in place by set_message_delivery.
std::size_t message_deliveries_offset(const Message& m);
void set_message_delivery(std::string& encoded, std::size_t offset, std::size_t index,
                          std::uint32_t dest, std::uint64_t seq);
std::optional<Message> decode_message(std::string_view bytes);
std::string encode(const Delivery& d);
std::optional<Delivery> decode_delivery(std::string_view bytes);

// Big-endian fixed-width keys so LMDB's byte order is numeric order.
std::string delivery_key(std::uint32_t dest, std::uint64_t seq);
bool parse_delivery_key(std::string_view key, std::uint32_t& dest, std::uint64_t& seq);
// History order: when the message's last delivery ended (ms, u64 BE; never negative in
// practice, clamped at 0), then its MessageId (16 raw bytes). The value is the u32 LE count of
// map bytes the message's entries take, so purging subtracts what entering added.
inline constexpr std::size_t kHistoryKeyBytes = 24;
inline constexpr std::size_t kHistoryValueBytes = 4;
std::string history_key(std::int64_t ended_ms, std::string_view id16);
bool parse_history_key(std::string_view key, std::int64_t& ended_ms, std::string& id16);
std::string history_value(std::uint64_t bytes);
std::uint64_t parse_history_value(std::string_view value);

// The dead letters (FORMAT.md, `dead`): destination u32 BE, when the delivery went dead
// (done_ms u64 BE, clamped at 0), seq u64 BE, with an empty value.
inline constexpr std::size_t kDeadKeyBytes = 20;
std::string dead_key(std::uint32_t dest, std::int64_t done_ms, std::uint64_t seq);
bool parse_dead_key(std::string_view key, std::uint32_t& dest, std::int64_t& done_ms,
                    std::uint64_t& seq);

// The schedule (FORMAT.md). `sched`: destination u32 BE, next attempt ms u64 BE (clamped at
// 0), seq u64 BE, with an empty value; `ktail`: chain_prefix (destination u32 BE, ordering
// key as u16 BE length + bytes) -> the seq (u64 BE) of the key's last pending delivery;
// `next`: delivery_key -> the seq (u64 BE) of the key's next pending delivery; `qlen`:
// destination u32 BE -> pending deliveries u64 LE and their payload bytes u64 LE.
inline constexpr std::size_t kScheduleKeyBytes = 20;
inline constexpr std::size_t kMaxOrderingKeyBytes = 256;
std::string schedule_key(std::uint32_t dest, std::int64_t next_at_ms, std::uint64_t seq);
bool parse_schedule_key(std::string_view key, std::uint32_t& dest, std::int64_t& next_at_ms,
                        std::uint64_t& seq);
std::string chain_prefix(std::uint32_t dest, std::string_view ordering_key);
struct QueueCount {
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
};
std::string queue_count_value(const QueueCount& c);
std::optional<QueueCount> parse_queue_count(std::string_view value);

// What one entry takes in the map by LMDB's layout rules (mdb.c: LEAFSIZE, me_nodemax,
// OVPAGES): a node of 8 header bytes + key + value and a 2-byte slot on a leaf page, unless the
// node exceeds half a page; then the value takes whole overflow pages (16-byte header) and the
// node only points to them. So a 2.1 KB value costs a 4 KiB page. Page fill and branch pages
// are not counted (under 5% for keys that grow at the right edge).
struct PageRules {
  std::uint64_t page_bytes = 4096;
  std::uint64_t entry(std::size_t key_bytes, std::size_t value_bytes) const;
};
using sluice::get_u32be;  // common/encoding.h
using sluice::get_u64be;
using sluice::put_u32be;
using sluice::put_u64be;

}  // namespace sluice::queue::record
