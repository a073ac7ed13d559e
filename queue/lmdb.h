// Internal: owned LMDB handles and checked calls. Every MDB_* return code is turned into a
// sluice::Error that names the operation.
#pragma once

#include <lmdb.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::queue::lmdb {

struct EnvCloser {
  void operator()(MDB_env* env) const { mdb_env_close(env); }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvCloser>;

// Maps an LMDB return code to an Error ("<what>: <mdb_strerror>"); MDB_MAP_FULL becomes
// kStoreFull, MDB_KEYEXIST kAlreadyExists, everything else kIo.
Error error(int rc, std::string_view what);

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// A transaction that aborts unless committed.
class Txn {
 public:
  Txn() = default;
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  ~Txn() { abort(); }
  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
  Txn& operator=(Txn&& other) noexcept {
    abort();
    txn_ = std::exchange(other.txn_, nullptr);
    return *this;
  }
  static Result<Txn> begin(MDB_env* env, unsigned flags);
  MDB_txn* get() const { return txn_; }
  void abort() {
    if (txn_ != nullptr) {
      mdb_txn_abort(txn_);
      txn_ = nullptr;
    }
  }
  // Commits; the handle is released whatever the outcome. Returns the MDB code.
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

 private:
  MDB_txn* txn_ = nullptr;
};

// Reset read-only transactions kept for reuse: renewing one is much cheaper than beginning
// one (no reader-slot search). Thread-safe. Every handle is aborted by clear(), which must
// run before the environment closes, after all readers finished.
class ReaderPool {
 public:
  ~ReaderPool() { clear(); }
  Result<MDB_txn*> acquire(MDB_env* env);
  void release(MDB_txn* txn);
  void clear();

 private:
  std::mutex mutex_;
  std::vector<MDB_txn*> free_;  // Guarded by mutex_.
};

// A read transaction borrowed from a ReaderPool, returned (reset) when it goes out of scope.
class ReadTxn {
 public:
  ReadTxn(ReaderPool& pool, MDB_txn* txn) : pool_(&pool), txn_(txn) {}
  ReadTxn(ReadTxn&& o) noexcept : pool_(o.pool_), txn_(std::exchange(o.txn_, nullptr)) {}
  ~ReadTxn() {
    if (txn_ != nullptr) pool_->release(txn_);
  }
  MDB_txn* get() const { return txn_; }

 private:
  ReaderPool* pool_;
  MDB_txn* txn_;
};

class Cursor {
 public:
  static Result<Cursor> open(MDB_txn* txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept : cur_(std::exchange(other.cur_, nullptr)) {}
  ~Cursor() {
    if (cur_ != nullptr) {
      mdb_cursor_close(cur_);
    }
  }
  MDB_cursor* get() const { return cur_; }

 private:
  explicit Cursor(MDB_cursor* cur) : cur_(cur) {}
  MDB_cursor* cur_ = nullptr;
};

Result<std::optional<std::string_view>> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key);
Result<void> put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
                 unsigned flags = 0);
Result<bool> del(MDB_txn* txn, MDB_dbi dbi, std::string_view key);

}  // namespace sluice::queue::lmdb
