// The LMDB-backed Store: one environment, one writer thread doing group commit, an in-memory
// scheduling index per destination. See queue.h for the contracts and FORMAT.md for the
// record layout.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "queue/index.h"
#include "queue/lmdb.h"
#include "queue/queue.h"
#include "queue/record.h"

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

std::int64_t backoff_delay_ms(const RetryPolicy& p, std::uint32_t failed_attempts, double unit) {
  double delay = static_cast<double>(p.initial_backoff_ms) *
                 std::pow(std::max(1.0, p.multiplier),
                          static_cast<double>(std::max<std::uint32_t>(failed_attempts, 1) - 1));
  delay = std::min(delay, static_cast<double>(p.max_backoff_ms));
  double jitter = std::clamp(p.jitter, 0.0, 1.0);
  delay *= 1.0 - jitter * std::clamp(unit, 0.0, 1.0);
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(delay));
}

namespace {

constexpr std::string_view kFormatVersion = "1";
constexpr std::size_t kMaxIdempotencyKey = 480;  // LMDB keys are limited to 511 bytes
constexpr std::size_t kMaxDestinations = 64;
constexpr std::size_t kMaxBatchRetries = 4;

std::string idem_key(std::string_view sender, std::string_view smid) {
  std::string k;
  k.reserve(sender.size() + 1 + smid.size());
  k.append(sender);
  k.push_back('\0');
  k.append(smid);
  return k;
}

std::string raw_id(std::string_view canonical) {
  auto b = uuid_bytes(canonical);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string text_id(std::string_view raw16) {
  return uuid_text(reinterpret_cast<const unsigned char*>(raw16.data()));
}

bool is_txn_fatal(const Error& e) { return e.is(Errc::kIo) || e.is(Errc::kStoreFull); }

}  // namespace

// --- the transaction context handed to write operations ---------------------------------

struct Dbis {
  MDB_dbi meta = 0, msg = 0, body = 0, idem = 0, dlv = 0, dest = 0;
  std::unordered_map<std::string, MDB_dbi> tables;
};

class TxnCtx final : public TableWriter {
 public:
  TxnCtx(Store::Impl& store, MDB_txn* txn, std::uint64_t next_seq, std::uint32_t next_dest)
      : store_(store), txn_(txn), next_seq_(next_seq), next_dest_(next_dest) {}

  MDB_txn* txn() const { return txn_; }
  std::uint64_t allocate_seq() { return next_seq_++; }
  std::uint64_t next_seq() const { return next_seq_; }
  std::uint32_t next_dest() const { return next_dest_; }
  Result<std::uint32_t> destination_id(const std::string& name);
  const std::unordered_map<std::string, std::uint32_t>& new_destinations() const {
    return new_dests_;
  }

  Result<std::optional<std::string_view>> get(std::string_view table,
                                              std::string_view key) override;
  Result<void> put(std::string_view table, std::string_view key, std::string_view value) override;
  Result<bool> del(std::string_view table, std::string_view key) override;
  Result<std::optional<std::pair<std::string, std::string>>> last(std::string_view table) override;

 private:
  Result<MDB_dbi> table_dbi(std::string_view table) const;

  Store::Impl& store_;
  MDB_txn* txn_;
  std::uint64_t next_seq_;
  std::uint32_t next_dest_;
  std::unordered_map<std::string, std::uint32_t> new_dests_;
};

// One unit of work for the writer. apply() may run more than once (batch retry); finish()
// runs exactly once with the op's own error or the commit outcome.
class WriteOp {
 public:
  virtual ~WriteOp() = default;
  virtual std::size_t bytes() const { return 256; }
  virtual bool releases_space() const { return false; }
  virtual Result<void> apply(TxnCtx& ctx) = 0;
  virtual void finish(Result<void> outcome) = 0;
};

class Store::Impl {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &SystemClock::instance()),
        random_(options_.random != nullptr ? options_.random : &SecureRandom::instance()) {}

  ~Impl() { close(); }

  Result<void> open();
  void close();
  void submit(std::unique_ptr<WriteOp> op);

  // Ops need these.
  const Options& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  Random& random() { return *random_; }
  const Dbis& dbis() const { return dbis_; }
  MDB_env* env() const { return env_.get(); }
  Result<lmdb::ReadTxn> read_txn() const {
    auto txn = readers_.acquire(env_.get());
    if (!txn) {
      return fail(txn.error());
    }
    return lmdb::ReadTxn(readers_, *txn);
  }

  Result<std::uint32_t> committed_dest_id(const std::string& name) {
    std::lock_guard lock(dest_mutex_);
    auto it = dest_ids_.find(name);
    if (it == dest_ids_.end()) {
      return fail(Errc::kNotFound, "unknown destination " + name);
    }
    return it->second;
  }
  std::string dest_name(std::uint32_t id) const {
    std::lock_guard lock(dest_mutex_);
    auto it = dest_names_.find(id);
    return it == dest_names_.end() ? "#" + std::to_string(id) : it->second;
  }

  std::string* purge_cursor() { return &purge_cursor_; }

  // --- index access (all under index_mutex_) ---
  void index_added(const std::string& dest, DeliveryIndex::Item item);
  void index_finished(const std::string& dest, std::uint64_t seq);
  void index_retry(const std::string& dest, std::uint64_t seq, std::int64_t next_at,
                   std::uint32_t attempts);
  void index_release(const std::string& dest, std::uint64_t seq);
  bool index_begin_finish(const std::string& dest, std::uint64_t seq);
  void notify(const std::string& dest);

  Result<void> reserve(std::uint64_t bytes, std::uint64_t deliveries);
  void unreserve(std::uint64_t bytes, std::uint64_t deliveries);

  std::vector<Lease> lease(const std::string& destination, std::size_t max);
  std::optional<std::int64_t> next_due_ms(const std::string& destination) const;
  Stats stats() const;
  Result<MessageStatus> status(std::string_view message_id) const;
  Result<MessageStatus> status_raw(MDB_txn* txn, std::string_view id16) const;

  void set_listener(ReadyListener l) {
    std::lock_guard lock(listener_mutex_);
    listener_ = std::move(l);
  }

  friend class TxnCtx;

 private:
  void writer_loop();
  void run_batch(std::vector<std::unique_ptr<WriteOp>>& batch);
  Result<void> rebuild_index();

  Options options_;
  const Clock* clock_;
  Random* random_;
  int lock_fd_ = -1;
  lmdb::EnvPtr env_;
  mutable lmdb::ReaderPool readers_;  // before env_ is closed, its handles are aborted
  Dbis dbis_;

  // Writer state.
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<WriteOp>> pending_;  // Guarded by queue_mutex_.
  bool stopping_ = false;                         // Guarded by queue_mutex_.
  bool writer_waiting_ = false;                   // Guarded by queue_mutex_.
  std::thread writer_;
  // Only the writer thread touches these after open().
  std::uint64_t next_seq_ = 1;
  std::uint32_t next_dest_ = 1;
  std::string purge_cursor_;  // next message key the retention purge looks at
  std::atomic<bool> latched_{false};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_ops_{0};

  mutable std::mutex dest_mutex_;
  std::unordered_map<std::string, std::uint32_t> dest_ids_;    // Guarded by dest_mutex_.
  std::unordered_map<std::uint32_t, std::string> dest_names_;  // Guarded by dest_mutex_.

  mutable std::mutex index_mutex_;
  std::map<std::string, DeliveryIndex> indexes_;  // Guarded by index_mutex_.
  std::uint64_t indexed_bytes_ = 0;               // Guarded by index_mutex_.
  std::uint64_t indexed_items_ = 0;               // Guarded by index_mutex_.
  std::uint64_t reserved_bytes_ = 0;              // Guarded by index_mutex_.
  std::uint64_t reserved_items_ = 0;              // Guarded by index_mutex_.

  std::mutex listener_mutex_;
  ReadyListener listener_;  // Guarded by listener_mutex_.
};

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

class AppendOp final : public WriteOp {
 public:
  AppendOp(Store::Impl& store, NewMessage msg, Store::AppendCallback done, std::uint64_t reserved)
      : store_(store), msg_(std::move(msg)), done_(std::move(done)), reserved_(reserved) {}

  std::size_t bytes() const override { return msg_.payload.size() + 512; }

  Result<void> apply(TxnCtx& ctx) override {
    duplicate_of_.clear();
    added_.clear();
    const Dbis& d = store_.dbis();
    std::string id16 = raw_id(msg_.message_id);
    if (!msg_.sender_message_id.empty()) {
      auto found = lmdb::get(ctx.txn(), d.idem, idem_key(msg_.sender, msg_.sender_message_id));
      if (!found) {
        return fail(found.error());
      }
      if (found->has_value()) {
        duplicate_of_ = text_id(**found);
        return {};
      }
    }
    std::int64_t now = store_.clock().now_ms();
    record::Message m;
    m.received_ms = now;
    m.expires_ms = msg_.expires_ms;
    m.payload_bytes = static_cast<std::uint32_t>(msg_.payload.size());
    m.sender = msg_.sender;
    m.sender_message_id = msg_.sender_message_id;
    m.doc_type = msg_.doc_type;
    m.ordering_key = msg_.ordering_key;
    m.attributes = msg_.attributes;
    for (const auto& dest : msg_.destinations) {
      auto dest_id = ctx.destination_id(dest);
      if (!dest_id) {
        return fail(dest_id.error());
      }
      std::uint64_t seq = ctx.allocate_seq();
      m.deliveries.emplace_back(*dest_id, seq);
      record::Delivery dl;
      dl.next_at_ms = now;
      dl.expires_ms = msg_.expires_ms;
      dl.payload_bytes = m.payload_bytes;
      dl.message_id = id16;
      dl.ordering_key = msg_.ordering_key;
      if (auto r =
              lmdb::put(ctx.txn(), d.dlv, record::delivery_key(*dest_id, seq), record::encode(dl));
          !r) {
        return r;
      }
      added_.emplace_back(dest, DeliveryIndex::Item{.seq = seq,
                                                    .message_id = id16,
                                                    .key = msg_.ordering_key,
                                                    .doc_type = msg_.doc_type,
                                                    .next_at_ms = now,
                                                    .expires_ms = msg_.expires_ms,
                                                    .attempts = 0,
                                                    .payload_bytes = m.payload_bytes});
    }
    if (auto r = lmdb::put(ctx.txn(), d.msg, id16, record::encode(m), MDB_NOOVERWRITE); !r) {
      return r;
    }
    if (auto r = lmdb::put(ctx.txn(), d.body, id16, msg_.payload); !r) {
      return r;
    }
    if (!msg_.sender_message_id.empty()) {
      if (auto r =
              lmdb::put(ctx.txn(), d.idem, idem_key(msg_.sender, msg_.sender_message_id), id16);
          !r) {
        return r;
      }
    }
    return {};
  }

  void finish(Result<void> outcome) override {
    if (outcome && duplicate_of_.empty()) {
      for (auto& [dest, item] : added_) {
        store_.index_added(dest, std::move(item));
      }
    }
    store_.unreserve(reserved_, msg_.destinations.size());
    if (outcome && duplicate_of_.empty()) {
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
  std::string duplicate_of_;
  std::vector<std::pair<std::string, DeliveryIndex::Item>> added_;
};

// Ends or reschedules one delivery: ack (delivered), nack (retry / dead / expired), expire.
class SettleOp final : public WriteOp {
 public:
  enum class Kind { kAck, kNack, kExpire };

  SettleOp(Store::Impl& store, Kind kind, std::string dest, std::uint64_t seq, std::string reason,
           bool permanent, Store::DoneCallback done)
      : store_(store),
        kind_(kind),
        dest_(std::move(dest)),
        seq_(seq),
        reason_(std::move(reason)),
        permanent_(permanent),
        done_(std::move(done)) {}

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
    ended_ = true;
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
    // Only the delivery record changes: a message's state is derived from its deliveries.
    return lmdb::put(ctx.txn(), d.dlv, key, record::encode(*dl));
  }

  void finish(Result<void> outcome) override {
    if (outcome && ended_) {
      store_.index_finished(dest_, seq_);
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
  bool ended_ = false;
  std::int64_t next_at_ = 0;
  std::uint32_t attempts_ = 0;
};

class RedriveOp final : public WriteOp {
 public:
  RedriveOp(Store::Impl& store, std::string id, std::string dest, Store::DoneCallback done)
      : store_(store), id_(std::move(id)), dest_(std::move(dest)), done_(std::move(done)) {}

  Result<void> apply(TxnCtx& ctx) override {
    const Dbis& d = store_.dbis();
    std::string id16 = raw_id(id_);
    auto found = lmdb::get(ctx.txn(), d.msg, id16);
    if (!found) {
      return fail(found.error());
    }
    if (!found->has_value()) {
      return fail(Errc::kNotFound, "message " + id_ + " not found");
    }
    auto m = record::decode_message(**found);
    if (!m) {
      return fail(Errc::kInternal, "corrupt message record " + id_);
    }
    auto dest_id = store_.committed_dest_id(dest_);
    if (!dest_id) {
      return fail(dest_id.error());
    }
    for (auto& [did, seq] : m->deliveries) {
      if (did != *dest_id) {
        continue;
      }
      std::string old_key = record::delivery_key(did, seq);
      auto old = lmdb::get(ctx.txn(), d.dlv, old_key);
      if (!old) {
        return fail(old.error());
      }
      auto dl = old->has_value() ? record::decode_delivery(**old) : std::nullopt;
      if (!dl || dl->state != static_cast<std::uint8_t>(DeliveryState::kDead)) {
        return fail(Errc::kInvalidArgument,
                    "message " + id_ + " is not dead at destination " + dest_);
      }
      if (auto r = lmdb::del(ctx.txn(), d.dlv, old_key); !r) {
        return fail(r.error());
      }
      std::int64_t now = store_.clock().now_ms();
      std::uint64_t new_seq = ctx.allocate_seq();
      dl->state = static_cast<std::uint8_t>(DeliveryState::kPending);
      dl->attempts = 0;
      dl->next_at_ms = now;
      dl->done_ms = 0;
      dl->last_error.clear();
      if (auto r =
              lmdb::put(ctx.txn(), d.dlv, record::delivery_key(did, new_seq), record::encode(*dl));
          !r) {
        return r;
      }
      seq = new_seq;
      item_ = DeliveryIndex::Item{.seq = new_seq,
                                  .message_id = id16,
                                  .key = dl->ordering_key,
                                  .doc_type = m->doc_type,
                                  .next_at_ms = now,
                                  .expires_ms = dl->expires_ms,
                                  .attempts = 0,
                                  .payload_bytes = dl->payload_bytes};
      return lmdb::put(ctx.txn(), d.msg, id16, record::encode(*m));
    }
    return fail(Errc::kNotFound, "message " + id_ + " has no delivery to " + dest_);
  }

  void finish(Result<void> outcome) override {
    if (outcome) {
      store_.index_added(dest_, item_);
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
};

// Deletes messages whose deliveries all ended (delivered or expired, none dead) before
// now - retention. Walks the message table from a cursor that wraps around, a bounded number
// of rows per call, so old dead letters never make it rescan the whole table.
class PurgeOp final : public WriteOp {
 public:
  PurgeOp(Store::Impl& store, std::size_t max, std::string* cursor,
          std::move_only_function<void(Result<std::size_t>)> done)
      : store_(store), max_(max), cursor_(cursor), done_(std::move(done)) {}

  bool releases_space() const override { return true; }

  Result<void> apply(TxnCtx& ctx) override {
    const Dbis& d = store_.dbis();
    purged_ = 0;
    next_cursor_.clear();
    std::int64_t cutoff = store_.clock().now_ms() - store_.options().retention_ms;
    std::vector<std::pair<std::string, record::Message>> victims;
    {
      auto cur = lmdb::Cursor::open(ctx.txn(), d.msg);
      if (!cur) {
        return fail(cur.error());
      }
      MDB_val k = lmdb::val(*cursor_), v;
      int rc = mdb_cursor_get(cur->get(), &k, &v, cursor_->empty() ? MDB_FIRST : MDB_SET_RANGE);
      std::size_t scanned = 0;
      while (rc == 0 && scanned < 4 * max_ && victims.size() < max_) {
        ++scanned;
        auto m = record::decode_message(lmdb::view(v));
        if (m && m->received_ms < cutoff) {
          bool purgeable = true;
          for (const auto& [did, seq] : m->deliveries) {
            auto dv = lmdb::get(ctx.txn(), d.dlv, record::delivery_key(did, seq));
            if (!dv) {
              return fail(dv.error());
            }
            auto dl = dv->has_value() ? record::decode_delivery(**dv) : std::nullopt;
            if (dl && (dl->state == static_cast<std::uint8_t>(DeliveryState::kPending) ||
                       dl->state == static_cast<std::uint8_t>(DeliveryState::kDead) ||
                       dl->done_ms >= cutoff)) {
              purgeable = false;
              break;
            }
          }
          if (purgeable) {
            victims.emplace_back(std::string(lmdb::view(k)), std::move(*m));
          }
        }
        rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
      }
      if (rc == 0) {
        next_cursor_.assign(lmdb::view(k));
      } else if (rc != MDB_NOTFOUND) {
        return fail(lmdb::error(rc, "scan messages"));
      }
    }
    for (const auto& [id16, m] : victims) {
      for (const auto& [did, seq] : m.deliveries) {
        if (auto r = lmdb::del(ctx.txn(), d.dlv, record::delivery_key(did, seq)); !r) {
          return fail(r.error());
        }
      }
      if (!m.sender_message_id.empty()) {
        if (auto r = lmdb::del(ctx.txn(), d.idem, idem_key(m.sender, m.sender_message_id)); !r) {
          return fail(r.error());
        }
      }
      if (auto r = lmdb::del(ctx.txn(), d.msg, id16); !r) {
        return fail(r.error());
      }
      if (auto r = lmdb::del(ctx.txn(), d.body, id16); !r) {
        return fail(r.error());
      }
      ++purged_;
    }
    return {};
  }

  void finish(Result<void> outcome) override {
    if (outcome) {
      *cursor_ = next_cursor_;  // writer thread only
      done_(purged_);
    } else {
      done_(fail(outcome.error()));
    }
  }

 private:
  Store::Impl& store_;
  std::size_t max_;
  std::string* cursor_;
  std::move_only_function<void(Result<std::size_t>)> done_;
  std::size_t purged_ = 0;
  std::string next_cursor_;
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

// --- Impl: open, writer, batches ------------------------------------------------------------

Result<void> Store::Impl::open() {
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) {
    return fail(Errc::kIo,
                "create store directory " + options_.path.string() + ": " + ec.message());
  }
  std::filesystem::path lock_path = options_.path / "sluice.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    return fail(Errc::kIo, "open " + lock_path.string() + ": " + std::strerror(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return fail(Errc::kUnavailable,
                "store " + options_.path.string() + " is in use by another process");
  }
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_create"));
  }
  env_.reset(raw);
  if (int rc = mdb_env_set_mapsize(env_.get(), options_.map_size_bytes); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_set_mapsize"));
  }
  if (int rc = mdb_env_set_maxdbs(env_.get(), 32 + options_.extension_tables.size()); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_set_maxdbs"));
  }
  if (int rc = mdb_env_set_maxreaders(env_.get(), 512); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_set_maxreaders"));
  }
  if (int rc = mdb_env_open(env_.get(), options_.path.c_str(), MDB_NOTLS, 0600); rc != 0) {
    return fail(lmdb::error(rc, "open LMDB environment at " + options_.path.string()));
  }
  int dead_readers = 0;
  mdb_reader_check(env_.get(), &dead_readers);

  auto txn = lmdb::Txn::begin(env_.get(), 0);
  if (!txn) {
    return fail(txn.error());
  }
  auto open_db = [&](const char* name, MDB_dbi& dbi) -> Result<void> {
    if (int rc = mdb_dbi_open(txn->get(), name, MDB_CREATE, &dbi); rc != 0) {
      return fail(lmdb::error(rc, std::string("mdb_dbi_open ") + name));
    }
    return {};
  };
  for (auto [name, dbi] : {std::pair{"meta", &dbis_.meta}, std::pair{"msg", &dbis_.msg},
                           std::pair{"body", &dbis_.body}, std::pair{"idem", &dbis_.idem},
                           std::pair{"dlv", &dbis_.dlv}, std::pair{"dest", &dbis_.dest}}) {
    if (auto r = open_db(name, *dbi); !r) {
      return r;
    }
  }
  for (const auto& table : options_.extension_tables) {
    MDB_dbi dbi;
    if (auto r = open_db(("x." + table).c_str(), dbi); !r) {
      return r;
    }
    dbis_.tables.emplace(table, dbi);
  }
  auto format = lmdb::get(txn->get(), dbis_.meta, "format");
  if (!format) {
    return fail(format.error());
  }
  if (!format->has_value()) {
    if (auto r = lmdb::put(txn->get(), dbis_.meta, "format", kFormatVersion); !r) {
      return r;
    }
  } else if (**format != kFormatVersion) {
    return fail(Errc::kInvalidArgument, "store format " + std::string(**format) +
                                            " is not supported (this build reads format " +
                                            std::string(kFormatVersion) + ")");
  }
  if (auto v = lmdb::get(txn->get(), dbis_.meta, "next_seq");
      v && v->has_value() && (*v)->size() == 8) {
    next_seq_ = record::get_u64be(**v);
  }
  if (auto v = lmdb::get(txn->get(), dbis_.meta, "next_dest");
      v && v->has_value() && (*v)->size() == 4) {
    next_dest_ = record::get_u32be(**v);
  }
  {
    auto cur = lmdb::Cursor::open(txn->get(), dbis_.dest);
    if (!cur) {
      return fail(cur.error());
    }
    MDB_val k, v;
    int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
    while (rc == 0) {
      if (v.mv_size == 4) {
        std::uint32_t id = record::get_u32be(lmdb::view(v));
        dest_ids_.emplace(std::string(lmdb::view(k)), id);
        dest_names_.emplace(id, std::string(lmdb::view(k)));
      }
      rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
    }
  }
  if (int rc = txn->commit(); rc != 0) {
    return fail(lmdb::error(rc, "commit store setup"));
  }
  if (auto r = rebuild_index(); !r) {
    return r;
  }
  writer_ = std::thread([this] { writer_loop(); });
  spdlog::info("store {} opened: {} pending deliveries, {} bytes queued{}", options_.path.string(),
               indexed_items_, indexed_bytes_, dead_readers > 0 ? ", cleared stale readers" : "");
  return {};
}

Result<void> Store::Impl::rebuild_index() {
  auto txn = read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto cur = lmdb::Cursor::open(txn->get(), dbis_.dlv);
  if (!cur) {
    return fail(cur.error());
  }
  MDB_val k, v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
  std::lock_guard lock(index_mutex_);
  while (rc == 0) {
    std::uint32_t dest;
    std::uint64_t seq;
    auto dl = record::decode_delivery(lmdb::view(v));
    if (!record::parse_delivery_key(lmdb::view(k), dest, seq) || !dl) {
      return fail(Errc::kInternal, "corrupt delivery record during recovery");
    }
    if (dl->state == static_cast<std::uint8_t>(DeliveryState::kPending)) {
      std::string name;
      {
        std::lock_guard dlock(dest_mutex_);
        auto it = dest_names_.find(dest);
        name = it == dest_names_.end() ? "#" + std::to_string(dest) : it->second;
      }
      std::string doc_type;
      if (auto mv = lmdb::get(txn->get(), dbis_.msg, dl->message_id); mv && mv->has_value()) {
        if (auto m = record::decode_message(**mv)) {
          doc_type = std::move(m->doc_type);
        }
      }
      indexed_bytes_ += dl->payload_bytes;
      indexed_items_ += 1;
      indexes_[name].add(DeliveryIndex::Item{.seq = seq,
                                             .message_id = dl->message_id,
                                             .key = dl->ordering_key,
                                             .doc_type = std::move(doc_type),
                                             .next_at_ms = dl->next_at_ms,
                                             .expires_ms = dl->expires_ms,
                                             .attempts = dl->attempts,
                                             .payload_bytes = dl->payload_bytes});
    }
    rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "scan deliveries"));
  }
  return {};
}

void Store::Impl::close() {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_ && !writer_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) {
    writer_.join();
  }
  readers_.clear();
  env_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

void Store::Impl::submit(std::unique_ptr<WriteOp> op) {
  bool wake = false;
  {
    std::lock_guard lock(queue_mutex_);
    if (!stopping_) {
      pending_.push_back(std::move(op));
      // A busy writer takes the queue after its commit; only a sleeping one needs a signal.
      wake = writer_waiting_;
    }
  }
  if (op) {  // not queued: the store is closing
    op->finish(fail(Errc::kShuttingDown, "the store is closing"));
    return;
  }
  if (wake) {
    queue_cv_.notify_one();
  }
}

void Store::Impl::writer_loop() {
  std::vector<std::unique_ptr<WriteOp>> batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      writer_waiting_ = true;
      queue_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      writer_waiting_ = false;
      if (pending_.empty() && stopping_) {
        return;
      }
      auto take = [&] {
        std::size_t bytes = 0;
        for (const auto& op : batch) bytes += op->bytes();
        while (!pending_.empty() && batch.size() < options_.group_commit_max_count &&
               (batch.empty() ||
                bytes + pending_.front()->bytes() <= options_.group_commit_max_bytes)) {
          bytes += pending_.front()->bytes();
          batch.push_back(std::move(pending_.front()));
          pending_.pop_front();
        }
      };
      take();
      if (options_.group_commit_linger.count() > 0 &&
          batch.size() < options_.group_commit_max_count && !stopping_) {
        writer_waiting_ = true;
        queue_cv_.wait_for(lock, options_.group_commit_linger, [&] {
          return stopping_ || pending_.size() + batch.size() >= options_.group_commit_max_count;
        });
        writer_waiting_ = false;
        take();
      }
    }
    run_batch(batch);
    batch.clear();
  }
}

void Store::Impl::run_batch(std::vector<std::unique_ptr<WriteOp>>& batch) {
  std::vector<std::optional<Error>> errors(batch.size());
  bool store_full = false;
  bool committed = false;
  for (std::size_t round = 0; round <= kMaxBatchRetries && !committed; ++round) {
    if (latched_.load()) {
      for (auto& e : errors) {
        if (!e)
          e = Error(Errc::kStoreFailed,
                    "the store is read-only after a failed commit; restart to recover");
      }
      break;
    }
    auto txn = lmdb::Txn::begin(env_.get(), 0);
    if (!txn) {
      for (auto& e : errors) {
        if (!e) e = txn.error();
      }
      break;
    }
    TxnCtx ctx(*this, txn->get(), next_seq_, next_dest_);
    bool retry = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errors[i]) {
        continue;
      }
      if (store_full && !batch[i]->releases_space()) {
        errors[i] = Error(Errc::kStoreFull, "the store is full (map size reached); retry later");
        continue;
      }
      auto r = batch[i]->apply(ctx);
      if (r) {
        continue;
      }
      if (is_txn_fatal(r.error())) {
        // The transaction is unusable: drop it, remember why, and run the rest again.
        if (r.error().is(Errc::kStoreFull)) {
          store_full = true;
          if (batch[i]->releases_space()) {
            errors[i] = r.error();
          }
        } else {
          errors[i] = r.error();
        }
        retry = true;
        break;
      }
      errors[i] = r.error();
    }
    if (retry) {
      continue;
    }
    std::string seq_v, dest_v;
    record::put_u64be(seq_v, ctx.next_seq());
    record::put_u32be(dest_v, ctx.next_dest());
    if (auto r = lmdb::put(txn->get(), dbis_.meta, "next_seq", seq_v); !r) {
      for (auto& e : errors) {
        if (!e) e = r.error();
      }
      break;
    }
    if (auto r = lmdb::put(txn->get(), dbis_.meta, "next_dest", dest_v); !r) {
      for (auto& e : errors) {
        if (!e) e = r.error();
      }
      break;
    }
    int rc = 0;
    if (options_.commit_fault) {
      rc = options_.commit_fault();
    }
    if (rc != 0) {
      txn->abort();
    } else {
      rc = txn->commit();
    }
    if (rc != 0) {
      latched_.store(true);
      spdlog::critical("store commit failed ({}); the store is read-only until restart",
                       rc > 0 ? std::strerror(rc) : mdb_strerror(rc));
      for (auto& e : errors) {
        if (!e)
          e = Error(Errc::kStoreFailed, std::string("commit failed: ") +
                                            (rc > 0 ? std::strerror(rc) : mdb_strerror(rc)) +
                                            "; the store is read-only until restart");
      }
      break;
    }
    committed = true;
    next_seq_ = ctx.next_seq();
    next_dest_ = ctx.next_dest();
    {
      std::lock_guard lock(dest_mutex_);
      for (const auto& [name, id] : ctx.new_destinations()) {
        dest_ids_.emplace(name, id);
        dest_names_.emplace(id, name);
      }
    }
    commits_.fetch_add(1);
    committed_ops_.fetch_add(batch.size());
  }
  if (!committed) {
    for (auto& e : errors) {
      if (!e) e = Error(Errc::kInternal, "batch could not be committed after retries");
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (errors[i]) {
      batch[i]->finish(fail(std::move(*errors[i])));
    } else {
      batch[i]->finish({});
    }
  }
}

// --- Impl: index ----------------------------------------------------------------------------

void Store::Impl::index_added(const std::string& dest, DeliveryIndex::Item item) {
  std::lock_guard lock(index_mutex_);
  indexed_bytes_ += item.payload_bytes;
  indexed_items_ += 1;
  indexes_[dest].add(std::move(item));
}

void Store::Impl::index_finished(const std::string& dest, std::uint64_t seq) {
  std::lock_guard lock(index_mutex_);
  auto it = indexes_.find(dest);
  if (it == indexes_.end()) {
    return;
  }
  std::uint64_t before = it->second.bytes();
  std::uint64_t count = it->second.size();
  it->second.finish(seq);
  indexed_bytes_ -= before - it->second.bytes();
  indexed_items_ -= count - it->second.size();
}

void Store::Impl::index_retry(const std::string& dest, std::uint64_t seq, std::int64_t next_at,
                              std::uint32_t attempts) {
  std::lock_guard lock(index_mutex_);
  if (auto it = indexes_.find(dest); it != indexes_.end()) {
    it->second.retry(seq, next_at, attempts);
  }
}

void Store::Impl::index_release(const std::string& dest, std::uint64_t seq) {
  std::lock_guard lock(index_mutex_);
  if (auto it = indexes_.find(dest); it != indexes_.end()) {
    it->second.release(seq);
  }
}

bool Store::Impl::index_begin_finish(const std::string& dest, std::uint64_t seq) {
  std::lock_guard lock(index_mutex_);
  auto it = indexes_.find(dest);
  return it != indexes_.end() && it->second.begin_finish(seq);
}

void Store::Impl::notify(const std::string& dest) {
  ReadyListener listener;
  {
    std::lock_guard lock(listener_mutex_);
    listener = listener_;
  }
  if (listener) {
    listener(dest);
  }
}

Result<void> Store::Impl::reserve(std::uint64_t bytes, std::uint64_t deliveries) {
  std::lock_guard lock(index_mutex_);
  if (indexed_bytes_ + reserved_bytes_ + bytes > options_.max_queued_bytes) {
    return fail(Errc::kQueueFull,
                "queue is full: " + std::to_string(indexed_bytes_ + reserved_bytes_) +
                    " bytes waiting, limit " + std::to_string(options_.max_queued_bytes));
  }
  if (indexed_items_ + reserved_items_ + deliveries > options_.max_queued_messages) {
    return fail(Errc::kQueueFull,
                "queue is full: " + std::to_string(indexed_items_ + reserved_items_) +
                    " deliveries waiting, limit " + std::to_string(options_.max_queued_messages));
  }
  reserved_bytes_ += bytes;
  reserved_items_ += deliveries;
  return {};
}

void Store::Impl::unreserve(std::uint64_t bytes, std::uint64_t deliveries) {
  std::lock_guard lock(index_mutex_);
  reserved_bytes_ -= bytes;
  reserved_items_ -= deliveries;
}

std::vector<Lease> Store::Impl::lease(const std::string& destination, std::size_t max) {
  std::vector<DeliveryIndex::Item> items, expired;
  std::int64_t now = clock_->now_ms();
  {
    std::lock_guard lock(index_mutex_);
    auto it = indexes_.find(destination);
    if (it == indexes_.end()) {
      return {};
    }
    items = it->second.lease(now, options_.lease_timeout_ms, max, expired);
  }
  for (const auto& item : expired) {
    submit(std::make_unique<SettleOp>(*this, SettleOp::Kind::kExpire, destination, item.seq, "",
                                      false, nullptr));
  }
  std::vector<Lease> out;
  if (items.empty()) {
    return out;
  }
  out.reserve(items.size());
  auto txn = read_txn();
  for (auto& item : items) {
    std::optional<std::string_view> body;
    if (txn) {
      if (auto b = lmdb::get(txn->get(), dbis_.body, item.message_id); b && b->has_value()) {
        body = **b;
      }
    }
    if (!body) {
      spdlog::error("delivery {}#{} has no stored message; handing it back", destination, item.seq);
      index_release(destination, item.seq);
      continue;
    }
    Lease l;
    l.destination = destination;
    l.seq = item.seq;
    l.message_id = text_id(item.message_id);
    l.attempt = item.attempts + 1;
    l.doc_type = std::move(item.doc_type);
    l.ordering_key = std::move(item.key);
    l.expires_ms = item.expires_ms;
    l.payload.assign(*body);
    out.push_back(std::move(l));
  }
  return out;
}

std::optional<std::int64_t> Store::Impl::next_due_ms(const std::string& destination) const {
  std::lock_guard lock(index_mutex_);
  auto it = indexes_.find(destination);
  if (it == indexes_.end()) {
    return std::nullopt;
  }
  return it->second.next_due_ms();
}

Stats Store::Impl::stats() const {
  Stats s;
  std::int64_t now = clock_->now_ms();
  {
    std::lock_guard lock(index_mutex_);
    s.queued_bytes = indexed_bytes_;
    s.queued_messages = indexed_items_;
    for (const auto& [name, idx] : indexes_) {
      s.destinations.push_back(DestinationStats{.destination = name,
                                                .pending = idx.size(),
                                                .leased = idx.leased(),
                                                .due = idx.due_count(now),
                                                .bytes = idx.bytes()});
    }
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
    s.state = any_attempt ? "delivering" : "queued";
  } else if (any_delivered && !any_dead && !any_expired) {
    s.state = "delivered";
  } else if (any_dead && !any_delivered && !any_expired) {
    s.state = "dead";
  } else if (any_expired && !any_delivered && !any_dead) {
    s.state = "expired";
  } else {
    s.state = "partial";
  }
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

// --- Store ----------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(Options options) {
  if (options.path.empty()) {
    return fail(Errc::kInvalidArgument, "store path is empty");
  }
  if (options.retry.max_attempts == 0 || options.group_commit_max_count == 0) {
    return fail(Errc::kInvalidArgument,
                "retry.max_attempts and group_commit_max_count must be at least 1");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto r = impl->open(); !r) {
    return fail(r.error());
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

void Store::close() { impl_->close(); }

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

std::vector<Lease> Store::lease(const std::string& destination, std::size_t max) {
  return impl_->lease(destination, max);
}

void Store::ack(const Lease& lease, DoneCallback done) {
  if (!impl_->index_begin_finish(lease.destination, lease.seq)) {
    if (done) done(fail(Errc::kNotFound, "no active lease for " + lease.message_id));
    return;
  }
  impl_->submit(std::make_unique<SettleOp>(*impl_, SettleOp::Kind::kAck, lease.destination,
                                           lease.seq, "", false, std::move(done)));
}

void Store::nack(const Lease& lease, std::string reason, bool permanent, DoneCallback done) {
  if (!impl_->index_begin_finish(lease.destination, lease.seq)) {
    if (done) done(fail(Errc::kNotFound, "no active lease for " + lease.message_id));
    return;
  }
  impl_->submit(std::make_unique<SettleOp>(*impl_, SettleOp::Kind::kNack, lease.destination,
                                           lease.seq, std::move(reason), permanent,
                                           std::move(done)));
}

std::optional<std::int64_t> Store::next_due_ms(const std::string& destination) const {
  return impl_->next_due_ms(destination);
}

void Store::set_ready_listener(ReadyListener listener) { impl_->set_listener(std::move(listener)); }

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
  auto found = lmdb::get(txn->get(), impl_->dbis().body, raw_id(message_id));
  if (!found) {
    return fail(found.error());
  }
  if (!found->has_value()) {
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

Result<void> Store::redrive(std::string_view message_id, const std::string& destination) {
  if (!is_uuid(message_id)) {
    return fail(Errc::kInvalidArgument, "message id must be a lowercase UUID");
  }
  std::promise<Result<void>> promise;
  auto future = promise.get_future();
  impl_->submit(
      std::make_unique<RedriveOp>(*impl_, std::string(message_id), destination,
                                  [&promise](Result<void> r) { promise.set_value(std::move(r)); }));
  return future.get();
}

Result<std::size_t> Store::purge_expired_history(std::size_t max_messages) {
  std::promise<Result<std::size_t>> promise;
  auto future = promise.get_future();
  impl_->submit(std::make_unique<PurgeOp>(
      *impl_, max_messages, impl_->purge_cursor(),
      [&promise](Result<std::size_t> r) { promise.set_value(std::move(r)); }));
  return future.get();
}

Stats Store::stats() const { return impl_->stats(); }

Result<void> Store::backup(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(Errc::kIo, "create backup directory " + dir.string() + ": " + ec.message());
  }
  if (!std::filesystem::is_empty(dir, ec)) {
    return fail(Errc::kAlreadyExists, "backup directory " + dir.string() + " is not empty");
  }
  if (int rc = mdb_env_copy2(impl_->env(), dir.c_str(), MDB_CP_COMPACT); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_copy2 to " + dir.string()));
  }
  return {};
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

Result<void> Store::scan(std::string_view table, std::string_view from,
                         const RowVisitor& visit) const {
  auto it = impl_->dbis().tables.find(std::string(table));
  if (it == impl_->dbis().tables.end()) {
    return fail(Errc::kInvalidArgument, "unknown extension table " + std::string(table));
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto cur = lmdb::Cursor::open(txn->get(), it->second);
  if (!cur) {
    return fail(cur.error());
  }
  MDB_val k = lmdb::val(from), v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    if (!visit(lmdb::view(k), lmdb::view(v))) {
      return {};
    }
    rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "scan " + std::string(table)));
  }
  return {};
}

Result<void> Store::scan_reverse(std::string_view table, const RowVisitor& visit) const {
  auto it = impl_->dbis().tables.find(std::string(table));
  if (it == impl_->dbis().tables.end()) {
    return fail(Errc::kInvalidArgument, "unknown extension table " + std::string(table));
  }
  auto txn = impl_->read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto cur = lmdb::Cursor::open(txn->get(), it->second);
  if (!cur) {
    return fail(cur.error());
  }
  MDB_val k, v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_LAST);
  while (rc == 0) {
    if (!visit(lmdb::view(k), lmdb::view(v))) {
      return {};
    }
    rc = mdb_cursor_get(cur->get(), &k, &v, MDB_PREV);
  }
  if (rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "scan " + std::string(table)));
  }
  return {};
}

}  // namespace sluice::queue
