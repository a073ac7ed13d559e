// The write operations the writer applies: append, ack / nack / expire, redrive, retention
// purge and extension-table writes, and the Store methods that submit them.
#include <future>

#include "queue/store_impl.h"

namespace sluice::queue {

// --- TxnCtx ---------------------------------------------------------------------------------

Result<std::uint32_t> TxnCtx::destination_id(const std::string& name) {
  if (auto it = new_dests_.find(name); it != new_dests_.end()) {
    return it->second;
  }
  if (auto id = store_.committed_dest_id(name); id) {
    return *id;
  }
  if (name.empty() || name.size() > 200) {
    return fail(Errc::kInvalidArgument, "destination name must be 1..200 bytes");
  }
  std::uint32_t id = next_dest_++;
  std::string v;
  record::put_u32be(v, id);
  if (auto r = lmdb::put(txn_, store_.dbis().dest, name, v); !r) {
    return fail(r.error());
  }
  new_dests_.emplace(name, id);
  op_dests_.push_back(name);
  return id;
}

Result<MDB_dbi> TxnCtx::table_dbi(std::string_view table) const {
  auto it = store_.dbis().tables.find(std::string(table));
  if (it == store_.dbis().tables.end()) {
    return fail(Errc::kInvalidArgument, "unknown extension table " + std::string(table));
  }
  return it->second;
}

Result<std::optional<std::string_view>> TxnCtx::get(std::string_view table, std::string_view key) {
  auto dbi = table_dbi(table);
  if (!dbi) {
    return fail(dbi.error());
  }
  return lmdb::get(txn_, *dbi, key);
}

Result<void> TxnCtx::put(std::string_view table, std::string_view key, std::string_view value) {
  auto dbi = table_dbi(table);
  if (!dbi) {
    return fail(dbi.error());
  }
  if (key.empty() || key.size() > 511) {
    return fail(Errc::kInvalidArgument, "table key must be 1..511 bytes");
  }
  return lmdb::put(txn_, *dbi, key, value);
}

Result<bool> TxnCtx::del(std::string_view table, std::string_view key) {
  auto dbi = table_dbi(table);
  if (!dbi) {
    return fail(dbi.error());
  }
  return lmdb::del(txn_, *dbi, key);
}

Result<std::optional<std::pair<std::string, std::string>>> TxnCtx::last(std::string_view table) {
  auto dbi = table_dbi(table);
  if (!dbi) {
    return fail(dbi.error());
  }
  auto cur = lmdb::Cursor::open(txn_, *dbi);
  if (!cur) {
    return fail(cur.error());
  }
  MDB_val k, v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) {
    return std::optional<std::pair<std::string, std::string>>();
  }
  if (rc != 0) {
    return fail(lmdb::error(rc, "mdb_cursor_get"));
  }
  return std::optional<std::pair<std::string, std::string>>(
      std::pair(std::string(lmdb::view(k)), std::string(lmdb::view(v))));
}

// --- write operations ---------------------------------------------------------------------

namespace {

// Everything that does not depend on the transaction (ids, keys, encoded records, index
// items) is prepared by the constructor, on the submitting thread: the writer only looks up
// duplicates, numbers the deliveries and puts.
class AppendOp final : public WriteOp {
 public:
  AppendOp(Store::Impl& store, NewMessage msg, Store::AppendCallback done, std::uint64_t reserved)
      : store_(store), msg_(std::move(msg)), done_(std::move(done)), reserved_(reserved) {
    id16_ = raw_id(msg_.message_id);
    if (!msg_.sender_message_id.empty()) {
      idem_key_ = idem_key(msg_.sender, msg_.sender_message_id);
    }
    std::int64_t now = store_.clock().now_ms();
    now_ = now;
    record::Message m;
    m.received_ms = now;
    m.expires_ms = msg_.expires_ms;
    m.payload_bytes = static_cast<std::uint32_t>(msg_.payload.size());
    m.sender = msg_.sender;
    m.sender_message_id = msg_.sender_message_id;
    m.doc_type = msg_.doc_type;
    m.ordering_key = msg_.ordering_key;
    m.attributes = msg_.attributes;
    m.deliveries.resize(msg_.destinations.size());  // numbered by apply()
    message_record_ = record::encode(m);
    deliveries_at_ = record::message_deliveries_offset(m);
    record::Delivery dl;
    dl.next_at_ms = now;
    dl.expires_ms = msg_.expires_ms;
    dl.payload_bytes = m.payload_bytes;
    dl.message_id = id16_;
    dl.ordering_key = msg_.ordering_key;
    delivery_record_ = record::encode(dl);
    items_.reserve(msg_.destinations.size());
    scheduled_.assign(msg_.destinations.size(), false);
    for (const auto& dest : msg_.destinations) {
      items_.emplace_back(dest, DeliveryIndex::Item{.seq = 0,
                                                    .message_id = id16_,
                                                    .key = msg_.ordering_key,
                                                    .doc_type = msg_.doc_type,
                                                    .next_at_ms = now,
                                                    .expires_ms = msg_.expires_ms,
                                                    .attempts = 0,
                                                    .payload_bytes = m.payload_bytes});
    }
  }

  std::size_t bytes() const override { return msg_.payload.size() + 512; }
  std::uint64_t map_bytes() const override {
    const record::PageRules& rules = store_.page_rules();
    std::uint64_t b = rules.entry(16, msg_.payload.size()) +
                      rules.entry(16, message_record_.size()) +
                      items_.size() * rules.entry(12, delivery_record_.size());
    if (!idem_key_.empty()) {
      b += rules.entry(idem_key_.size(), 16);
    }
    return b;
  }

  Result<void> apply(TxnCtx& ctx) override {
    duplicate_of_.clear();
    const Dbis& d = store_.dbis();
    if (!idem_key_.empty()) {
      auto found = lmdb::get(ctx.txn(), d.idem, idem_key_);
      if (!found) {
        return fail(found.error());
      }
      if (found->has_value()) {
        duplicate_of_ = text_id(**found);
        return {};
      }
    }
    // The same MessageId again (a peer gateway resending) is the same message, whoever sent
    // it: answer with the stored one and store nothing.
    auto stored = lmdb::get(ctx.txn(), d.msg, id16_);
    if (!stored) {
      return fail(stored.error());
    }
    if (stored->has_value()) {
      duplicate_of_ = msg_.message_id;
      return {};
    }
    for (std::size_t i = 0; i < items_.size(); ++i) {
      auto dest_id = ctx.destination_id(items_[i].first);
      if (!dest_id) {
        return fail(dest_id.error());
      }
      std::uint64_t seq = ctx.allocate_seq();
      items_[i].second.seq = seq;
      record::set_message_delivery(message_record_, deliveries_at_, i, *dest_id, seq);
      if (auto r =
              lmdb::put(ctx.txn(), d.dlv, record::delivery_key(*dest_id, seq), delivery_record_);
          !r) {
        return r;
      }
      auto scheduled = schedule_new(store_, ctx.txn(), *dest_id, msg_.ordering_key, seq, now_);
      if (!scheduled) {
        return fail(scheduled.error());
      }
      scheduled_[i] = *scheduled;
      ctx.queued(*dest_id, 1, static_cast<std::int64_t>(msg_.payload.size()));
    }
    if (auto r = lmdb::put(ctx.txn(), d.msg, id16_, message_record_, MDB_NOOVERWRITE); !r) {
      return r;
    }
    if (auto r = lmdb::put(ctx.txn(), d.body, id16_, msg_.payload); !r) {
      return r;
    }
    if (!idem_key_.empty()) {
      if (auto r = lmdb::put(ctx.txn(), d.idem, idem_key_, id16_); !r) {
        return r;
      }
    }
    return {};
  }

  void finish(Result<void> outcome) override {
    bool stored = outcome && duplicate_of_.empty();
    std::vector<std::pair<std::string, DeliveryIndex::Item>> scheduled;
    if (stored) {
      // Only the head of its ordering key is scheduled; the others wait in their chain.
      for (std::size_t i = 0; i < items_.size(); ++i) {
        if (scheduled_[i]) scheduled.push_back(std::move(items_[i]));
      }
    }
    store_.append_completed(std::move(scheduled), reserved_, msg_.destinations.size());
    if (stored) {
      for (const auto& dest : msg_.destinations) {
        store_.notify(dest);
      }
    }
    if (!outcome) {
      done_(fail(outcome.error()));
    } else if (!duplicate_of_.empty()) {
      done_(Appended{duplicate_of_, true});
    } else {
      done_(Appended{msg_.message_id, false});
    }
  }

 private:
  Store::Impl& store_;
  NewMessage msg_;
  Store::AppendCallback done_;
  std::uint64_t reserved_;
  std::string id16_;
  std::string idem_key_;  // empty: no sender message id, no idempotency entry
  std::string message_record_;
  std::size_t deliveries_at_ = 0;
  std::string delivery_record_;  // the same for every destination
  std::vector<std::pair<std::string, DeliveryIndex::Item>> items_;  // seq set by apply()
  std::vector<bool> scheduled_;  // per destination, by apply(): heads its key's chain
  std::int64_t now_ = 0;
  std::string duplicate_of_;
};

class SettleOp final : public WriteOp {
 public:
  using Kind = SettleKind;

  SettleOp(Store::Impl& store, Kind kind, std::string dest, std::uint64_t seq, std::string reason,
           bool permanent, Store::DoneCallback done, std::int64_t until_ms = 0)
      : store_(store),
        kind_(kind),
        dest_(std::move(dest)),
        seq_(seq),
        reason_(std::move(reason)),
        permanent_(permanent),
        done_(std::move(done)),
        until_ms_(until_ms) {}

  bool releases_space() const override { return true; }

  Result<void> apply(TxnCtx& ctx) override {
    const Dbis& d = store_.dbis();
    auto dest_id = store_.committed_dest_id(dest_);
    if (!dest_id) {
      return fail(dest_id.error());
    }
    std::string key = record::delivery_key(*dest_id, seq_);
    auto found = lmdb::get(ctx.txn(), d.dlv, key);
    if (!found) {
      return fail(found.error());
    }
    if (!found->has_value()) {
      return fail(Errc::kNotFound, "delivery " + dest_ + "#" + std::to_string(seq_) + " not found");
    }
    auto dl = record::decode_delivery(**found);
    if (!dl) {
      return fail(Errc::kInternal, "corrupt delivery record " + dest_ + "#" + std::to_string(seq_));
    }
    if (dl->state != static_cast<std::uint8_t>(DeliveryState::kPending)) {
      return fail(Errc::kAlreadyExists,
                  "delivery " + dest_ + "#" + std::to_string(seq_) + " already ended");
    }
    std::int64_t now = store_.clock().now_ms();
    const std::int64_t scheduled_at = dl->next_at_ms;
    ended_ = true;
    next_.reset();
    switch (kind_) {
      case Kind::kAck:
        dl->attempts += 1;
        dl->last_attempt_ms = now;
        dl->state = static_cast<std::uint8_t>(DeliveryState::kDelivered);
        dl->last_error.clear();
        break;
      case Kind::kExpire:
        dl->state = static_cast<std::uint8_t>(DeliveryState::kExpired);
        dl->last_error = "expired before delivery";
        break;
      case Kind::kDefer:
        // The destination failed as a whole, not this delivery: no attempt is spent.
        dl->last_attempt_ms = now;
        dl->last_error = reason_.substr(0, 1024);
        if (dl->expires_ms != 0 && dl->expires_ms <= now) {
          dl->state = static_cast<std::uint8_t>(DeliveryState::kExpired);
        } else {
          ended_ = false;
          dl->next_at_ms = std::max(until_ms_, now);
          if (dl->expires_ms != 0 && dl->next_at_ms > dl->expires_ms) {
            dl->next_at_ms = dl->expires_ms;
          }
        }
        break;
      case Kind::kNack: {
        dl->attempts += 1;
        dl->last_attempt_ms = now;
        dl->last_error = reason_.substr(0, 1024);
        const RetryPolicy& policy = store_.options().retry;
        if (dl->expires_ms != 0 && dl->expires_ms <= now) {
          dl->state = static_cast<std::uint8_t>(DeliveryState::kExpired);
        } else if (permanent_ || dl->attempts >= policy.max_attempts) {
          dl->state = static_cast<std::uint8_t>(DeliveryState::kDead);
        } else {
          ended_ = false;
          std::int64_t delay = backoff_delay_ms(policy, dl->attempts, store_.random().next_unit());
          dl->next_at_ms = now + delay;
          if (dl->expires_ms != 0 && dl->next_at_ms > dl->expires_ms) {
            dl->next_at_ms = dl->expires_ms;  // wake up in time to expire it
          }
        }
        break;
      }
    }
    if (ended_) {
      dl->done_ms = now;
    }
    next_at_ = dl->next_at_ms;
    attempts_ = dl->attempts;
    // A message's state is derived from its deliveries: its record is not rewritten.
    if (auto r = lmdb::put(ctx.txn(), d.dlv, key, record::encode(*dl)); !r) {
      return r;
    }
    if (!ended_) {
      return reschedule(store_, ctx.txn(), *dest_id, seq_, scheduled_at, dl->next_at_ms);
    }
    auto next = unschedule(store_, ctx.txn(), *dest_id, dl->ordering_key, seq_, scheduled_at);
    if (!next) {
      return fail(next.error());
    }
    next_ = std::move(*next);
    ctx.queued(*dest_id, -1, -static_cast<std::int64_t>(dl->payload_bytes));
    if (dl->state == static_cast<std::uint8_t>(DeliveryState::kDead)) {
      // A dead letter: indexed for the operator (dead_letters, find), payload kept.
      return lmdb::put(ctx.txn(), d.dead, record::dead_key(*dest_id, dl->done_ms, seq_), "");
    }
    // The last delivery to end makes the message history: what status, receipts and
    // idempotency need stays, the payload goes.
    auto mv = lmdb::get(ctx.txn(), d.msg, dl->message_id);
    if (!mv) {
      return fail(mv.error());
    }
    if (!mv->has_value()) {
      return {};  // a delivery without its message: nothing to keep
    }
    std::size_t record_bytes = (*mv)->size();
    auto m = record::decode_message(**mv);
    if (!m) {
      return fail(Errc::kInternal, "corrupt message record " + text_id(dl->message_id));
    }
    auto ended = ended_message(store_, ctx.txn(), record_bytes, *m);
    if (!ended) {
      return fail(ended.error());
    }
    if (!ended->has_value()) {
      return {};
    }
    if (auto r = enter_history(store_, ctx.txn(), dl->message_id, **ended); !r) {
      return r;
    }
    ctx.history_entered((*ended)->bytes);
    return {};
  }

  void finish(Result<void> outcome) override {
    if (outcome && ended_) {
      store_.index_finished(dest_, seq_, std::move(next_));
    } else if (outcome) {
      store_.index_retry(dest_, seq_, next_at_, attempts_);
    } else if (outcome.error().is(Errc::kNotFound) || outcome.error().is(Errc::kAlreadyExists)) {
      store_.index_finished(dest_, seq_);
    } else {
      store_.index_release(dest_, seq_);
    }
    store_.notify(dest_);
    if (done_) {
      done_(std::move(outcome));
    }
  }

 private:
  Store::Impl& store_;
  Kind kind_;
  std::string dest_;
  std::uint64_t seq_;
  std::string reason_;
  bool permanent_;
  Store::DoneCallback done_;
  std::int64_t until_ms_;
  bool ended_ = false;
  std::optional<DeliveryIndex::Item> next_;  // the next of its key, scheduled by the end
  std::int64_t next_at_ = 0;
  std::uint32_t attempts_ = 0;
};

// A message's dead delivery to `dest`, taken out of the dead-letter index: what a redrive and
// a discard start from. Fails when there is no such message, no delivery there, or it is not
// dead.
struct DeadDelivery {
  std::string id16;
  std::size_t record_bytes = 0;  // of the message record as stored
  record::Message message;
  std::size_t index = 0;  // of the delivery in message.deliveries
  record::Delivery delivery;
};

Result<DeadDelivery> take_dead_delivery(Store::Impl& store, TxnCtx& ctx, const std::string& id,
                                        const std::string& dest) {
  const Dbis& d = store.dbis();
  DeadDelivery out;
  out.id16 = raw_id(id);
  auto found = lmdb::get(ctx.txn(), d.msg, out.id16);
  if (!found) {
    return fail(found.error());
  }
  if (!found->has_value()) {
    return fail(Errc::kNotFound, "message " + id + " not found");
  }
  out.record_bytes = (*found)->size();
  auto m = record::decode_message(**found);
  if (!m) {
    return fail(Errc::kInternal, "corrupt message record " + id);
  }
  out.message = std::move(*m);
  auto dest_id = store.committed_dest_id(dest);
  if (!dest_id) {
    return fail(dest_id.error());
  }
  for (std::size_t i = 0; i < out.message.deliveries.size(); ++i) {
    const auto [did, seq] = out.message.deliveries[i];
    if (did != *dest_id) {
      continue;
    }
    auto stored = lmdb::get(ctx.txn(), d.dlv, record::delivery_key(did, seq));
    if (!stored) {
      return fail(stored.error());
    }
    auto dl = stored->has_value() ? record::decode_delivery(**stored) : std::nullopt;
    if (!dl || dl->state != static_cast<std::uint8_t>(DeliveryState::kDead)) {
      return fail(Errc::kInvalidArgument, "message " + id + " is not dead at destination " + dest);
    }
    if (auto r = lmdb::del(ctx.txn(), d.dead, record::dead_key(did, dl->done_ms, seq)); !r) {
      return fail(r.error());
    }
    out.index = i;
    out.delivery = std::move(*dl);
    return out;
  }
  return fail(Errc::kNotFound, "message " + id + " has no delivery to " + dest);
}

class RedriveOp final : public WriteOp {
 public:
  RedriveOp(Store::Impl& store, std::string id, std::string dest, Store::DoneCallback done)
      : store_(store), id_(std::move(id)), dest_(std::move(dest)), done_(std::move(done)) {}

  Result<void> apply(TxnCtx& ctx) override {
    const Dbis& d = store_.dbis();
    auto dead = take_dead_delivery(store_, ctx, id_, dest_);
    if (!dead) {
      return fail(dead.error());
    }
    auto& [did, seq] = dead->message.deliveries[dead->index];
    record::Delivery& dl = dead->delivery;
    if (auto r = lmdb::del(ctx.txn(), d.dlv, record::delivery_key(did, seq)); !r) {
      return fail(r.error());
    }
    std::int64_t now = store_.clock().now_ms();
    std::uint64_t new_seq = ctx.allocate_seq();
    dl.state = static_cast<std::uint8_t>(DeliveryState::kPending);
    dl.attempts = 0;
    dl.next_at_ms = now;
    dl.done_ms = 0;
    dl.last_error.clear();
    if (auto r =
            lmdb::put(ctx.txn(), d.dlv, record::delivery_key(did, new_seq), record::encode(dl));
        !r) {
      return r;
    }
    seq = new_seq;
    auto scheduled = schedule_new(store_, ctx.txn(), did, dl.ordering_key, new_seq, now);
    if (!scheduled) {
      return fail(scheduled.error());
    }
    scheduled_ = *scheduled;
    ctx.queued(did, 1, dl.payload_bytes);
    item_ = DeliveryIndex::Item{.seq = new_seq,
                                .message_id = dead->id16,
                                .key = dl.ordering_key,
                                .doc_type = dead->message.doc_type,
                                .next_at_ms = now,
                                .expires_ms = dl.expires_ms,
                                .attempts = 0,
                                .payload_bytes = dl.payload_bytes};
    return lmdb::put(ctx.txn(), d.msg, dead->id16, record::encode(dead->message));
  }

  void finish(Result<void> outcome) override {
    if (outcome) {
      if (scheduled_) store_.index_added(dest_, item_);
      store_.notify(dest_);
    }
    done_(std::move(outcome));
  }

 private:
  Store::Impl& store_;
  std::string id_;
  std::string dest_;
  Store::DoneCallback done_;
  DeliveryIndex::Item item_;
  bool scheduled_ = false;  // heads its key's chain (else it waits behind earlier ones)
};

// Ends a dead delivery for good without delivering it: the operator gave up on it (state
// discarded, with who and why as its last error). Its dead-letter entry goes; once nothing of
// the message is pending or dead, it enters history like a delivered one (payload dropped).
class DiscardOp final : public WriteOp {
 public:
  DiscardOp(Store::Impl& store, std::string id, std::string dest, std::string reason,
            Store::DoneCallback done)
      : store_(store),
        id_(std::move(id)),
        dest_(std::move(dest)),
        reason_(std::move(reason)),
        done_(std::move(done)) {}

  Result<void> apply(TxnCtx& ctx) override {
    auto dead = take_dead_delivery(store_, ctx, id_, dest_);
    if (!dead) {
      return fail(dead.error());
    }
    const auto [did, seq] = dead->message.deliveries[dead->index];
    record::Delivery& dl = dead->delivery;
    dl.state = static_cast<std::uint8_t>(DeliveryState::kDiscarded);
    dl.done_ms = store_.clock().now_ms();
    dl.last_error = reason_.substr(0, 1024);
    if (auto r = lmdb::put(ctx.txn(), store_.dbis().dlv, record::delivery_key(did, seq),
                           record::encode(dl));
        !r) {
      return r;
    }
    auto ended = ended_message(store_, ctx.txn(), dead->record_bytes, dead->message);
    if (!ended) {
      return fail(ended.error());
    }
    if (ended->has_value()) {
      if (auto r = enter_history(store_, ctx.txn(), dead->id16, **ended); !r) {
        return r;
      }
      ctx.history_entered((*ended)->bytes);
    }
    return {};
  }

  void finish(Result<void> outcome) override { done_(std::move(outcome)); }

 private:
  Store::Impl& store_;
  std::string id_;
  std::string dest_;
  std::string reason_;
  Store::DoneCallback done_;
};

// The maintenance purge: history older than the retention period or beyond the history
// bounds, oldest first. History is indexed by when it ended, so a call reads only what it
// purges (and one entry more), however many dead letters or pending messages are stored.
class PurgeOp final : public WriteOp {
 public:
  PurgeOp(Store::Impl& store, std::size_t max,
          std::move_only_function<void(Result<std::size_t>)> done)
      : store_(store), max_(max), done_(std::move(done)) {}

  bool releases_space() const override { return true; }

  Result<void> apply(TxnCtx& ctx) override {
    auto purged = purge_history(
        store_, ctx,
        PurgeGoal{.ended_before_ms = store_.clock().now_ms() - store_.options().retention_ms,
                  .within_bounds = true,
                  .at_most = max_});
    if (!purged) {
      return fail(purged.error());
    }
    purged_ = *purged;
    return {};
  }

  void finish(Result<void> outcome) override {
    if (outcome) {
      done_(purged_);
    } else {
      done_(fail(outcome.error()));
    }
  }

 private:
  Store::Impl& store_;
  std::size_t max_;
  std::move_only_function<void(Result<std::size_t>)> done_;
  std::size_t purged_ = 0;
};

class GenericOp final : public WriteOp {
 public:
  GenericOp(WriteFn fn, std::size_t bytes, Store::DoneCallback done)
      : fn_(std::move(fn)), bytes_(bytes), done_(std::move(done)) {}
  std::size_t bytes() const override { return bytes_; }
  Result<void> apply(TxnCtx& ctx) override { return fn_(ctx); }
  void finish(Result<void> outcome) override {
    if (done_) {
      done_(std::move(outcome));
    }
  }

 private:
  WriteFn fn_;
  std::size_t bytes_;
  Store::DoneCallback done_;
};

}  // namespace

// --- the stored schedule --------------------------------------------------------------------

Result<bool> schedule_new(const Store::Impl& store, MDB_txn* txn, std::uint32_t dest,
                          std::string_view key, std::uint64_t seq, std::int64_t next_at_ms) {
  const Dbis& d = store.dbis();
  if (!key.empty()) {
    // The key's pending deliveries form a list: `ktail` names the last, `next` links each to
    // the one behind it. One entry per case, not per message, is rewritten at random places.
    std::string tail_key = record::chain_prefix(dest, key);
    auto tail = lmdb::get(txn, d.ktail, tail_key);
    if (!tail) {
      return fail(tail.error());
    }
    std::string seq_v;
    record::put_u64be(seq_v, seq);
    if (tail->has_value()) {
      if ((*tail)->size() != 8) {
        return fail(Errc::kInternal, "corrupt chain tail of ordering key " + std::string(key));
      }
      std::uint64_t last = record::get_u64be(**tail);
      if (last >= seq) {
        return false;  // linked already (a rerun of the format upgrade)
      }
      if (auto r = lmdb::put(txn, d.next, record::delivery_key(dest, last), seq_v); !r) {
        return fail(r.error());
      }
      if (auto r = lmdb::put(txn, d.ktail, tail_key, seq_v); !r) {
        return fail(r.error());
      }
      return false;  // waits behind `last`
    }
    if (auto r = lmdb::put(txn, d.ktail, tail_key, seq_v); !r) {
      return fail(r.error());
    }
  }
  if (auto r = lmdb::put(txn, d.sched, record::schedule_key(dest, next_at_ms, seq), ""); !r) {
    return fail(r.error());
  }
  return true;
}

Result<void> reschedule(const Store::Impl& store, MDB_txn* txn, std::uint32_t dest,
                        std::uint64_t seq, std::int64_t from_ms, std::int64_t to_ms) {
  const Dbis& d = store.dbis();
  if (auto r = lmdb::del(txn, d.sched, record::schedule_key(dest, from_ms, seq)); !r) {
    return fail(r.error());
  }
  return lmdb::put(txn, d.sched, record::schedule_key(dest, to_ms, seq), "");
}

Result<std::optional<DeliveryIndex::Item>> unschedule(const Store::Impl& store, MDB_txn* txn,
                                                      std::uint32_t dest, std::string_view key,
                                                      std::uint64_t seq, std::int64_t at_ms) {
  using Next = std::optional<DeliveryIndex::Item>;
  const Dbis& d = store.dbis();
  if (auto r = lmdb::del(txn, d.sched, record::schedule_key(dest, at_ms, seq)); !r) {
    return fail(r.error());
  }
  if (key.empty()) {
    return Next();
  }
  const std::string link = record::delivery_key(dest, seq);
  auto behind = lmdb::get(txn, d.next, link);
  if (!behind) {
    return fail(behind.error());
  }
  if (!behind->has_value()) {
    // The last of its key: the chain is empty now.
    std::string tail_key = record::chain_prefix(dest, key);
    auto tail = lmdb::get(txn, d.ktail, tail_key);
    if (!tail) {
      return fail(tail.error());
    }
    if (tail->has_value() && (*tail)->size() == 8 && record::get_u64be(**tail) == seq) {
      if (auto r = lmdb::del(txn, d.ktail, tail_key); !r) {
        return fail(r.error());
      }
    }
    return Next();
  }
  if ((*behind)->size() != 8) {
    return fail(Errc::kInternal, "corrupt chain link of ordering key " + std::string(key));
  }
  const std::uint64_t next_seq = record::get_u64be(**behind);
  if (auto r = lmdb::del(txn, d.next, link); !r) {
    return fail(r.error());
  }
  auto found = lmdb::get(txn, d.dlv, record::delivery_key(dest, next_seq));
  if (!found) {
    return fail(found.error());
  }
  auto dl = found->has_value() ? record::decode_delivery(**found) : std::nullopt;
  if (!dl) {
    return fail(Errc::kInternal, "the chain of ordering key " + std::string(key) +
                                     " names delivery " + store.dest_name(dest) + "#" +
                                     std::to_string(next_seq) + ", which is missing or corrupt");
  }
  if (auto r = lmdb::put(txn, d.sched, record::schedule_key(dest, dl->next_at_ms, next_seq), "");
      !r) {
    return fail(r.error());
  }
  return Next(scheduled_item(store, txn, next_seq, std::move(*dl)));
}

DeliveryIndex::Item scheduled_item(const Store::Impl& store, MDB_txn* txn, std::uint64_t seq,
                                   record::Delivery dl) {
  std::string doc_type;
  if (auto mv = lmdb::get(txn, store.dbis().msg, dl.message_id); mv && mv->has_value()) {
    if (auto m = record::decode_message(**mv)) {
      doc_type = std::move(m->doc_type);
    }
  }
  return DeliveryIndex::Item{.seq = seq,
                             .message_id = std::move(dl.message_id),
                             .key = std::move(dl.ordering_key),
                             .doc_type = std::move(doc_type),
                             .next_at_ms = dl.next_at_ms,
                             .expires_ms = dl.expires_ms,
                             .attempts = dl.attempts,
                             .payload_bytes = dl.payload_bytes};
}

// --- history --------------------------------------------------------------------------------

Result<std::optional<EndedMessage>> ended_message(const Store::Impl& store, MDB_txn* txn,
                                                  std::size_t record_bytes,
                                                  const record::Message& m) {
  const Dbis& d = store.dbis();
  const record::PageRules& rules = store.page_rules();
  EndedMessage ended;
  ended.bytes = rules.entry(16, record_bytes) +
                rules.entry(record::kHistoryKeyBytes, record::kHistoryValueBytes);
  if (!m.sender_message_id.empty()) {
    ended.bytes += rules.entry(m.sender.size() + 1 + m.sender_message_id.size(), 16);
  }
  for (const auto& [did, seq] : m.deliveries) {
    std::string key = record::delivery_key(did, seq);
    auto dv = lmdb::get(txn, d.dlv, key);
    if (!dv) {
      return fail(dv.error());
    }
    if (!dv->has_value()) {
      continue;
    }
    auto dl = record::decode_delivery(**dv);
    if (!dl) {
      return fail(Errc::kInternal,
                  "corrupt delivery record " + store.dest_name(did) + "#" + std::to_string(seq));
    }
    if (dl->state == static_cast<std::uint8_t>(DeliveryState::kPending) ||
        dl->state == static_cast<std::uint8_t>(DeliveryState::kDead)) {
      return std::optional<EndedMessage>();
    }
    ended.ended_ms = std::max(ended.ended_ms, dl->done_ms);
    ended.bytes += rules.entry(key.size(), (*dv)->size());
  }
  return std::optional<EndedMessage>(ended);
}

Result<void> enter_history(const Store::Impl& store, MDB_txn* txn, std::string_view id16,
                           const EndedMessage& ended) {
  const Dbis& d = store.dbis();
  if (auto r = lmdb::del(txn, d.body, id16); !r) {
    return fail(r.error());
  }
  return lmdb::put(txn, d.hist, record::history_key(ended.ended_ms, id16),
                   record::history_value(ended.bytes));
}

Result<std::size_t> purge_history(Store::Impl& store, TxnCtx& ctx, const PurgeGoal& goal) {
  const Dbis& d = store.dbis();
  struct Victim {
    std::string key;
    std::string id16;
    std::uint64_t bytes;
  };
  std::vector<Victim> victims;
  {
    auto cur = lmdb::Cursor::open(ctx.txn(), d.hist);
    if (!cur) {
      return fail(cur.error());
    }
    HistoryCounts left = ctx.history();
    std::uint64_t freed = 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
    for (; rc == 0 && victims.size() < goal.at_most;
         rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
      Victim victim;
      std::int64_t ended_ms = 0;
      if (!record::parse_history_key(lmdb::view(k), ended_ms, victim.id16)) {
        continue;
      }
      bool purge = ended_ms < goal.ended_before_ms ||
                   (goal.within_bounds && store.history_over_bounds(left)) ||
                   freed < goal.free_bytes;
      if (!purge) {
        break;  // the rest ended later and the bounds hold
      }
      victim.key.assign(lmdb::view(k));
      victim.bytes = record::parse_history_value(lmdb::view(v));
      left.messages -= std::min<std::uint64_t>(left.messages, 1);
      left.bytes -= std::min(left.bytes, victim.bytes);
      freed += victim.bytes;
      victims.push_back(std::move(victim));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
      return fail(lmdb::error(rc, "scan history"));
    }
  }
  for (const auto& victim : victims) {
    auto found = lmdb::get(ctx.txn(), d.msg, victim.id16);
    if (!found) {
      return fail(found.error());
    }
    std::optional<record::Message> m;
    if (found->has_value()) {
      m = record::decode_message(**found);
      if (!m) {
        return fail(Errc::kInternal, "corrupt message record " + text_id(victim.id16));
      }
    }
    if (m) {
      for (const auto& [did, seq] : m->deliveries) {
        if (auto r = lmdb::del(ctx.txn(), d.dlv, record::delivery_key(did, seq)); !r) {
          return fail(r.error());
        }
      }
      // The idempotency entry goes with the message, in the same transaction: a resend is a
      // duplicate exactly as long as the message it names can be shown.
      if (!m->sender_message_id.empty()) {
        std::string key = idem_key(m->sender, m->sender_message_id);
        auto idem = lmdb::get(ctx.txn(), d.idem, key);
        if (!idem) {
          return fail(idem.error());
        }
        if (idem->has_value() && **idem == victim.id16) {
          if (auto r = lmdb::del(ctx.txn(), d.idem, key); !r) {
            return fail(r.error());
          }
        }
      }
      if (auto r = lmdb::del(ctx.txn(), d.msg, victim.id16); !r) {
        return fail(r.error());
      }
    }
    if (auto r = lmdb::del(ctx.txn(), d.body, victim.id16); !r) {
      return fail(r.error());
    }
    if (auto r = lmdb::del(ctx.txn(), d.hist, victim.key); !r) {
      return fail(r.error());
    }
    ctx.history_purged(victim.bytes);
  }
  return victims.size();
}

std::unique_ptr<WriteOp> make_settle_op(Store::Impl& store, SettleKind kind, std::string dest,
                                        std::uint64_t seq, std::string reason, bool permanent,
                                        Store::DoneCallback done, std::int64_t until_ms) {
  return std::make_unique<SettleOp>(store, kind, std::move(dest), seq, std::move(reason), permanent,
                                    std::move(done), until_ms);
}

void Store::append_async(NewMessage msg, AppendCallback done) {
  if (!is_uuid(msg.message_id)) {
    done(fail(Errc::kInvalidArgument, "message id must be a lowercase UUID"));
    return;
  }
  if (msg.destinations.empty() || msg.destinations.size() > kMaxDestinations) {
    done(fail(Errc::kInvalidArgument,
              "a message needs 1.." + std::to_string(kMaxDestinations) + " destinations"));
    return;
  }
  if (msg.sender.size() + msg.sender_message_id.size() + 1 > kMaxIdempotencyKey) {
    done(fail(Errc::kInvalidArgument, "sender and sender message id are too long"));
    return;
  }
  if (msg.ordering_key.size() > record::kMaxOrderingKeyBytes) {
    done(fail(Errc::kInvalidArgument, "ordering key of " + std::to_string(msg.ordering_key.size()) +
                                          " bytes is longer than " +
                                          std::to_string(record::kMaxOrderingKeyBytes)));
    return;
  }
  std::uint64_t bytes = msg.payload.size() * msg.destinations.size();
  if (auto r = impl_->reserve(bytes, msg.destinations.size()); !r) {
    done(fail(r.error()));
    return;
  }
  impl_->submit(std::make_unique<AppendOp>(*impl_, std::move(msg), std::move(done), bytes));
}

Result<Appended> Store::append(NewMessage msg) {
  std::promise<Result<Appended>> promise;
  auto future = promise.get_future();
  append_async(std::move(msg), [&promise](Result<Appended> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Store::ack(const Lease& lease, DoneCallback done) {
  if (!impl_->index_begin_finish(lease.destination, lease.seq)) {
    if (done) done(fail(Errc::kNotFound, "no active lease for " + lease.message_id));
    return;
  }
  impl_->submit(std::make_unique<SettleOp>(*impl_, SettleKind::kAck, lease.destination, lease.seq,
                                           "", false, std::move(done)));
}

void Store::nack(const Lease& lease, std::string reason, bool permanent, DoneCallback done) {
  if (!impl_->index_begin_finish(lease.destination, lease.seq)) {
    if (done) done(fail(Errc::kNotFound, "no active lease for " + lease.message_id));
    return;
  }
  impl_->submit(std::make_unique<SettleOp>(*impl_, SettleKind::kNack, lease.destination, lease.seq,
                                           std::move(reason), permanent, std::move(done)));
}

void Store::defer(const Lease& lease, std::string reason, std::int64_t until_ms,
                  DoneCallback done) {
  if (!impl_->index_begin_finish(lease.destination, lease.seq)) {
    if (done) done(fail(Errc::kNotFound, "no active lease for " + lease.message_id));
    return;
  }
  impl_->submit(std::make_unique<SettleOp>(*impl_, SettleKind::kDefer, lease.destination, lease.seq,
                                           std::move(reason), false, std::move(done), until_ms));
}

void Store::redrive_async(std::string_view message_id, const std::string& destination,
                          DoneCallback done) {
  if (!is_uuid(message_id)) {
    done(fail(Errc::kInvalidArgument, "message id must be a lowercase UUID"));
    return;
  }
  impl_->submit(
      std::make_unique<RedriveOp>(*impl_, std::string(message_id), destination, std::move(done)));
}

Result<void> Store::redrive(std::string_view message_id, const std::string& destination) {
  std::promise<Result<void>> promise;
  auto future = promise.get_future();
  redrive_async(message_id, destination,
                [&promise](Result<void> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Store::discard_async(std::string_view message_id, const std::string& destination,
                          const std::string& reason, DoneCallback done) {
  if (!is_uuid(message_id)) {
    done(fail(Errc::kInvalidArgument, "message id must be a lowercase UUID"));
    return;
  }
  impl_->submit(std::make_unique<DiscardOp>(*impl_, std::string(message_id), destination, reason,
                                            std::move(done)));
}

Result<void> Store::discard(std::string_view message_id, const std::string& destination,
                            const std::string& reason) {
  std::promise<Result<void>> promise;
  auto future = promise.get_future();
  discard_async(message_id, destination, reason,
                [&promise](Result<void> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::size_t> Store::purge_expired_history(std::size_t max_messages) {
  std::promise<Result<std::size_t>> promise;
  auto future = promise.get_future();
  impl_->submit(std::make_unique<PurgeOp>(*impl_, max_messages, [&promise](Result<std::size_t> r) {
    promise.set_value(std::move(r));
  }));
  return future.get();
}

void Store::write_async(WriteFn fn, std::size_t bytes, DoneCallback done) {
  impl_->submit(std::make_unique<GenericOp>(std::move(fn), bytes, std::move(done)));
}

Result<void> Store::write(WriteFn fn, std::size_t bytes) {
  std::promise<Result<void>> promise;
  auto future = promise.get_future();
  write_async(std::move(fn), bytes,
              [&promise](Result<void> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace sluice::queue
