// The durable store of a Sluice half: messages, one delivery queue per destination, the
// idempotency index, and extension tables (quarantine, audit, receipts) in one LMDB
// environment. Knows nothing of HTTP or XML.
//
// Durability contract: an append's callback reports success only after the LMDB transaction
// holding the message has been committed and synced. One writer thread commits everything
// that is waiting as one transaction (group commit). If a commit or sync fails, the store
// latches read-only: every later write fails with Errc::kStoreFailed until the process
// restarts and recovery runs.
//
// Delivery contract: lease() hands out messages that are due, one case (ordering key) at a
// time per destination — a later message of the same key is not leased until the earlier
// one is acked, dead or expired. ack() marks a delivery done; nack() schedules the next
// attempt with exponential backoff and jitter, or ends it as dead (attempts exhausted or a
// permanent failure) or expired (past the message's expiry). Leases are not persisted: after
// a crash every unacknowledged delivery is available again (at-least-once; receivers
// deduplicate by MessageId).
//
// Thread safety: every method may be called from any thread. Callbacks run on the store's
// completion thread, one at a time and in commit order (so the writer goes on with the next
// batch meanwhile), and must not block; they may call lease()/status() but must not wait for
// another write to complete.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "common/random.h"

namespace sluice::queue {

struct RetryPolicy {
  std::uint32_t max_attempts = 10;  // attempts before a delivery is dead (>= 1)
  std::int64_t initial_backoff_ms = 1000;
  std::int64_t max_backoff_ms = 300'000;
  double multiplier = 2.0;  // >= 1
  double jitter = 0.2;      // [0, 1]: the delay is reduced by up to this fraction
};

// Delay before the attempt that follows `failed_attempts` failures (>= 1), given a uniform
// random `unit` in [0, 1): min(max, initial * multiplier^(failed-1)) * (1 - jitter * unit).
std::int64_t backoff_delay_ms(const RetryPolicy& policy, std::uint32_t failed_attempts,
                              double unit);

// Optional fault injection for tests: called before each commit; a non-zero return is
// treated as the errno of a failed sync.
using CommitFault = std::function<int()>;

struct Options {
  std::filesystem::path path;                 // directory; created if missing
  std::uint64_t map_size_bytes = 1ull << 30;  // LMDB map size: the hard bound on disk use
  std::uint64_t max_queued_bytes = 256ull
                                   << 20;  // undelivered payload bytes, per destination summed
  std::uint64_t max_queued_messages = 1'000'000;  // undelivered deliveries
  std::size_t group_commit_max_count = 1024;      // operations per transaction
  std::size_t group_commit_max_bytes = 16u << 20;
  std::chrono::microseconds group_commit_linger{0};  // extra wait to fill a small batch
  std::int64_t lease_timeout_ms = 120'000;  // a lease not acked by then is handed out again
  // The schedule (what is due, in per-case order) lives in LMDB; per destination, memory holds
  // at most this many of the earliest scheduled deliveries (plus the leased ones) and is
  // refilled from the store, so memory does not grow with the backlog and open does not read it.
  std::size_t schedule_window = 4096;
  // History: what is kept of a message once every delivery ended delivered or expired (none
  // dead) — its record (status, attributes such as the receipt and digest), its delivery
  // records and its idempotency entry; its payload is dropped then. History is purged oldest
  // first (by when its last delivery ended) once older than retention_ms, or sooner to stay
  // within retention_max_bytes and retention_max_messages, or when the map is full and a write
  // needs room. Pending messages and messages with a dead delivery are never purged. So a
  // resend of a (sender, sender_message_id) is a duplicate while its message is pending, dead
  // or in history; once purged, it is a new message.
  std::int64_t retention_ms = 7LL * 24 * 3600 * 1000;
  std::uint64_t retention_max_bytes = 256ull << 20;  // map bytes history may take (>= 1)
  std::uint64_t retention_max_messages = 1'000'000;  // delivered messages kept (>= 1)
  RetryPolicy retry;
  std::vector<std::string> extension_tables;  // extra named tables (quarantine, audit, ...)
  const Clock* clock = nullptr;               // nullptr: the system clock
  Random* random = nullptr;                   // nullptr: SecureRandom
  CommitFault commit_fault;                   // tests only
};

struct NewMessage {
  std::string message_id;         // canonical UUID, assigned by the caller
  std::string sender;             // authenticated sender identity, e.g. "440604/approval"
  std::string sender_message_id;  // (sender, sender_message_id) is the idempotency key
  std::string doc_type;
  std::string ordering_key;               // e.g. "440604/SBLSH-0001"; empty: no ordering constraint
  std::int64_t expires_ms = 0;            // 0: never expires
  std::vector<std::string> destinations;  // at least one; each gets its own queue entry
  std::string payload;
  std::map<std::string, std::string> attributes;  // small metadata kept with the message
};

struct Appended {
  std::string message_id;  // the stored id: the original one for a duplicate
  bool duplicate = false;  // true: nothing new was stored
};

// kDiscarded: a dead delivery an operator ended without delivering it (Store::discard).
enum class DeliveryState : std::uint8_t {
  kPending = 0,
  kDelivered = 1,
  kDead = 2,
  kExpired = 3,
  kDiscarded = 4
};
std::string_view to_string(DeliveryState s);

struct DeliveryStatus {
  std::string destination;
  std::uint64_t seq = 0;
  DeliveryState state = DeliveryState::kPending;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::int64_t last_attempt_ms = 0;
  std::int64_t done_ms = 0;
  std::string last_error;
};

// A message's state, derived from its deliveries.
enum class MessageState : std::uint8_t {
  kQueued,      // some delivery pending, none attempted yet
  kDelivering,  // some delivery pending, at least one attempt made
  kDelivered,   // every delivery ended delivered
  kDead,        // every delivery ended dead
  kExpired,     // every delivery ended expired
  kPartial,     // every delivery ended, not all the same way
  kDiscarded,   // every delivery ended discarded (dead, then given up by an operator)
};
// "queued", "delivering", "delivered", "dead", "expired", "partial", "discarded".
std::optional<MessageState> parse_message_state(std::string_view name);
std::string_view to_string(MessageState s);

struct MessageStatus {
  std::string message_id;
  std::string sender;
  std::string sender_message_id;
  std::string doc_type;
  std::string ordering_key;
  std::int64_t received_ms = 0;
  std::int64_t expires_ms = 0;
  std::uint32_t payload_bytes = 0;
  MessageState state_kind = MessageState::kQueued;
  std::string state;  // to_string(state_kind), kept for existing callers
  std::map<std::string, std::string> attributes;
  std::vector<DeliveryStatus> deliveries;
};

// What Store::find looks for; every field set must match.
struct MessageFilter {
  std::string destination;  // has a delivery to it
  std::string doc_type;     // exact, or a prefix pattern: "case.*"
  std::string sender;       // exact, or a prefix pattern: "440604/*"
  std::string case_id;      // the CaseId, or "Region/CaseId" (the ordering key)
  std::optional<MessageState> state;
  // With state kDead and a destination: only the deliveries to it that are dead count.
  std::int64_t from_ms = 0;  // accepted at or after (0: no bound)
  std::int64_t to_ms = 0;    // accepted before (0: no bound)
};

struct MessagePage {
  std::vector<MessageStatus> messages;
  std::string next;           // cursor of the next page; empty when nothing more matches
  std::uint64_t scanned = 0;  // records looked at
};

struct Lease {
  std::string destination;
  std::uint64_t seq = 0;
  std::string message_id;
  std::uint32_t attempt = 1;  // 1 for the first attempt
  std::string doc_type;
  std::string ordering_key;
  std::int64_t expires_ms = 0;
  std::string payload;
};

struct DestinationStats {
  std::string destination;
  std::uint64_t pending = 0;  // not yet delivered, dead or expired
  std::uint64_t leased = 0;   // handed out now
  std::uint64_t due = 0;      // ready to lease now (or overdue), of those in memory (the window)
  std::uint64_t bytes = 0;
};

struct Stats {
  std::uint64_t queued_bytes = 0;
  std::uint64_t queued_messages = 0;
  std::uint64_t history_messages = 0;      // delivered/expired messages kept (see Options)
  std::uint64_t history_bytes = 0;         // map bytes they take, by LMDB's page rules
  std::uint64_t history_purged = 0;        // purged since open (age, bounds or a full map)
  std::uint64_t map_bytes = 0;             // the map size
  std::uint64_t map_high_water_bytes = 0;  // pages ever used (freed pages are reused first)
  std::uint64_t commits = 0;               // transactions committed since open
  std::uint64_t committed_ops = 0;         // operations in them
  bool read_only = false;                  // latched after a failed commit
  std::vector<DestinationStats> destinations;
};

// What a configuration can hold, estimated with LMDB's page rules for messages of one shape
// (tests/queue/footprint_test.cpp measures the real footprint; the two agree within 2%). A
// value too big for half a page takes whole overflow pages, so a 2 KB payload or a message
// record carrying a 2.3 KB signed receipt each take a 4 KiB page. The store logs this line at
// open; sluiced --check-config may print it too.
struct MessageShape {
  std::uint32_t payload_bytes = 2048;
  // The message record: ids, sender, doc type and attributes. 2530 bytes for the documents of
  // deploy/demo.sh, most of it the signed receipt (2.25 KB).
  std::uint32_t record_bytes = 2530;
  std::uint32_t key_bytes = 40;  // sender + SenderMessageId
};

struct Capacity {
  std::uint64_t map_bytes = 0;
  std::uint64_t pending_message_bytes = 0;    // map bytes of one pending message (1 destination)
  std::uint64_t delivered_message_bytes = 0;  // map bytes of one message in history
  std::uint64_t queue_bytes = 0;              // max_queued_bytes (payload, summed per destination)
  std::uint64_t queue_messages = 0;           // messages of this shape the queue bounds admit
  std::uint64_t queue_map_bytes = 0;          // map bytes they take
  std::uint64_t history_bytes = 0;            // retention_max_bytes
  std::uint64_t history_messages = 0;         // delivered messages the history bounds keep
  std::int64_t retention_ms = 0;
  double full_retention_rate = 0;  // messages/s at which history still spans retention_ms
  MessageShape shape;
};
Capacity estimate_capacity(const Options& options, const MessageShape& shape = {});
// One line for the log: "map 2048 MiB: queue bound 512 MiB (~262144 pending messages of 2.0
// KiB, 8448 B each in the map: 2112 MiB), history bound 512 MiB (~123248 delivered messages of
// 4356 B: 1.4 days at 1 msg/s; retention_hours 168 is kept up to 0.20 msg/s)", and what
// happens when the bounds together can need more than the map.
std::string describe(const Capacity& capacity);

// A read-write view of extension tables inside a write transaction. Valid only during
// WriteFn; values returned by get() are valid until the next put/del in the same call.
class TableWriter {
 public:
  virtual ~TableWriter() = default;
  virtual Result<std::optional<std::string_view>> get(std::string_view table,
                                                      std::string_view key) = 0;
  virtual Result<void> put(std::string_view table, std::string_view key,
                           std::string_view value) = 0;
  virtual Result<bool> del(std::string_view table, std::string_view key) = 0;
  // Last key of the table (for append-only logs), or nullopt when empty.
  virtual Result<std::optional<std::pair<std::string, std::string>>> last(
      std::string_view table) = 0;
};

// Runs inside a write transaction. Must only touch the store through the writer, be
// deterministic, and may run more than once if the batch is retried.
using WriteFn = std::function<Result<void>(TableWriter&)>;
// Visits rows in key order from `from`; return false to stop.
using RowVisitor = std::function<bool(std::string_view key, std::string_view value)>;

class Store {
 public:
  using AppendCallback = std::move_only_function<void(Result<Appended>)>;
  using DoneCallback = std::move_only_function<void(Result<void>)>;
  using ReadyListener = std::function<void(const std::string& destination)>;

  // Opens (creating if needed) the store at options.path, takes an exclusive lock on it,
  // rebuilds the delivery index and starts the writer. Fails if another process holds it.
  static Result<std::unique_ptr<Store>> open(Options options);

  ~Store();  // close()
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stops taking writes, commits what is waiting, joins the writer. Idempotent.
  void close();

  // --- ingest ---
  // Persists `msg` durably and calls `done` once: Appended on success (duplicate=true and
  // the original id, storing nothing, when (sender, sender_message_id) was seen before or
  // msg.message_id is already stored, e.g. a peer gateway resending), or
  //   kQueueFull   a queue bound is reached: it clears as destinations take deliveries;
  //   kStoreFull   the map is full of undelivered messages (history already purged to make
  //                room): it clears as destinations take deliveries;
  //   kUnavailable the map is full though nothing is pending and no history is left
  //                (extension tables, dead letters): waiting does not help, an operator must;
  //   kStoreFailed (latched), kShuttingDown, kInvalidArgument.
  // History never causes a refusal: when the map is full, the oldest delivered messages are
  // purged and the append is tried again.
  void append_async(NewMessage msg, AppendCallback done);
  // Blocking convenience around append_async.
  Result<Appended> append(NewMessage msg);
  // Read-only lookup of the idempotency index (a fast pre-check; append stays authoritative).
  std::optional<std::string> find_duplicate(std::string_view sender,
                                            std::string_view sender_message_id) const;

  // --- delivery ---
  // Up to `max` due deliveries for `destination`, now leased to the caller.
  // Nothing while the store is read-only (latched): see read_only().
  std::vector<Lease> lease(const std::string& destination, std::size_t max);
  // Latched after a failed commit: nothing more can be written (appends, acks, nacks) until
  // the process restarts; delivery stops rather than hand out what it cannot settle.
  bool read_only() const;
  // The delivery succeeded; `done` (optional) runs after it is durable.
  void ack(const Lease& lease, DoneCallback done = nullptr);
  // The delivery failed. permanent=true ends it as dead at once.
  void nack(const Lease& lease, std::string reason, bool permanent, DoneCallback done = nullptr);
  // The destination failed as a whole (it is backing off), not this delivery: it is due again
  // at `until_ms` without spending one of its attempts; `reason` is kept as its last error.
  void defer(const Lease& lease, std::string reason, std::int64_t until_ms,
             DoneCallback done = nullptr);
  // Earliest time at which `destination` has a lease to hand out (due now: <= now), or
  // nullopt when nothing is waiting.
  std::optional<std::int64_t> next_due_ms(const std::string& destination) const;
  // Called (on the completion thread) whenever a destination may have new due work.
  void set_ready_listener(ReadyListener listener);

  // --- operators ---
  Result<MessageStatus> status(std::string_view message_id) const;
  // The stored document; kNotFound for an unknown message and for one in history (its payload
  // is dropped once every delivery ended delivered or expired).
  Result<std::string> payload(std::string_view message_id) const;
  // Dead deliveries of a destination (all destinations when empty), oldest first.
  Result<std::vector<MessageStatus>> dead_letters(const std::string& destination,
                                                  std::size_t limit) const;
  // Queues a dead delivery again with a fresh attempt count (at the end of its queue).
  Result<void> redrive(std::string_view message_id, const std::string& destination);
  // Ends a dead delivery without delivering it (kDiscarded, `reason` as its last error).
  Result<void> discard(std::string_view message_id, const std::string& destination,
                       const std::string& reason);
  // The same, with `done` called after the commit: many of them share group commits.
  void redrive_async(std::string_view message_id, const std::string& destination,
                     DoneCallback done);
  void discard_async(std::string_view message_id, const std::string& destination,
                     const std::string& reason, DoneCallback done);
  // Messages matching `filter`, oldest first, at most `limit` of them, continuing after
  // `cursor` (the previous page's `next`). Dead letters are read from their index (by
  // destination, in the order they went dead), everything else in MessageId order, which is
  // the order of acceptance (UUIDv7), so a time range reads only its own messages; the other
  // filters are checked on the way, and a page ends early (with a cursor) after `max_scan`
  // records looked at.
  Result<MessagePage> find(const MessageFilter& filter, std::string_view cursor, std::size_t limit,
                           std::size_t max_scan = 100'000) const;
  // Purges history, oldest first: what ended before now - retention, and what exceeds the
  // history bounds (bounded per call). Returns how many messages it purged.
  Result<std::size_t> purge_expired_history(std::size_t max_messages = 10'000);
  Stats stats() const;
  // The retry policy the store was opened with (a delivery's last attempt is max_attempts).
  const RetryPolicy& retry_policy() const;
  // Online, compacting copy of the environment into the empty directory `dir`.
  Result<void> backup(const std::filesystem::path& dir) const;

  // --- extension tables ---
  // Runs `fn` in the next group commit; `done` after it is durable (or failed).
  void write_async(WriteFn fn, std::size_t bytes, DoneCallback done);
  Result<void> write(WriteFn fn, std::size_t bytes);
  Result<std::optional<std::string>> get(std::string_view table, std::string_view key) const;
  Result<void> scan(std::string_view table, std::string_view from, const RowVisitor& visit) const;
  // Same as scan but from the last key backwards.
  Result<void> scan_reverse(std::string_view table, const RowVisitor& visit) const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::queue
