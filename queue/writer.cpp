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
  bool store_full = false;
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
    if (!errors[i]) {
      batch[i]->committed();
    }
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
