// Read-only queries: message status, payloads, dead letters, statistics, the idempotency
// pre-check, extension-table reads and online backup. They run on pooled read transactions
// and never wait for the writer.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "queue/store_impl.h"

namespace sluice::queue {

std::string_view to_string(DeliveryState s) {
  switch (s) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kDead:
      return "dead";
    case DeliveryState::kExpired:
      return "expired";
    case DeliveryState::kDiscarded:
      return "discarded";
  }
  return "unknown";
}

std::string_view to_string(MessageState s) {
  switch (s) {
    case MessageState::kQueued:
      return "queued";
    case MessageState::kDelivering:
      return "delivering";
    case MessageState::kDelivered:
      return "delivered";
    case MessageState::kDead:
      return "dead";
    case MessageState::kExpired:
      return "expired";
    case MessageState::kPartial:
      return "partial";
    case MessageState::kDiscarded:
      return "discarded";
  }
  return "unknown";
}

std::optional<MessageState> parse_message_state(std::string_view name) {
  for (auto s : {MessageState::kQueued, MessageState::kDelivering, MessageState::kDelivered,
                 MessageState::kDead, MessageState::kExpired, MessageState::kPartial,
                 MessageState::kDiscarded}) {
    if (to_string(s) == name) return s;
  }
  return std::nullopt;
}

Stats Store::Impl::stats() const {
  Stats s;
  std::int64_t now = clock_->now_ms();
  {
    std::lock_guard lock(index_mutex_);
    s.queued_bytes = indexed_bytes_;
    s.queued_messages = indexed_items_;
    for (const auto& [name, q] : queues_) {
      s.destinations.push_back(DestinationStats{.destination = name,
                                                .pending = q.deliveries,
                                                .leased = q.window.leased(),
                                                .due = q.window.due_count(now),
                                                .bytes = q.bytes});
    }
  }
  HistoryCounts h = history();
  s.history_messages = h.messages;
  s.history_bytes = h.bytes;
  s.history_purged = h.purged;
  s.map_bytes = options_.map_size_bytes;
  if (MDB_envinfo info; mdb_env_info(env_.get(), &info) == 0) {
    s.map_high_water_bytes =
        (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * page_rules_.page_bytes;
  }
  s.commits = commits_.load();
  s.committed_ops = committed_ops_.load();
  s.read_only = latched_.load();
  return s;
}

Result<MessageStatus> Store::Impl::status_raw(MDB_txn* txn, std::string_view id16) const {
  auto found = lmdb::get(txn, dbis_.msg, id16);
  if (!found) {
    return fail(found.error());
  }
  if (!found->has_value()) {
    return fail(Errc::kNotFound, "no message with id " + text_id(id16));
  }
  auto m = record::decode_message(**found);
  if (!m) {
    return fail(Errc::kInternal, "corrupt message record " + text_id(id16));
  }
  MessageStatus s;
  s.message_id = text_id(id16);
  s.sender = m->sender;
  s.sender_message_id = m->sender_message_id;
  s.doc_type = m->doc_type;
  s.ordering_key = m->ordering_key;
  s.received_ms = m->received_ms;
  s.expires_ms = m->expires_ms;
  s.payload_bytes = m->payload_bytes;
  s.attributes = m->attributes;
  bool any_attempt = false, any_pending = false, any_dead = false, any_expired = false,
       any_delivered = false, any_discarded = false;
  for (const auto& [did, seq] : m->deliveries) {
    auto dv = lmdb::get(txn, dbis_.dlv, record::delivery_key(did, seq));
    if (!dv) {
      return fail(dv.error());
    }
    if (!dv->has_value()) {
      continue;
    }
    auto dl = record::decode_delivery(**dv);
    if (!dl) {
      return fail(Errc::kInternal, "corrupt delivery record");
    }
    DeliveryStatus d;
    d.destination = dest_name(did);
    d.seq = seq;
    d.state = static_cast<DeliveryState>(dl->state);
    d.attempts = dl->attempts;
    d.next_attempt_ms = dl->next_at_ms;
    d.last_attempt_ms = dl->last_attempt_ms;
    d.done_ms = dl->done_ms;
    d.last_error = dl->last_error;
    any_attempt |= dl->attempts > 0;
    any_pending |= d.state == DeliveryState::kPending;
    any_dead |= d.state == DeliveryState::kDead;
    any_expired |= d.state == DeliveryState::kExpired;
    any_delivered |= d.state == DeliveryState::kDelivered;
    any_discarded |= d.state == DeliveryState::kDiscarded;
    s.deliveries.push_back(std::move(d));
  }
  const int ended_kinds =
      int(any_delivered) + int(any_dead) + int(any_expired) + int(any_discarded);
  if (any_pending) {
    s.state_kind = any_attempt ? MessageState::kDelivering : MessageState::kQueued;
  } else if (ended_kinds != 1) {
    s.state_kind = MessageState::kPartial;
  } else if (any_delivered) {
    s.state_kind = MessageState::kDelivered;
  } else if (any_dead) {
    s.state_kind = MessageState::kDead;
  } else if (any_expired) {
    s.state_kind = MessageState::kExpired;
  } else {
    s.state_kind = MessageState::kDiscarded;
  }
  s.state = std::string(to_string(s.state_kind));
  return s;
}

Result<MessageStatus> Store::Impl::status(std::string_view message_id) const {
  if (!is_uuid(message_id)) {
    return fail(Errc::kInvalidArgument, "message id must be a lowercase UUID");
  }
  auto txn = read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  return status_raw(txn->get(), raw_id(message_id));
}

std::optional<std::string> Store::find_duplicate(std::string_view sender,
                                                 std::string_view sender_message_id) const {
  auto txn = impl_->read_txn();
  if (!txn) {
    return std::nullopt;
  }
  auto found = lmdb::get(txn->get(), impl_->dbis().idem, idem_key(sender, sender_message_id));
  if (!found || !found->has_value()) {
    return std::nullopt;
  }
  return text_id(**found);
}

Result<MessageStatus> Store::status(std::string_view message_id) const {
  return impl_->status(message_id);
}

Result<std::string> Store::payload(std::string_view message_id) const {
  if (!is_uuid(message_id)) {
    return fail(Errc::kInvalidArgument, "message id must be a lowercase UUID");
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  std::string id16 = raw_id(message_id);
  auto found = lmdb::get(txn->get(), impl_->dbis().body, id16);
  if (!found) {
    return fail(found.error());
  }
  if (!found->has_value()) {
    auto record = lmdb::get(txn->get(), impl_->dbis().msg, id16);
    if (record && record->has_value()) {
      return fail(Errc::kNotFound, "the payload of message " + std::string(message_id) +
                                       " was dropped once every delivery ended; its status and "
                                       "receipt are kept");
    }
    return fail(Errc::kNotFound, "no message with id " + std::string(message_id));
  }
  return std::string(**found);
}

Result<std::vector<MessageStatus>> Store::dead_letters(const std::string& destination,
                                                       std::size_t limit) const {
  MessageFilter f;
  f.destination = destination;
  f.state = MessageState::kDead;
  auto page = find(f, "", limit, std::numeric_limits<std::size_t>::max());
  if (!page) {
    return fail(page.error());
  }
  return std::move(page->messages);
}

namespace {

bool matches_pattern(std::string_view pattern, std::string_view value) {
  if (pattern.empty() || pattern == "*") return true;
  if (pattern.ends_with("*")) return value.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == value;
}

// The checks of a filter that the message record answers.
bool record_matches(const MessageFilter& f, const record::Message& m) {
  if (!matches_pattern(f.doc_type, m.doc_type) || !matches_pattern(f.sender, m.sender)) {
    return false;
  }
  if (!f.case_id.empty()) {
    const std::string_view key = m.ordering_key;
    const bool whole = f.case_id.find('/') != std::string::npos;
    const auto slash = key.find('/');
    const std::string_view case_id = slash == std::string_view::npos ? key : key.substr(slash + 1);
    if ((whole ? key : case_id) != f.case_id) return false;
  }
  if (f.from_ms != 0 && m.received_ms < f.from_ms) return false;
  if (f.to_ms != 0 && m.received_ms >= f.to_ms) return false;
  return true;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0 || hex.size() > 64) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// The first 16 bytes of a UUIDv7 at `ms`: every MessageId accepted from then on sorts after.
std::string id_floor(std::int64_t ms) {
  std::string k(16, '\0');
  auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0));
  for (int i = 5; i >= 0; --i) {
    k[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}

}  // namespace

Result<MessagePage> Store::find(const MessageFilter& f, std::string_view cursor, std::size_t limit,
                                std::size_t max_scan) const {
  std::optional<std::uint32_t> only;
  if (!f.destination.empty()) {
    auto id = impl_->committed_dest_id(f.destination);
    if (!id) {
      if (id.error().is(Errc::kNotFound)) return MessagePage{};  // nothing was sent there
      return fail(id.error());
    }
    only = *id;
  }
  std::string after;
  if (!cursor.empty()) {
    auto raw = hex_decode(cursor);
    if (!raw) {
      return fail(Errc::kInvalidArgument, "the cursor is not one a previous page gave");
    }
    after = std::move(*raw);
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  const Dbis& d = impl_->dbis();
  const bool dead_index = f.state == MessageState::kDead;
  auto cur = lmdb::Cursor::open(txn->get(), dead_index ? d.dead : d.msg);
  if (!cur) {
    return fail(cur.error());
  }
  MessagePage page;
  std::string start = after;
  if (start.empty()) {
    if (dead_index) {
      if (only) record::put_u32be(start, *only);
    } else if (f.from_ms != 0) {
      start = id_floor(f.from_ms);
    }
  }
  MDB_val k = lmdb::val(start), v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, start.empty() ? MDB_FIRST : MDB_SET_RANGE);
  if (rc == 0 && !after.empty() && lmdb::view(k) == after) {
    rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);  // the cursor names the last one seen
  }
  std::string last;
  for (; rc == 0; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
    if (page.messages.size() >= limit || page.scanned >= max_scan) {
      page.next = hex_encode(last);
      break;
    }
    const std::string_view key = lmdb::view(k);
    std::string id16;
    if (dead_index) {
      std::uint32_t dest = 0;
      std::int64_t done_ms = 0;
      std::uint64_t seq = 0;
      if (!record::parse_dead_key(key, dest, done_ms, seq)) continue;
      if (only && dest != *only) break;  // past the destination's entries
      auto dv = lmdb::get(txn->get(), d.dlv, record::delivery_key(dest, seq));
      if (!dv) return fail(dv.error());
      auto dl = dv->has_value() ? record::decode_delivery(**dv) : std::nullopt;
      if (!dl) continue;
      id16 = dl->message_id;
    } else {
      if (f.to_ms != 0 && key.size() == 16 && key >= id_floor(f.to_ms)) break;
      id16.assign(key);
    }
    last.assign(key);
    page.scanned += 1;
    auto mv = lmdb::get(txn->get(), d.msg, id16);
    if (!mv) return fail(mv.error());
    if (!mv->has_value()) continue;
    auto m = record::decode_message(**mv);
    if (!m) return fail(Errc::kInternal, "corrupt message record " + text_id(id16));
    if (!record_matches(f, *m)) continue;
    if (only && std::none_of(m->deliveries.begin(), m->deliveries.end(),
                             [&](const auto& dl) { return dl.first == *only; })) {
      continue;
    }
    auto s = impl_->status_raw(txn->get(), id16);
    if (!s) return fail(s.error());
    if (f.state && !dead_index && s->state_kind != *f.state) continue;
    page.messages.push_back(std::move(*s));
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "find messages"));
  }
  return page;
}

Stats Store::stats() const { return impl_->stats(); }
const RetryPolicy& Store::retry_policy() const { return impl_->options().retry; }

Result<void> Store::backup(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(Errc::kIo, "create backup directory " + dir.string() + ": " + ec.message());
  }
  if (!std::filesystem::is_empty(dir, ec)) {
    return fail(Errc::kAlreadyExists, "backup directory " + dir.string() + " is not empty");
  }
  // The copy holds what the store holds, personal data included: owner-only, as the store is.
  // The file is created 0600 here (not by LMDB, which would create it 0666 less the umask).
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  if (ec) return fail(Errc::kIo, "chmod 0700 " + dir.string() + ": " + ec.message());
  const std::filesystem::path file = dir / "data.mdb";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::kIo, "create " + file.string() + ": " + std::strerror(errno));
  int rc = mdb_env_copyfd2(impl_->env(), fd, MDB_CP_COMPACT);
  if (rc == 0 && ::fsync(fd) != 0) rc = errno;
  if (::close(fd) != 0 && rc == 0) rc = errno;
  if (rc != 0) {
    std::filesystem::remove(file, ec);
    return fail(lmdb::error(rc, "mdb_env_copyfd2 to " + file.string()));
  }
  return {};
}

Result<std::optional<std::string>> Store::get(std::string_view table, std::string_view key) const {
  auto it = impl_->dbis().tables.find(std::string(table));
  if (it == impl_->dbis().tables.end()) {
    return fail(Errc::kInvalidArgument, "unknown extension table " + std::string(table));
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto found = lmdb::get(txn->get(), it->second, key);
  if (!found) {
    return fail(found.error());
  }
  if (!found->has_value()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::string(**found));
}

namespace {

// Visits a table's rows in key order (from `from`, or the first key) or backwards from the
// last key, until `visit` returns false.
Result<void> scan_table(const Store::Impl& impl, std::string_view table, std::string_view from,
                        bool forward, const RowVisitor& visit) {
  auto it = impl.dbis().tables.find(std::string(table));
  if (it == impl.dbis().tables.end()) {
    return fail(Errc::kInvalidArgument, "unknown extension table " + std::string(table));
  }
  auto txn = impl.read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto cur = lmdb::Cursor::open(txn->get(), it->second);
  if (!cur) {
    return fail(cur.error());
  }
  MDB_val k = lmdb::val(from), v;
  MDB_cursor_op first = !forward ? MDB_LAST : from.empty() ? MDB_FIRST : MDB_SET_RANGE;
  int rc = mdb_cursor_get(cur->get(), &k, &v, first);
  while (rc == 0) {
    if (!visit(lmdb::view(k), lmdb::view(v))) {
      return {};
    }
    rc = mdb_cursor_get(cur->get(), &k, &v, forward ? MDB_NEXT : MDB_PREV);
  }
  if (rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "scan " + std::string(table)));
  }
  return {};
}

}  // namespace

Result<void> Store::scan(std::string_view table, std::string_view from,
                         const RowVisitor& visit) const {
  return scan_table(*impl_, table, from, true, visit);
}

Result<void> Store::scan_reverse(std::string_view table, const RowVisitor& visit) const {
  return scan_table(*impl_, table, {}, false, visit);
}

}  // namespace sluice::queue
