// Internal to queue/: the Store's implementation shared by its translation units (writer,
// ops, recovery, lease, queries). Nothing outside queue/ may include this header: it exposes
// LMDB, which stays a private dependency of sluice_queue.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "queue/index.h"
#include "queue/lmdb.h"
#include "queue/queue.h"
#include "queue/record.h"

namespace sluice::queue {

// The name shown for a destination id the store has no name for: "#<id>". Built piecewise:
// g++ 12 at -O3 misreads "#" + string as an overlapping copy (-Wrestrict).
inline std::string unknown_dest_name(std::uint32_t id) {
  std::string name = "#";
  name += std::to_string(id);
  return name;
}

inline constexpr std::string_view kFormatVersion = "4";
inline constexpr std::string_view kFormatVersionWithoutDeadIndex = "3";  // upgraded on open
inline constexpr std::string_view kFormatVersionWithoutHistory = "1";    // upgraded on open
inline constexpr std::string_view kFormatVersionWithoutSchedule = "2";   // upgraded on open
inline constexpr std::size_t kMaxIdempotencyKey = 480;  // LMDB keys are limited to 511 bytes
inline constexpr std::size_t kMaxDestinations = 64;
inline constexpr std::size_t kMaxBatchRetries = 4;
// Times an operation refused for a full map is queued again after history was purged to make
// room. LMDB reuses the pages a commit freed only from the second transaction after it, so
// the first retry can still find the map full.
inline constexpr std::uint32_t kMaxSpaceRetries = 4;

inline std::string idem_key(std::string_view sender, std::string_view smid) {
  std::string k;
  k.reserve(sender.size() + 1 + smid.size());
  k.append(sender);
  k.push_back('\0');
  k.append(smid);
  return k;
}

inline std::string raw_id(std::string_view canonical) {
  auto b = uuid_bytes(canonical);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline std::string text_id(std::string_view raw16) {
  return uuid_text(reinterpret_cast<const unsigned char*>(raw16.data()));
}

// --- the transaction context handed to write operations ---------------------------------

struct Dbis {
  MDB_dbi meta = 0, msg = 0, body = 0, idem = 0, dlv = 0, dest = 0, hist = 0;
  MDB_dbi sched = 0, ktail = 0, next = 0, qlen = 0, dead = 0;
  std::unordered_map<std::string, MDB_dbi> tables;
};

// What the store keeps of delivered messages (Options: retention): how many, the map bytes
// their entries take (record::PageRules), and how many were purged since open.
struct HistoryCounts {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t purged = 0;
};

class TxnCtx final : public TableWriter {
 public:
  TxnCtx(Store::Impl& store, MDB_txn* txn, std::uint64_t next_seq, std::uint32_t next_dest,
         HistoryCounts history)
      : store_(store),
        batch_txn_(txn),
        txn_(txn),
        next_seq_(next_seq),
        next_dest_(next_dest),
        history_(history) {}

  // The transaction operations write to: the child of the batch's transaction that holds the
  // current operation, or the batch's own outside an operation.
  MDB_txn* txn() const { return txn_; }
  MDB_txn* batch_txn() const { return batch_txn_; }
  // An operation starts in `child` (a nested transaction of the batch's). end_op(false) forgets
  // what it allocated (sequence numbers, destinations) along with its aborted writes.
  void begin_op(MDB_txn* child) {
    txn_ = child;
    op_seq_ = next_seq_;
    op_dest_ = next_dest_;
    op_history_ = history_;
    op_queued_ = queued_;
    op_dests_.clear();
  }
  void end_op(bool kept) {
    txn_ = batch_txn_;
    if (!kept) {
      next_seq_ = op_seq_;
      next_dest_ = op_dest_;
      history_ = op_history_;
      queued_ = op_queued_;
      for (const auto& name : op_dests_) {
        new_dests_.erase(name);
      }
    }
  }
  std::uint64_t allocate_seq() { return next_seq_++; }
  std::uint64_t next_seq() const { return next_seq_; }
  std::uint32_t next_dest() const { return next_dest_; }
  Result<std::uint32_t> destination_id(const std::string& name);
  const std::unordered_map<std::string, std::uint32_t>& new_destinations() const {
    return new_dests_;
  }
  // History as this transaction leaves it; the store's own once it commits.
  const HistoryCounts& history() const { return history_; }
  void history_entered(std::uint64_t bytes) {
    history_.messages += 1;
    history_.bytes += bytes;
  }
  // A delivery to `dest` became pending (+1) or ended (-1), with its payload bytes.
  void queued(std::uint32_t dest, std::int64_t deliveries, std::int64_t bytes) {
    auto& d = queued_[dest];
    d.first += deliveries;
    d.second += bytes;
  }
  // Per destination id: the change to its pending deliveries and bytes in this transaction.
  const std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>>& queued() const {
    return queued_;
  }
  void history_purged(std::uint64_t bytes) {
    history_.messages -= std::min<std::uint64_t>(history_.messages, 1);
    history_.bytes -= std::min(history_.bytes, bytes);
    history_.purged += 1;
  }

  Result<std::optional<std::string_view>> get(std::string_view table,
                                              std::string_view key) override;
  Result<void> put(std::string_view table, std::string_view key, std::string_view value) override;
  Result<bool> del(std::string_view table, std::string_view key) override;
  Result<std::optional<std::pair<std::string, std::string>>> last(std::string_view table) override;

 private:
  Result<MDB_dbi> table_dbi(std::string_view table) const;

  Store::Impl& store_;
  MDB_txn* batch_txn_;
  MDB_txn* txn_;
  std::uint64_t next_seq_;
  std::uint32_t next_dest_;
  std::unordered_map<std::string, std::uint32_t> new_dests_;
  HistoryCounts history_;
  std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> queued_;
  // Restored by end_op(false).
  std::uint64_t op_seq_ = 0;
  std::uint32_t op_dest_ = 0;
  HistoryCounts op_history_;
  std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> op_queued_;
  std::vector<std::string> op_dests_;
};

// One unit of work for the writer. apply() may run more than once (batch retry) on the writer
// thread; committed() runs there once the batch holding a successful apply() has committed,
// before the next batch; finish() runs exactly once, on the completion thread (or the
// submitting thread when the store is closing), with the op's own error or the commit outcome.
class WriteOp {
 public:
  virtual ~WriteOp() = default;
  virtual std::size_t bytes() const { return 256; }
  // Map bytes it may add (record::PageRules), to know how much room a refused one needs.
  virtual std::uint64_t map_bytes() const { return bytes(); }
  virtual bool releases_space() const { return false; }
  virtual Result<void> apply(TxnCtx& ctx) = 0;
  virtual void committed() {}
  virtual void finish(Result<void> outcome) = 0;
  // Refused for a full map: may it be queued again once history made room? (At most
  // kMaxSpaceRetries times; writer thread only.)
  bool retry_for_space() { return space_retries_++ < kMaxSpaceRetries; }

 private:
  std::uint32_t space_retries_ = 0;
};

// A committed (or failed) batch waiting for its operations to be finished.
struct CompletedBatch {
  std::vector<std::unique_ptr<WriteOp>> ops;
  std::vector<std::optional<Error>> errors;  // per op; empty: it succeeded
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
    return it == dest_names_.end() ? unknown_dest_name(id) : it->second;
  }

  const record::PageRules& page_rules() const { return page_rules_; }
  HistoryCounts history() const {
    return {history_messages_.load(), history_bytes_.load(), history_purged_.load()};
  }
  // True when `h` exceeds retention_max_messages or retention_max_bytes.
  bool history_over_bounds(const HistoryCounts& h) const {
    return h.messages > options_.retention_max_messages || h.bytes > options_.retention_max_bytes;
  }

  // --- index access (all under index_mutex_) ---
  // A delivery was scheduled (redrive, the next of its key): it enters the window.
  void index_added(const std::string& dest, DeliveryIndex::Item item);
  // An append completed: its reservation (bytes, deliveries) ends and `items` — the scheduled
  // deliveries it stored, none for a duplicate or a failure — enter the window, under one lock.
  void append_completed(std::vector<std::pair<std::string, DeliveryIndex::Item>> items,
                        std::uint64_t reserved_bytes, std::uint64_t reserved_deliveries);
  // The delivery ended; `next`, when the end scheduled the next of its key, enters the window.
  void index_finished(const std::string& dest, std::uint64_t seq,
                      std::optional<DeliveryIndex::Item> next = std::nullopt);
  void index_retry(const std::string& dest, std::uint64_t seq, std::int64_t next_at,
                   std::uint32_t attempts);
  void index_release(const std::string& dest, std::uint64_t seq);
  bool index_begin_finish(const std::string& dest, std::uint64_t seq);
  void notify(const std::string& dest);

  Result<void> reserve(std::uint64_t bytes, std::uint64_t deliveries);

  std::vector<Lease> lease(const std::string& destination, std::size_t max);
  bool latched() const { return latched_.load(); }
  std::optional<std::int64_t> next_due_ms(const std::string& destination) const;
  Stats stats() const;
  Result<MessageStatus> status(std::string_view message_id) const;
  Result<MessageStatus> status_raw(MDB_txn* txn, std::string_view id16) const;

  void set_listener(ReadyListener l) {
    auto shared = l ? std::make_shared<const ReadyListener>(std::move(l)) : nullptr;
    std::lock_guard lock(listener_mutex_);
    listener_ = std::move(shared);
  }

  friend class TxnCtx;

 private:
  void writer_loop();
  void run_batch(std::vector<std::unique_ptr<WriteOp>> batch);
  // Commits a writer transaction: kStoreFull for MDB_MAP_FULL (nothing was written; the store
  // stays writable), kStoreFailed for anything else, which latches the store read-only.
  Result<void> commit(lmdb::Txn& txn);
  void publish(const TxnCtx& ctx);  // a commit of ctx's transaction returned OK
  // Purges the oldest history until about `bytes` of the map are free again, for writes
  // refused because the map is full. Returns how many messages it purged.
  std::size_t make_room(std::uint64_t bytes);
  std::size_t purge_for_room(std::uint64_t bytes);  // one transaction of make_room
  // Brings history back within its bounds inside the batch's transaction (a nested one, so a
  // failure leaves the batch as it was); at most `max` messages.
  void trim_history(TxnCtx& ctx, std::size_t max);
  // Why a write was refused for a full map that purging history could not relieve.
  Error map_full_error() const;
  // Bytes the next write transaction can still allocate: the map beyond its high-water mark,
  // plus, only when that is short of headroom_, the free pages LMDB can hand out again.
  std::uint64_t map_room() const;
  void completion_loop();
  Result<void> upgrade_format_1();
  Result<void> upgrade_format_2();
  Result<void> upgrade_format_3();
  // Reads the counters open needs (history, pending per destination): no scan, whatever the
  // backlog or history.
  Result<void> read_counters();
  // Writes what a transaction changed of the counters (sequence, destinations, history,
  // pending per destination) into it, before its commit.
  Result<void> write_counters(const TxnCtx& ctx, MDB_txn* txn);
  // One destination's window and pending counts (under index_mutex_).
  struct DestQueue {
    explicit DestQueue(std::size_t window, bool complete = false) : window(window, complete) {}
    DeliveryIndex window;
    std::uint64_t deliveries = 0;  // pending, as committed
    std::uint64_t bytes = 0;
  };
  DestQueue& dest_queue(const std::string& name);  // under index_mutex_
  // Loads the earliest scheduled deliveries `q` does not hold from LMDB (under index_mutex_).
  void refill(const std::string& name, DestQueue& q);

  Options options_;
  const Clock* clock_;
  Random* random_;
  int lock_fd_ = -1;
  lmdb::EnvPtr env_;
  mutable lmdb::ReaderPool readers_;  // before env_ is closed, its handles are aborted
  Dbis dbis_;
  record::PageRules page_rules_;

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
  bool room_warned_ = false;  // make_room() said once that the map fills before history's bounds
  // Room kept free in the map, so that purges and acks can always commit: a transaction that
  // only deletes still needs pages (copy-on-write), and an LMDB map filled to the last page
  // cannot even do that. Below it, history is purged before the next batch, and with no
  // history left, writes that need space are refused (kStoreFull / kUnavailable).
  std::uint64_t headroom_ = 0;
  bool room_low_ = false;  // map_room() < headroom_ after the last commit
  std::atomic<bool> latched_{false};
  // What the last commit left in `qlen` and the history counters (writer thread only).
  std::unordered_map<std::uint32_t, record::QueueCount> stored_queued_;
  // Written by the writer after each commit (and by open()); read by stats().
  std::atomic<std::uint64_t> history_messages_{0};
  std::atomic<std::uint64_t> history_bytes_{0};
  std::atomic<std::uint64_t> history_purged_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_ops_{0};

  // Completion state: batches the writer has finished with, completed in order.
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::deque<CompletedBatch> done_;  // Guarded by done_mutex_.
  bool done_stopping_ = false;       // Guarded by done_mutex_.
  std::thread completer_;

  mutable std::mutex dest_mutex_;
  std::unordered_map<std::string, std::uint32_t> dest_ids_;    // Guarded by dest_mutex_.
  std::unordered_map<std::uint32_t, std::string> dest_names_;  // Guarded by dest_mutex_.

  mutable std::mutex index_mutex_;
  std::map<std::string, DestQueue> queues_;  // Guarded by index_mutex_.
  std::uint64_t indexed_bytes_ = 0;          // pending payload bytes, all destinations. Guarded.
  std::uint64_t indexed_items_ = 0;          // pending deliveries, all destinations. Guarded.
  std::uint64_t reserved_bytes_ = 0;         // Guarded by index_mutex_.
  std::uint64_t reserved_items_ = 0;         // Guarded by index_mutex_.

  std::mutex listener_mutex_;
  // Shared so that notify() copies a pointer, not the function, for every completed write.
  std::shared_ptr<const ReadyListener> listener_;  // Guarded by listener_mutex_.
};

// --- write operations (ops.cpp) -------------------------------------------------------------

enum class SettleKind { kAck, kNack, kExpire, kDefer };

// Ends or reschedules one delivery: ack (delivered), nack (retry / dead / expired), expire.
std::unique_ptr<WriteOp> make_settle_op(Store::Impl& store, SettleKind kind, std::string dest,
                                        std::uint64_t seq, std::string reason, bool permanent,
                                        Store::DoneCallback done, std::int64_t until_ms = 0);

// --- the stored schedule (ops.cpp) ---------------------------------------------------------

// A new pending delivery: joins the end of its key's chain and, when it heads the chain (or is
// unordered), the schedule at `next_at_ms`. Returns whether it was scheduled.
Result<bool> schedule_new(const Store::Impl& store, MDB_txn* txn, std::uint32_t dest,
                          std::string_view key, std::uint64_t seq, std::int64_t next_at_ms);
// A scheduled delivery's next attempt moved from `from_ms` to `to_ms`.
Result<void> reschedule(const Store::Impl& store, MDB_txn* txn, std::uint32_t dest,
                        std::uint64_t seq, std::int64_t from_ms, std::int64_t to_ms);
// A scheduled delivery ended: it leaves the schedule and its chain, and the next of its key
// (if any) is scheduled and returned for the window.
Result<std::optional<DeliveryIndex::Item>> unschedule(const Store::Impl& store, MDB_txn* txn,
                                                      std::uint32_t dest, std::string_view key,
                                                      std::uint64_t seq, std::int64_t at_ms);

// The window's item for scheduled delivery `seq` (record `dl`), its doc type read from the
// message record (empty when that is missing).
DeliveryIndex::Item scheduled_item(const Store::Impl& store, MDB_txn* txn, std::uint64_t seq,
                                   record::Delivery dl);

// --- history (ops.cpp) ----------------------------------------------------------------------

struct EndedMessage {
  std::int64_t ended_ms = 0;  // when its last delivery ended
  std::uint64_t bytes = 0;    // map bytes its entries take once in history
};
// `m` (whose encoded record is `record_bytes` long) as history, if every delivery ended
// delivered or expired; nullopt while one is pending or dead (dead letters keep everything,
// payload included, for a redrive).
Result<std::optional<EndedMessage>> ended_message(const Store::Impl& store, MDB_txn* txn,
                                                  std::size_t record_bytes,
                                                  const record::Message& m);
// Moves an ended message into history: drops its payload and indexes it by when it ended.
// The caller counts it (TxnCtx::history_entered).
Result<void> enter_history(const Store::Impl& store, MDB_txn* txn, std::string_view id16,
                           const EndedMessage& ended);

// Which history to purge, oldest first: each message is purged while any reason holds.
struct PurgeGoal {
  std::int64_t ended_before_ms = std::numeric_limits<std::int64_t>::min();  // ended before (age)
  bool within_bounds = false;    // history exceeds retention_max_*
  std::uint64_t free_bytes = 0;  // less than this has been purged (room)
  std::size_t at_most = 10'000;
};
// Purges whole messages — record, deliveries, idempotency entry, payload if any, history
// entry — in ctx's transaction, and counts them in ctx. Returns how many.
Result<std::size_t> purge_history(Store::Impl& store, TxnCtx& ctx, const PurgeGoal& goal);

}  // namespace sluice::queue
