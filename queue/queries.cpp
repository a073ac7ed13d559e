// Read-only queries: message status, payloads, dead letters, statistics, the idempotency
// pre-check, extension-table reads and online backup. They run on pooled read transactions
// and never wait for the writer.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  }
  return "unknown";
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
       any_delivered = false;
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
    s.deliveries.push_back(std::move(d));
  }
  if (any_pending) {
    s.state_kind = any_attempt ? MessageState::kDelivering : MessageState::kQueued;
  } else if (any_delivered && !any_dead && !any_expired) {
    s.state_kind = MessageState::kDelivered;
  } else if (any_dead && !any_delivered && !any_expired) {
    s.state_kind = MessageState::kDead;
  } else if (any_expired && !any_delivered && !any_dead) {
    s.state_kind = MessageState::kExpired;
  } else {
    s.state_kind = MessageState::kPartial;
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
  std::optional<std::uint32_t> only;
  if (!destination.empty()) {
    auto id = impl_->committed_dest_id(destination);
    if (!id) {
      return fail(id.error());
    }
    only = *id;
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto cur = lmdb::Cursor::open(txn->get(), impl_->dbis().dlv);
  if (!cur) {
    return fail(cur.error());
  }
  std::vector<MessageStatus> out;
  std::string start = only ? record::delivery_key(*only, 0) : std::string();
  MDB_val k = lmdb::val(start), v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, only ? MDB_SET_RANGE : MDB_FIRST);
  while (rc == 0 && out.size() < limit) {
    std::uint32_t dest;
    std::uint64_t seq;
    if (!record::parse_delivery_key(lmdb::view(k), dest, seq) || (only && dest != *only)) {
      break;
    }
    auto dl = record::decode_delivery(lmdb::view(v));
    if (dl && dl->state == static_cast<std::uint8_t>(DeliveryState::kDead)) {
      auto s = impl_->status_raw(txn->get(), dl->message_id);
      if (s) {
        out.push_back(std::move(*s));
      }
    }
    rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
  }
  return out;
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
