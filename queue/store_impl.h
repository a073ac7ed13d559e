// Internal to queue/: the Store's implementation shared by its translation units (writer,
// ops, recovery, lease, queries). Nothing outside queue/ may include this header: it exposes
// LMDB, which stays a private dependency of sluice_queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
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

inline constexpr std::string_view kFormatVersion = "1";
inline constexpr std::size_t kMaxIdempotencyKey = 480;  // LMDB keys are limited to 511 bytes
inline constexpr std::size_t kMaxDestinations = 64;
inline constexpr std::size_t kMaxBatchRetries = 4;

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
  MDB_dbi meta = 0, msg = 0, body = 0, idem = 0, dlv = 0, dest = 0;
  std::unordered_map<std::string, MDB_dbi> tables;
};

class TxnCtx final : public TableWriter {
 public:
  TxnCtx(Store::Impl& store, MDB_txn* txn, std::uint64_t next_seq, std::uint32_t next_dest)
      : store_(store), batch_txn_(txn), txn_(txn), next_seq_(next_seq), next_dest_(next_dest) {}

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
    op_dests_.clear();
  }
  void end_op(bool kept) {
    txn_ = batch_txn_;
    if (!kept) {
      next_seq_ = op_seq_;
      next_dest_ = op_dest_;
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
  // Restored by end_op(false).
  std::uint64_t op_seq_ = 0;
  std::uint32_t op_dest_ = 0;
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
  virtual bool releases_space() const { return false; }
  virtual Result<void> apply(TxnCtx& ctx) = 0;
  virtual void committed() {}
  virtual void finish(Result<void> outcome) = 0;
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

  std::string* purge_cursor() { return &purge_cursor_; }

  // --- index access (all under index_mutex_) ---
  void index_added(const std::string& dest, DeliveryIndex::Item item);
  // An append completed: its reservation (bytes, deliveries) ends and `items` (none for a
  // duplicate or a failure) enter the index, under one lock.
  void append_completed(std::vector<std::pair<std::string, DeliveryIndex::Item>> items,
                        std::uint64_t reserved_bytes, std::uint64_t reserved_deliveries);
  void index_finished(const std::string& dest, std::uint64_t seq);
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
  void completion_loop();
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
  std::map<std::string, DeliveryIndex> indexes_;  // Guarded by index_mutex_.
  std::uint64_t indexed_bytes_ = 0;               // Guarded by index_mutex_.
  std::uint64_t indexed_items_ = 0;               // Guarded by index_mutex_.
  std::uint64_t reserved_bytes_ = 0;              // Guarded by index_mutex_.
  std::uint64_t reserved_items_ = 0;              // Guarded by index_mutex_.

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

}  // namespace sluice::queue
