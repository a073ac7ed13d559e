// The single writer: callers submit operations, one thread takes what is waiting and applies
// it as one LMDB transaction (group commit), then hands the batch to the completion thread,
// which completes every operation with its own outcome or the commit's, in commit order,
// while the writer goes on with the next batch. A failed commit latches the store read-only.
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "queue/store_impl.h"

namespace sluice::queue {

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
  {
    std::lock_guard lock(done_mutex_);
    done_stopping_ = true;
  }
  done_cv_.notify_all();
  if (completer_.joinable()) {
    completer_.join();  // after the writer: every committed batch is completed first
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
    run_batch(std::move(batch));
    batch.clear();  // moved from: make it a valid, empty vector again
  }
}

void Store::Impl::run_batch(std::vector<std::unique_ptr<WriteOp>> batch) {
  std::vector<std::optional<Error>> errors(batch.size());
  if (room_low_ && history_messages_.load() > 0) {
    make_room(2 * headroom_);  // publish() says whether that was enough
  }
  // Short of headroom, only the operations that free space run (below, the others are queued
  // again once history made room, or refused saying why).
  bool store_full = room_low_;
  bool committed = false;
  // Until an operation fails, the batch runs optimistically with every operation writing
  // straight into the batch transaction: a child transaction per operation costs page copies
  // (about 5 us per append, as much as the rest of the append). The first failure throws that
  // transaction away and the batch runs again with each operation in its own child
  // transaction, so a failed operation leaves nothing behind and the others still commit.
  bool nested = false;
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
    TxnCtx ctx(*this, txn->get(), next_seq_, next_dest_, history());
    bool retry = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errors[i]) {
        continue;
      }
      if (store_full && !batch[i]->releases_space()) {
        errors[i] = Error(Errc::kStoreFull, "the store is full (map size reached)");
        continue;
      }
      if (!nested) {
        auto r = batch[i]->apply(ctx);
        if (!r) {
          store_full = store_full || r.error().is(Errc::kStoreFull);
          errors[i] = r.error();
          nested = true;
          retry = true;
          break;
        }
        continue;
      }
      MDB_txn* child = nullptr;
      if (int rc = mdb_txn_begin(env_.get(), txn->get(), 0, &child); rc != 0) {
        errors[i] = lmdb::error(rc, "begin an operation's nested transaction");
        retry = true;  // the batch transaction may be unusable: run the rest again
        break;
      }
      ctx.begin_op(child);
      auto r = batch[i]->apply(ctx);
      if (!r) {
        mdb_txn_abort(child);
        ctx.end_op(false);
        if (r.error().is(Errc::kStoreFull)) {
          store_full = true;  // later operations that need space are refused without trying
        }
        errors[i] = r.error();
        continue;
      }
      if (int rc = mdb_txn_commit(child); rc != 0) {
        ctx.end_op(false);
        errors[i] = lmdb::error(rc, "commit an operation's nested transaction");
        if (errors[i]->is(Errc::kStoreFull)) {
          store_full = true;
        }
        retry = true;
        break;
      }
      ctx.end_op(true);
    }
    if (retry) {
      continue;
    }
    if (history_over_bounds(ctx.history())) {
      // Each ended delivery adds at most one message; purging up to twice that many (and a
      // little more) also catches up after the bounds were lowered.
      trim_history(ctx, 2 * batch.size() + 64);
    }
    if (auto r = write_counters(ctx, txn->get()); !r) {
      for (auto& e : errors) {
        if (!e) e = r.error();
      }
      break;
    }
    if (auto r = commit(*txn); !r) {
      if (r.error().is(Errc::kStoreFull)) {
        // The commit itself needed pages (LMDB's free list) and wrote nothing: run the batch
        // again with only the operations that free space.
        store_full = true;
        nested = true;
        continue;
      }
      for (auto& e : errors) {
        if (!e) e = r.error();
      }
      break;
    }
    committed = true;
    publish(ctx);
    committed_ops_.fetch_add(batch.size());
  }
  if (!committed) {
    for (auto& e : errors) {
      if (!e) e = Error(Errc::kInternal, "batch could not be committed after retries");
    }
  }
  // Operations refused because the map is full are queued again, first, once the oldest
  // history made room for them: history must never be the reason input is refused. Those
  // that cannot be helped that way learn why (map_full_error). A write as big as half the map
  // is not worth the history it would cost.
  auto may_make_room = [&](std::size_t i) {
    return errors[i] && errors[i]->is(Errc::kStoreFull) &&
           2 * batch[i]->map_bytes() <= options_.map_size_bytes;
  };
  std::vector<std::unique_ptr<WriteOp>> again;
  std::uint64_t room = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (may_make_room(i)) {
      room += batch[i]->map_bytes();
    }
  }
  if (room > 0) {
    // Twice what they take, and at least 64 KiB, for the branch and leaf pages LMDB copies on
    // the way.
    bool made_room = history_messages_.load() > 0 && make_room(2 * room + (64u << 10)) > 0;
    std::vector<std::unique_ptr<WriteOp>> kept_ops;
    std::vector<std::optional<Error>> kept_errors;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errors[i] && errors[i]->is(Errc::kStoreFull)) {
        if (made_room && may_make_room(i) && batch[i]->retry_for_space()) {
          again.push_back(std::move(batch[i]));
          continue;
        }
        errors[i] = map_full_error();
      }
      kept_ops.push_back(std::move(batch[i]));
      kept_errors.push_back(std::move(errors[i]));
    }
    batch = std::move(kept_ops);
    errors = std::move(kept_errors);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!errors[i]) {
      batch[i]->committed();
    }
  }
  if (!again.empty()) {
    std::lock_guard lock(queue_mutex_);
    for (auto it = again.rbegin(); it != again.rend(); ++it) {
      pending_.push_front(std::move(*it));
    }
  }
  if (batch.empty()) {
    return;
  }
  bool wake = false;
  {
    std::lock_guard lock(done_mutex_);
    wake = done_.empty();
    done_.push_back(CompletedBatch{std::move(batch), std::move(errors)});
  }
  if (wake) {
    done_cv_.notify_one();
  }
}

Result<void> Store::Impl::commit(lmdb::Txn& txn) {
  int rc = options_.commit_fault ? options_.commit_fault() : 0;
  if (rc != 0) {
    txn.abort();
  } else {
    rc = txn.commit();
    if (rc == MDB_MAP_FULL) {
      return fail(lmdb::error(rc, "commit"));
    }
  }
  if (rc == 0) {
    commits_.fetch_add(1);
    return {};
  }
  latched_.store(true);
  std::string why = rc > 0 ? std::strerror(rc) : mdb_strerror(rc);
  spdlog::critical("store commit failed ({}); the store is read-only until restart", why);
  return fail(Errc::kStoreFailed,
              "commit failed: " + why + "; the store is read-only until restart");
}

void Store::Impl::publish(const TxnCtx& ctx) {
  next_seq_ = ctx.next_seq();
  next_dest_ = ctx.next_dest();
  {
    std::lock_guard lock(dest_mutex_);
    for (const auto& [name, id] : ctx.new_destinations()) {
      dest_ids_.emplace(name, id);
      dest_names_.emplace(id, name);
    }
  }
  history_messages_.store(ctx.history().messages);
  history_bytes_.store(ctx.history().bytes);
  history_purged_.store(ctx.history().purged);
  if (!ctx.queued().empty()) {
    std::lock_guard lock(index_mutex_);
    for (const auto& [id, delta] : ctx.queued()) {
      auto& stored = stored_queued_[id];
      stored.deliveries += static_cast<std::uint64_t>(delta.first);
      stored.bytes += static_cast<std::uint64_t>(delta.second);
      indexed_items_ += static_cast<std::uint64_t>(delta.first);
      indexed_bytes_ += static_cast<std::uint64_t>(delta.second);
      DestQueue& q = dest_queue(dest_name(id));
      q.deliveries = stored.deliveries;
      q.bytes = stored.bytes;
    }
  }
  room_low_ = map_room() < headroom_;
}

Result<void> Store::Impl::write_counters(const TxnCtx& ctx, MDB_txn* txn) {
  // Each counter is written only when the transaction changed it: a batch of acks of
  // unordered deliveries writes the pending counts of one destination and nothing else.
  if (ctx.next_seq() != next_seq_) {
    std::string v;
    record::put_u64be(v, ctx.next_seq());
    if (auto r = lmdb::put(txn, dbis_.meta, "next_seq", v); !r) {
      return r;
    }
  }
  if (ctx.next_dest() != next_dest_) {
    std::string v;
    record::put_u32be(v, ctx.next_dest());
    if (auto r = lmdb::put(txn, dbis_.meta, "next_dest", v); !r) {
      return r;
    }
  }
  const HistoryCounts& h = ctx.history();
  if (h.messages != history_messages_.load() || h.bytes != history_bytes_.load()) {
    if (auto r = lmdb::put(txn, dbis_.meta, "history",
                           record::queue_count_value({.deliveries = h.messages, .bytes = h.bytes}));
        !r) {
      return r;
    }
  }
  for (const auto& [id, delta] : ctx.queued()) {
    if (delta.first == 0 && delta.second == 0) {
      continue;
    }
    record::QueueCount c;
    if (auto it = stored_queued_.find(id); it != stored_queued_.end()) {
      c = it->second;
    }
    c.deliveries += static_cast<std::uint64_t>(delta.first);
    c.bytes += static_cast<std::uint64_t>(delta.second);
    std::string key;
    record::put_u32be(key, id);
    if (auto r = lmdb::put(txn, dbis_.qlen, key, record::queue_count_value(c)); !r) {
      return r;
    }
  }
  return {};
}

std::uint64_t Store::Impl::map_room() const {
  MDB_envinfo info;
  if (mdb_env_info(env_.get(), &info) != 0) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  const std::uint64_t page = page_rules_.page_bytes;
  const std::uint64_t pages = info.me_mapsize / page;
  const std::uint64_t used = static_cast<std::uint64_t>(info.me_last_pgno) + 1;
  std::uint64_t room = (pages > used ? pages - used : 0) * page;
  if (room >= headroom_) {
    return room;  // the common case: no need to read the free list
  }
  // LMDB's free list (database 0): per transaction that freed pages, their numbers, the count
  // first. The next write transaction may take those freed before the last commit.
  auto txn = read_txn();
  if (!txn) {
    return room;
  }
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(txn->get(), 0, &cur) != 0) {
    return room;
  }
  const std::size_t last = mdb_txn_id(txn->get());
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    std::size_t freed_by = 0, count = 0;
    if (k.mv_size != sizeof freed_by || v.mv_size < sizeof count) {
      continue;
    }
    std::memcpy(&freed_by, k.mv_data, sizeof freed_by);
    std::memcpy(&count, v.mv_data, sizeof count);
    if (freed_by < last) {
      room += count * page;
    }
  }
  mdb_cursor_close(cur);
  return room;
}

void Store::Impl::trim_history(TxnCtx& ctx, std::size_t max) {
  MDB_txn* child = nullptr;
  if (mdb_txn_begin(env_.get(), ctx.txn(), 0, &child) != 0) {
    return;  // the next batch tries again
  }
  ctx.begin_op(child);
  auto purged = purge_history(*this, ctx, PurgeGoal{.within_bounds = true, .at_most = max});
  if (!purged || mdb_txn_commit(child) != 0) {
    if (!purged) {
      mdb_txn_abort(child);
    }
    ctx.end_op(false);
    return;
  }
  ctx.end_op(true);
}

std::size_t Store::Impl::make_room(std::uint64_t bytes) {
  // LMDB hands out the pages a commit freed only from the second transaction after it, so a
  // second, small purge follows: the refused writes can then use the first one's pages at
  // once.
  std::size_t purged = purge_for_room(bytes);
  if (purged == 0) {
    return 0;
  }
  purged += purge_for_room(1);
  if (!room_warned_) {
    room_warned_ = true;  // once per open; stats().history_purged counts the rest
    spdlog::warn(
        "the store's map filled before history reached its bounds ({} MiB, {} messages): the "
        "oldest delivered messages are purged to make room ({} now, {} left); raise "
        "store.map_size_mb or lower store.retention_max_mb to keep them for retention_hours",
        options_.retention_max_bytes >> 20, options_.retention_max_messages, purged,
        history_messages_.load());
  } else {
    spdlog::debug("the store's map is full: purged the {} oldest delivered messages", purged);
  }
  return purged;
}

std::size_t Store::Impl::purge_for_room(std::uint64_t bytes) {
  // Deleting needs pages too (copy-on-write): when the map is too full for a big purge, try
  // a smaller one.
  for (std::size_t at_most = 4096; at_most > 0 && !latched_.load(); at_most /= 4) {
    auto txn = lmdb::Txn::begin(env_.get(), 0);
    if (!txn) {
      return 0;
    }
    TxnCtx ctx(*this, txn->get(), next_seq_, next_dest_, history());
    auto purged = purge_history(*this, ctx, PurgeGoal{.free_bytes = bytes, .at_most = at_most});
    if (purged && *purged == 0) {
      return 0;
    }
    if (purged) {
      if (auto w = write_counters(ctx, txn->get()); !w) {
        if (!w.error().is(Errc::kStoreFull)) {
          spdlog::error("purging history to make room failed: {}", w.error().describe());
          return 0;
        }
        continue;  // a smaller purge may fit
      }
      auto r = commit(*txn);
      if (r) {
        publish(ctx);
        return *purged;
      }
      if (!r.error().is(Errc::kStoreFull)) {
        return 0;  // latched
      }
    } else if (!purged.error().is(Errc::kStoreFull)) {
      spdlog::error("purging history to make room failed: {}", purged.error().describe());
      return 0;
    }
  }
  return 0;
}

Error Store::Impl::map_full_error() const {
  std::uint64_t pending = 0, pending_bytes = 0;
  {
    std::lock_guard lock(index_mutex_);
    pending = indexed_items_;
    pending_bytes = indexed_bytes_;
  }
  std::string map =
      "the store's map (store.map_size_mb = " + std::to_string(options_.map_size_bytes >> 20) +
      ") is full";
  std::string history = history_messages_.load() == 0
                            ? "no delivered history is left to purge"
                            : "purging delivered history did not free enough room";
  if (pending > 0) {
    return Error(Errc::kStoreFull, map + " of undelivered messages (" + std::to_string(pending) +
                                       " deliveries, " + std::to_string(pending_bytes) +
                                       " payload bytes) and " + history +
                                       "; it frees as destinations take deliveries");
  }
  return Error(Errc::kUnavailable,
               map + " though no delivery is pending and " + history +
                   ": extension tables (quarantine, audit) or dead letters fill it; waiting will "
                   "not help: raise store.map_size_mb, or discard quarantine entries and dead "
                   "letters");
}

void Store::Impl::completion_loop() {
  std::deque<CompletedBatch> ready;
  for (;;) {
    {
      std::unique_lock lock(done_mutex_);
      done_cv_.wait(lock, [&] { return done_stopping_ || !done_.empty(); });
      if (done_.empty()) {
        return;  // stopping, and the writer has finished
      }
      ready.swap(done_);
    }
    for (auto& b : ready) {
      for (std::size_t i = 0; i < b.ops.size(); ++i) {
        if (b.errors[i]) {
          b.ops[i]->finish(fail(std::move(*b.errors[i])));
        } else {
          b.ops[i]->finish({});
        }
      }
    }
    ready.clear();  // the operations (and their payloads) are freed here, off the writer
  }
}

void Store::close() { impl_->close(); }

}  // namespace sluice::queue
