#include "queue/record.h"

#include <algorithm>
#include <cstring>

namespace sluice::queue::record {
namespace {

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(std::uint8_t& v) { return raw(&v, 1); }
  bool u32(std::uint32_t& v) { return raw(&v, sizeof v); }
  bool u64(std::uint64_t& v) { return raw(&v, sizeof v); }
  bool i64(std::int64_t& v) { return raw(&v, sizeof v); }
  bool str(std::string& s) {
    std::uint32_t n;
    if (!u32(n) || n > in_.size()) {
      return false;
    }
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  bool raw(void* p, std::size_t n) {
    if (in_.size() < n) {
      return false;
    }
    std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
};

}  // namespace

std::string encode(const Message& m) {
  Writer w;
  w.u8(kMessageVersion);
  w.i64(m.received_ms);
  w.i64(m.expires_ms);
  w.u32(m.payload_bytes);
  w.str(m.sender);
  w.str(m.sender_message_id);
  w.str(m.doc_type);
  w.str(m.ordering_key);
  w.u32(static_cast<std::uint32_t>(m.deliveries.size()));
  for (const auto& [dest, seq] : m.deliveries) {
    w.u32(dest);
    w.u64(seq);
  }
  w.u32(static_cast<std::uint32_t>(m.attributes.size()));
  for (const auto& [k, v] : m.attributes) {
    w.str(k);
    w.str(v);
  }
  return w.take();
}

std::size_t message_deliveries_offset(const Message& m) {
  return 1 + 8 + 8 + 4 + 4 * 4 + m.sender.size() + m.sender_message_id.size() + m.doc_type.size() +
         m.ordering_key.size() + 4;
}

void set_message_delivery(std::string& encoded, std::size_t offset, std::size_t index,
                          std::uint32_t dest, std::uint64_t seq) {
  char* at = encoded.data() + offset + index * (sizeof dest + sizeof seq);
  std::memcpy(at, &dest, sizeof dest);  // the layout Writer::u32 / u64 produce
  std::memcpy(at + sizeof dest, &seq, sizeof seq);
}

std::optional<Message> decode_message(std::string_view bytes) {
  Reader r(bytes);
  Message m;
  std::uint8_t version;
  if (!r.u8(version) || version != kMessageVersion) {
    return std::nullopt;
  }
  std::uint32_t n;
  if (!r.i64(m.received_ms) || !r.i64(m.expires_ms) || !r.u32(m.payload_bytes) ||
      !r.str(m.sender) || !r.str(m.sender_message_id) || !r.str(m.doc_type) ||
      !r.str(m.ordering_key) || !r.u32(n) || n > 4096) {
    return std::nullopt;
  }
  m.deliveries.resize(n);
  for (auto& [dest, seq] : m.deliveries) {
    if (!r.u32(dest) || !r.u64(seq)) {
      return std::nullopt;
    }
  }
  if (!r.u32(n) || n > 4096) {
    return std::nullopt;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r.str(k) || !r.str(v)) {
      return std::nullopt;
    }
    m.attributes.emplace(std::move(k), std::move(v));
  }
  if (!r.done()) {
    return std::nullopt;
  }
  return m;
}

std::string encode(const Delivery& d) {
  Writer w;
  w.u8(kDeliveryVersion);
  w.u8(d.state);
  w.u32(d.attempts);
  w.i64(d.next_at_ms);
  w.i64(d.last_attempt_ms);
  w.i64(d.done_ms);
  w.i64(d.expires_ms);
  w.u32(d.payload_bytes);
  w.str(d.message_id);
  w.str(d.ordering_key);
  w.str(d.last_error);
  return w.take();
}

std::optional<Delivery> decode_delivery(std::string_view bytes) {
  Reader r(bytes);
  Delivery d;
  std::uint8_t version;
  if (!r.u8(version) || version != kDeliveryVersion) {
    return std::nullopt;
  }
  if (!r.u8(d.state) || !r.u32(d.attempts) || !r.i64(d.next_at_ms) || !r.i64(d.last_attempt_ms) ||
      !r.i64(d.done_ms) || !r.i64(d.expires_ms) || !r.u32(d.payload_bytes) ||
      !r.str(d.message_id) || !r.str(d.ordering_key) || !r.str(d.last_error) || !r.done() ||
      d.message_id.size() != 16) {
    return std::nullopt;
  }
  return d;
}

std::string delivery_key(std::uint32_t dest, std::uint64_t seq) {
  std::string k;
  k.reserve(12);
  put_u32be(k, dest);
  put_u64be(k, seq);
  return k;
}

bool parse_delivery_key(std::string_view key, std::uint32_t& dest, std::uint64_t& seq) {
  if (key.size() != 12) {
    return false;
  }
  dest = get_u32be(key);
  seq = get_u64be(key.substr(4));
  return true;
}

std::string history_key(std::int64_t ended_ms, std::string_view id16) {
  std::string k;
  k.reserve(kHistoryKeyBytes);
  put_u64be(k, static_cast<std::uint64_t>(ended_ms < 0 ? 0 : ended_ms));
  k.append(id16);
  return k;
}

bool parse_history_key(std::string_view key, std::int64_t& ended_ms, std::string& id16) {
  if (key.size() != kHistoryKeyBytes) {
    return false;
  }
  ended_ms = static_cast<std::int64_t>(get_u64be(key));
  id16.assign(key.substr(8));
  return true;
}

std::string history_value(std::uint64_t bytes) {
  std::uint32_t v = bytes > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(bytes);
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

std::uint64_t parse_history_value(std::string_view value) {
  std::uint32_t v = 0;
  if (value.size() == sizeof v) {
    std::memcpy(&v, value.data(), sizeof v);
  }
  return v;
}

std::string schedule_key(std::uint32_t dest, std::int64_t next_at_ms, std::uint64_t seq) {
  std::string k;
  k.reserve(kScheduleKeyBytes);
  put_u32be(k, dest);
  put_u64be(k, static_cast<std::uint64_t>(next_at_ms < 0 ? 0 : next_at_ms));
  put_u64be(k, seq);
  return k;
}

bool parse_schedule_key(std::string_view key, std::uint32_t& dest, std::int64_t& next_at_ms,
                        std::uint64_t& seq) {
  if (key.size() != kScheduleKeyBytes) {
    return false;
  }
  dest = get_u32be(key);
  next_at_ms = static_cast<std::int64_t>(get_u64be(key.substr(4)));
  seq = get_u64be(key.substr(12));
  return true;
}

std::string dead_key(std::uint32_t dest, std::int64_t done_ms, std::uint64_t seq) {
  return schedule_key(dest, done_ms, seq);  // the same layout
}

bool parse_dead_key(std::string_view key, std::uint32_t& dest, std::int64_t& done_ms,
                    std::uint64_t& seq) {
  return parse_schedule_key(key, dest, done_ms, seq);
}

std::string chain_prefix(std::uint32_t dest, std::string_view ordering_key) {
  std::string k;
  k.reserve(6 + ordering_key.size() + 8);
  put_u32be(k, dest);
  auto n = static_cast<std::uint16_t>(std::min<std::size_t>(ordering_key.size(), 0xffff));
  k.push_back(static_cast<char>(n >> 8));
  k.push_back(static_cast<char>(n & 0xff));
  k.append(ordering_key.substr(0, n));
  return k;
}

std::string queue_count_value(const QueueCount& c) {
  std::string v(16, '\0');
  std::memcpy(v.data(), &c.deliveries, 8);
  std::memcpy(v.data() + 8, &c.bytes, 8);
  return v;
}

std::optional<QueueCount> parse_queue_count(std::string_view value) {
  if (value.size() != 16) {
    return std::nullopt;
  }
  QueueCount c;
  std::memcpy(&c.deliveries, value.data(), 8);
  std::memcpy(&c.bytes, value.data() + 8, 8);
  return c;
}

std::uint64_t PageRules::entry(std::size_t key_bytes, std::size_t value_bytes) const {
  constexpr std::uint64_t kPageHeader = 16, kNodeHeader = 8, kSlot = 2, kPgno = 8;
  auto even = [](std::uint64_t n) { return (n + 1) & ~std::uint64_t{1}; };
  const std::uint64_t node_max = (((page_bytes - kPageHeader) / 2) & ~std::uint64_t{1}) - kSlot;
  const std::uint64_t node = kNodeHeader + key_bytes + value_bytes;
  if (node <= node_max) {
    return even(node) + kSlot;
  }
  const std::uint64_t pages = (kPageHeader - 1 + value_bytes) / page_bytes + 1;
  return pages * page_bytes + even(kNodeHeader + key_bytes + kPgno) + kSlot;
}

}  // namespace sluice::queue::record
