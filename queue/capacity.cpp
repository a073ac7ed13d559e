// What a configuration can hold: the map bytes of one pending and one delivered message by
// LMDB's page rules (record::PageRules), and how many of them the queue and history bounds
// admit. tests/queue/footprint_test.cpp measures the real footprint (3.1 KB documents with a
// 2.25 KB receipt: 8581 bytes pending and 4413 delivered, against 8532 and 4358 estimated).
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "queue/store_impl.h"

namespace sluice::queue {
namespace {

// A delivery record with a 27-byte ordering key and no error (FORMAT.md: 70 bytes + key).
constexpr std::size_t kTypicalDeliveryRecordBytes = 97;

std::uint64_t os_page_bytes() {
  long page = ::sysconf(_SC_PAGESIZE);  // LMDB's page size is the OS page size
  return page > 0 ? static_cast<std::uint64_t>(page) : 4096;
}

std::string mib(std::uint64_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20); }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

Capacity estimate_capacity(const Options& options, const MessageShape& shape) {
  const record::PageRules rules{os_page_bytes()};
  const std::uint64_t record = rules.entry(16, shape.record_bytes);
  const std::uint64_t delivery = rules.entry(12, kTypicalDeliveryRecordBytes);
  const std::uint64_t idem = rules.entry(shape.key_bytes + 1, 16);
  Capacity c;
  c.shape = shape;
  c.map_bytes = options.map_size_bytes;
  // A pending delivery also has its place in the stored schedule, or a link behind the one
  // before it of its case (the tail of each case, one entry per case, is not counted).
  const std::uint64_t schedule = rules.entry(record::kScheduleKeyBytes, 0) + rules.entry(12, 8);
  c.pending_message_bytes =
      record + rules.entry(16, shape.payload_bytes) + delivery + idem + schedule;
  c.delivered_message_bytes =
      record + delivery + idem + rules.entry(record::kHistoryKeyBytes, record::kHistoryValueBytes);
  c.queue_bytes = options.max_queued_bytes;
  c.queue_messages = std::min<std::uint64_t>(
      options.max_queued_bytes / std::max<std::uint32_t>(shape.payload_bytes, 1),
      options.max_queued_messages);
  c.queue_map_bytes = c.queue_messages * c.pending_message_bytes;
  c.history_bytes = options.retention_max_bytes;
  c.history_messages = std::min<std::uint64_t>(
      options.retention_max_bytes / c.delivered_message_bytes, options.retention_max_messages);
  c.retention_ms = options.retention_ms;
  if (options.retention_ms > 0) {
    c.full_retention_rate = static_cast<double>(c.history_messages) /
                            (static_cast<double>(options.retention_ms) / 1000);
  }
  return c;
}

std::string describe(const Capacity& c) {
  std::string out = "map " + mib(c.map_bytes) + " MiB: queue bound " + mib(c.queue_bytes) +
                    " MiB (~" + std::to_string(c.queue_messages) + " pending messages of " +
                    fixed(c.shape.payload_bytes / 1024.0, 1) + " KiB, " +
                    std::to_string(c.pending_message_bytes) +
                    " B each in the map: " + mib(c.queue_map_bytes) + " MiB), history bound " +
                    mib(c.history_bytes) + " MiB (~" + std::to_string(c.history_messages) +
                    " delivered messages of " + std::to_string(c.delivered_message_bytes) +
                    " B: " + fixed(static_cast<double>(c.history_messages) / 86'400, 1) +
                    " days at 1 msg/s; retention_hours " +
                    std::to_string(c.retention_ms / 3'600'000) + " is kept up to " +
                    fixed(c.full_retention_rate, 2) + " msg/s)";
  const std::uint64_t history_map = c.history_messages * c.delivered_message_bytes;
  if (c.queue_map_bytes + history_map > c.map_bytes) {
    out += "; together they can need " + mib(c.queue_map_bytes + history_map) +
           " MiB, more than the map: history then yields to the queue (oldest delivered purged "
           "first), and appends are refused (store full) only once undelivered messages fill "
           "the map";
  }
  return out;
}

}  // namespace sluice::queue
