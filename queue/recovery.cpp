// Opening a store: the exclusive lock, the LMDB environment and its tables, the format
// check, and the rebuild of the in-memory delivery index from the stored deliveries.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "queue/store_impl.h"

namespace sluice::queue {

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
  MDB_stat env_stat;
  if (int rc = mdb_env_stat(env_.get(), &env_stat); rc != 0) {
    return fail(lmdb::error(rc, "mdb_env_stat"));
  }
  page_rules_.page_bytes = env_stat.ms_psize;
  headroom_ = std::min<std::uint64_t>(
      options_.map_size_bytes / 16,
      std::max<std::uint64_t>(1u << 20, 2 * options_.group_commit_max_bytes));

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
                           std::pair{"dlv", &dbis_.dlv}, std::pair{"dest", &dbis_.dest},
                           std::pair{"hist", &dbis_.hist}, std::pair{"sched", &dbis_.sched},
                           std::pair{"ktail", &dbis_.ktail}, std::pair{"next", &dbis_.next},
                           std::pair{"qlen", &dbis_.qlen}, std::pair{"dead", &dbis_.dead}}) {
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
  bool upgrade_1 = false, upgrade_2 = false, upgrade_3 = false;
  if (!format->has_value()) {
    if (auto r = lmdb::put(txn->get(), dbis_.meta, "format", kFormatVersion); !r) {
      return r;
    }
  } else if (**format == kFormatVersionWithoutHistory) {
    upgrade_1 = upgrade_2 = upgrade_3 = true;
  } else if (**format == kFormatVersionWithoutSchedule) {
    upgrade_2 = upgrade_3 = true;
  } else if (**format == kFormatVersionWithoutDeadIndex) {
    upgrade_3 = true;
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
  if (upgrade_1) {
    if (auto r = upgrade_format_1(); !r) {
      return r;
    }
  }
  if (upgrade_2) {
    if (auto r = upgrade_format_2(); !r) {
      return r;
    }
  }
  if (upgrade_3) {
    if (auto r = upgrade_format_3(); !r) {
      return r;
    }
  }
  if (auto r = read_counters(); !r) {
    return r;
  }
  room_low_ = map_room() < headroom_;
  completer_ = std::thread([this] { completion_loop(); });
  writer_ = std::thread([this] { writer_loop(); });
  HistoryCounts h = history();
  spdlog::info(
      "store {} opened: {} pending deliveries, {} bytes queued, {} delivered messages in history "
      "({} MiB){}",
      options_.path.string(), indexed_items_, indexed_bytes_, h.messages, h.bytes >> 20,
      dead_readers > 0 ? ", cleared stale readers" : "");
  spdlog::info("store capacity: {}", describe(estimate_capacity(options_)));
  return {};
}

// Format 1 kept delivered messages whole and found them by scanning `msg`. Format 2 adds the
// history index and drops the payloads of messages whose deliveries all ended. The upgrade
// runs in transactions of a bounded size, resumes after a crash (it is idempotent) and marks
// the store format 2 in the last one.
Result<void> Store::Impl::upgrade_format_1() {
  constexpr std::size_t kPerTransaction = 2048;
  std::string from;
  std::uint64_t moved = 0, dropped_bytes = 0;
  for (bool done = false; !done;) {
    auto txn = lmdb::Txn::begin(env_.get(), 0);
    if (!txn) {
      return fail(txn.error());
    }
    std::vector<std::pair<std::string, EndedMessage>> ended;
    {
      auto cur = lmdb::Cursor::open(txn->get(), dbis_.msg);
      if (!cur) {
        return fail(cur.error());
      }
      MDB_val k = lmdb::val(from), v;
      int rc = mdb_cursor_get(cur->get(), &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
      std::size_t seen = 0;
      for (; rc == 0 && seen < kPerTransaction; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
        ++seen;
        auto m = record::decode_message(lmdb::view(v));
        if (!m) {
          return fail(Errc::kInternal, "corrupt message record during the format upgrade");
        }
        auto e = ended_message(*this, txn->get(), v.mv_size, *m);
        if (!e) {
          return fail(e.error());
        }
        if (e->has_value()) {
          ended.emplace_back(std::string(lmdb::view(k)), **e);
        }
      }
      if (rc == 0) {
        from.assign(lmdb::view(k));
      } else if (rc == MDB_NOTFOUND) {
        done = true;
      } else {
        return fail(lmdb::error(rc, "scan messages during the format upgrade"));
      }
    }
    for (const auto& [id16, e] : ended) {
      if (auto b = lmdb::get(txn->get(), dbis_.body, id16); b && b->has_value()) {
        dropped_bytes += (*b)->size();
      }
      if (auto r = enter_history(*this, txn->get(), id16, e); !r) {
        return r;
      }
      ++moved;
    }
    if (done) {
      if (auto r = lmdb::put(txn->get(), dbis_.meta, "format", kFormatVersionWithoutSchedule); !r) {
        return r;
      }
    }
    if (int rc = txn->commit(); rc != 0) {
      return fail(lmdb::error(rc, "commit the format upgrade"));
    }
  }
  spdlog::info(
      "store {} upgraded from format 1 to 2: {} delivered messages moved to history, {} MiB of "
      "their payloads dropped",
      options_.path.string(), moved, dropped_bytes >> 20);
  return {};
}

// Format 2 had no stored schedule and no counters: open scanned every delivery record and
// all of history. The upgrade builds `sched`, `ktail`, `next` and `qlen` from the pending
// deliveries and the history counters from `hist`, in transactions of a bounded size, and marks the
// store format 3 in the last one; a crash part-way leaves format 2 and the upgrade starts again
// (its puts are idempotent and its counts start afresh).
Result<void> Store::Impl::upgrade_format_2() {
  constexpr std::size_t kPerTransaction = 4096;
  std::map<std::uint32_t, record::QueueCount> counts;
  std::uint64_t history_messages = 0, history_bytes = 0;
  {
    auto txn = read_txn();
    if (!txn) {
      return fail(txn.error());
    }
    auto cur = lmdb::Cursor::open(txn->get(), dbis_.hist);
    if (!cur) {
      return fail(cur.error());
    }
    MDB_val k, v;
    int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
      history_messages += 1;
      history_bytes += record::parse_history_value(lmdb::view(v));
    }
    if (rc != MDB_NOTFOUND) {
      return fail(lmdb::error(rc, "scan history during the format upgrade"));
    }
  }
  std::string from;
  std::uint64_t scheduled = 0;
  for (bool done = false; !done;) {
    auto txn = lmdb::Txn::begin(env_.get(), 0);
    if (!txn) {
      return fail(txn.error());
    }
    std::vector<std::pair<std::string, record::Delivery>> pending;
    {
      auto cur = lmdb::Cursor::open(txn->get(), dbis_.dlv);
      if (!cur) {
        return fail(cur.error());
      }
      MDB_val k = lmdb::val(from), v;
      int rc = mdb_cursor_get(cur->get(), &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
      std::size_t seen = 0;
      for (; rc == 0 && seen < kPerTransaction; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
        ++seen;
        auto dl = record::decode_delivery(lmdb::view(v));
        if (!dl) {
          return fail(Errc::kInternal, "corrupt delivery record during the format upgrade");
        }
        if (dl->state == static_cast<std::uint8_t>(DeliveryState::kPending)) {
          pending.emplace_back(std::string(lmdb::view(k)), std::move(*dl));
        }
      }
      if (rc == 0) {
        from.assign(lmdb::view(k));
      } else if (rc == MDB_NOTFOUND) {
        done = true;
      } else {
        return fail(lmdb::error(rc, "scan deliveries during the format upgrade"));
      }
    }
    for (const auto& [key, dl] : pending) {
      std::uint32_t dest = 0;
      std::uint64_t seq = 0;
      if (!record::parse_delivery_key(key, dest, seq)) {
        return fail(Errc::kInternal, "corrupt delivery key during the format upgrade");
      }
      auto head = schedule_new(*this, txn->get(), dest, dl.ordering_key, seq, dl.next_at_ms);
      if (!head) {
        return fail(head.error());
      }
      counts[dest].deliveries += 1;
      counts[dest].bytes += dl.payload_bytes;
      scheduled += *head ? 1 : 0;
    }
    if (done) {
      for (const auto& [dest, c] : counts) {
        std::string key;
        record::put_u32be(key, dest);
        if (auto r = lmdb::put(txn->get(), dbis_.qlen, key, record::queue_count_value(c)); !r) {
          return r;
        }
      }
      if (auto r = lmdb::put(
              txn->get(), dbis_.meta, "history",
              record::queue_count_value({.deliveries = history_messages, .bytes = history_bytes}));
          !r) {
        return r;
      }
      if (auto r = lmdb::put(txn->get(), dbis_.meta, "format", kFormatVersionWithoutDeadIndex);
          !r) {
        return r;
      }
    }
    if (int rc = txn->commit(); rc != 0) {
      return fail(lmdb::error(rc, "commit the format upgrade"));
    }
  }
  std::uint64_t pending = 0;
  for (const auto& [dest, c] : counts) pending += c.deliveries;
  spdlog::info(
      "store {} upgraded from format 2 to 3: {} pending deliveries ({} due in their order) now "
      "scheduled in the store, {} delivered messages in history",
      options_.path.string(), pending, scheduled, history_messages);
  return {};
}

Result<void> Store::Impl::read_counters() {
  auto txn = read_txn();
  if (!txn) {
    return fail(txn.error());
  }
  auto h = lmdb::get(txn->get(), dbis_.meta, "history");
  if (!h) {
    return fail(h.error());
  }
  if (h->has_value()) {
    auto c = record::parse_queue_count(**h);
    if (!c) {
      return fail(Errc::kInternal, "corrupt history counters in the store's meta table");
    }
    history_messages_.store(c->deliveries);
    history_bytes_.store(c->bytes);
  }
  auto cur = lmdb::Cursor::open(txn->get(), dbis_.qlen);
  if (!cur) {
    return fail(cur.error());
  }
  std::lock_guard lock(index_mutex_);
  MDB_val k, v;
  int rc = mdb_cursor_get(cur->get(), &k, &v, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
    auto c = record::parse_queue_count(lmdb::view(v));
    if (k.mv_size != 4 || !c) {
      return fail(Errc::kInternal, "corrupt pending counts in the store's qlen table");
    }
    std::uint32_t id = record::get_u32be(lmdb::view(k));
    stored_queued_[id] = *c;
    indexed_items_ += c->deliveries;
    indexed_bytes_ += c->bytes;
    // Nothing of the schedule is read now: the window fills on the first lease.
    auto [it, added] =
        queues_.try_emplace(dest_name(id), options_.schedule_window, c->deliveries == 0);
    it->second.deliveries = c->deliveries;
    it->second.bytes = c->bytes;
  }
  if (rc != MDB_NOTFOUND) {
    return fail(lmdb::error(rc, "read pending counts"));
  }
  return {};
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
  if (options.retention_max_bytes == 0 || options.retention_max_messages == 0 ||
      options.retention_ms < 0) {
    return fail(Errc::kInvalidArgument,
                "retention_max_bytes and retention_max_messages must be at least 1, "
                "retention_ms not negative");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto r = impl->open(); !r) {
    return fail(r.error());
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

// Format 3 found dead letters by reading every delivery of a destination. Format 4 indexes
// them (`dead`: destination, when it went dead, seq). The upgrade scans `dlv` in transactions
// of a bounded size and marks the store format 4 in the last one; a crash part-way leaves
// format 3 and the upgrade starts again (its puts are idempotent).
Result<void> Store::Impl::upgrade_format_3() {
  constexpr std::size_t kPerTransaction = 4096;
  std::string from;
  std::uint64_t dead = 0;
  for (bool done = false; !done;) {
    auto txn = lmdb::Txn::begin(env_.get(), 0);
    if (!txn) {
      return fail(txn.error());
    }
    std::vector<std::string> keys;
    {
      auto cur = lmdb::Cursor::open(txn->get(), dbis_.dlv);
      if (!cur) {
        return fail(cur.error());
      }
      MDB_val k = lmdb::val(from), v;
      int rc = mdb_cursor_get(cur->get(), &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
      std::size_t seen = 0;
      for (; rc == 0 && seen < kPerTransaction; rc = mdb_cursor_get(cur->get(), &k, &v, MDB_NEXT)) {
        ++seen;
        auto dl = record::decode_delivery(lmdb::view(v));
        std::uint32_t dest = 0;
        std::uint64_t seq = 0;
        if (!dl || !record::parse_delivery_key(lmdb::view(k), dest, seq)) {
          return fail(Errc::kInternal, "corrupt delivery record during the format upgrade");
        }
        if (dl->state == static_cast<std::uint8_t>(DeliveryState::kDead)) {
          keys.push_back(record::dead_key(dest, dl->done_ms, seq));
        }
      }
      if (rc == 0) {
        from.assign(lmdb::view(k));
      } else if (rc == MDB_NOTFOUND) {
        done = true;
      } else {
        return fail(lmdb::error(rc, "scan deliveries during the format upgrade"));
      }
    }
    for (const auto& key : keys) {
      if (auto r = lmdb::put(txn->get(), dbis_.dead, key, ""); !r) {
        return r;
      }
    }
    dead += keys.size();
    if (done) {
      if (auto r = lmdb::put(txn->get(), dbis_.meta, "format", kFormatVersion); !r) {
        return r;
      }
    }
    if (int rc = txn->commit(); rc != 0) {
      return fail(lmdb::error(rc, "commit the format upgrade"));
    }
  }
  spdlog::info("store {} upgraded from format 3 to 4: {} dead deliveries indexed",
               options_.path.string(), dead);
  return {};
}

}  // namespace sluice::queue
