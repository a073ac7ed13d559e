#include "queue/lmdb.h"

namespace sluice::queue::lmdb {

Error error(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) {
    return Error(Errc::kStoreFull, msg + " (raise store.map_size_mb)");
  }
  if (rc == MDB_KEYEXIST) {
    return Error(Errc::kAlreadyExists, msg);
  }
  return Error(Errc::kIo, msg);
}

Result<Txn> Txn::begin(MDB_env* env, unsigned flags) {
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(env, nullptr, flags, &txn); rc != 0) {
    return fail(error(rc, "mdb_txn_begin"));
  }
  return Txn(txn);
}

Result<MDB_txn*> ReaderPool::acquire(MDB_env* env) {
  MDB_txn* txn = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      txn = free_.back();
      free_.pop_back();
    }
  }
  if (txn != nullptr) {
    if (int rc = mdb_txn_renew(txn); rc != 0) {
      mdb_txn_abort(txn);
      return fail(error(rc, "mdb_txn_renew"));
    }
    return txn;
  }
  if (int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn); rc != 0) {
    return fail(error(rc, "mdb_txn_begin (read)"));
  }
  return txn;
}

void ReaderPool::release(MDB_txn* txn) {
  mdb_txn_reset(txn);
  std::lock_guard lock(mutex_);
  if (free_.size() < 64) {
    free_.push_back(txn);
    return;
  }
  mdb_txn_abort(txn);
}

void ReaderPool::clear() {
  std::lock_guard lock(mutex_);
  for (MDB_txn* t : free_) {
    mdb_txn_abort(t);
  }
  free_.clear();
}

Result<Cursor> Cursor::open(MDB_txn* txn, MDB_dbi dbi) {
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn, dbi, &cur); rc != 0) {
    return fail(error(rc, "mdb_cursor_open"));
  }
  return Cursor(cur);
}

Result<std::optional<std::string_view>> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  MDB_val v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) {
    return std::optional<std::string_view>();
  }
  if (rc != 0) {
    return fail(error(rc, "mdb_get"));
  }
  return std::optional<std::string_view>(view(v));
}

Result<void> put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
                 unsigned flags) {
  MDB_val k = val(key);
  MDB_val v = val(value);
  if (int rc = mdb_put(txn, dbi, &k, &v, flags); rc != 0) {
    return fail(error(rc, "mdb_put"));
  }
  return {};
}

Result<bool> del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) {
    return false;
  }
  if (rc != 0) {
    return fail(error(rc, "mdb_del"));
  }
  return true;
}

}  // namespace sluice::queue::lmdb
