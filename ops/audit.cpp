#include "ops/audit.h"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/pii.h"
#include "queue/queue.h"

namespace sluice::ops {
namespace json = boost::json;

namespace {

const std::string kGenesis(64, '0');

// The canonical form hashed and stored: fixed key order, no whitespace.
std::string canonical(const AuditEntry& e) {
  json::object o;
  o["seq"] = e.seq;
  o["time"] = e.time;
  o["actor"] = e.actor;
  o["action"] = e.action;
  o["object"] = e.object;
  o["outcome"] = e.outcome;
  o["prev"] = e.prev;
  return json::serialize(o);
}

std::string chain_hash(const std::string& prev, const std::string& canonical_json) {
  return sha256_hex(prev + canonical_json);
}

std::optional<AuditEntry> decode(std::string_view value) {
  // value = <hash hex> ' ' <canonical json>
  if (value.size() < 66 || value[64] != ' ') {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = json::parse(value.substr(65), ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) {
    return std::nullopt;
  }
  AuditEntry e;
  try {
    e.seq = json::value_to<std::uint64_t>(o->at("seq"));
    e.time = json::value_to<std::string>(o->at("time"));
    e.actor = json::value_to<std::string>(o->at("actor"));
    e.action = json::value_to<std::string>(o->at("action"));
    e.object = json::value_to<std::string>(o->at("object"));
    e.outcome = json::value_to<std::string>(o->at("outcome"));
    e.prev = json::value_to<std::string>(o->at("prev"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  e.hash = std::string(value.substr(0, 64));
  return e;
}

queue::WriteFn append_fn(AuditEntry entry) {
  return [entry](queue::TableWriter& w) mutable -> Result<void> {
    auto last = w.last(AuditLog::kTable);
    if (!last) {
      return fail(last.error());
    }
    entry.seq = 1;
    entry.prev = kGenesis;
    if (last->has_value()) {
      auto prev = decode((*last)->second);
      if (!prev) {
        return fail(Errc::kInternal, "the last audit entry is corrupt; run sluicectl audit verify");
      }
      entry.seq = prev->seq + 1;
      entry.prev = prev->hash;
    }
    std::string body = canonical(entry);
    std::string key;
    put_u64be(key, entry.seq);
    return w.put(AuditLog::kTable, key, chain_hash(entry.prev, body) + " " + body);
  };
}

AuditEntry make_entry(const Clock& clock, const std::string& actor, const std::string& action,
                      const std::string& object, const std::string& outcome) {
  AuditEntry e;
  e.time = format_time_cn(clock.now_ms());
  e.actor = mask_personal_data(actor);
  e.action = action;
  e.object = mask_personal_data(object);
  e.outcome = mask_personal_data(outcome.substr(0, 1024));
  return e;
}

}  // namespace

void AuditLog::record(const std::string& actor, const std::string& action,
                      const std::string& object, const std::string& outcome) {
  AuditEntry e = make_entry(clock_, actor, action, object, outcome);
  std::string what = e.action + " " + e.object;
  store_.write_async(append_fn(std::move(e)), 512, [what](Result<void> r) {
    if (!r) {
      spdlog::error("audit entry not written ({}): {}", what, r.error().describe());
    }
  });
}

void AuditLog::set_refusal_bound(RefusalBound bound) {
  std::lock_guard lock(refusals_mutex_);
  bound_ = bound;
}

std::vector<AuditLog::Summary> AuditLog::take_ended(std::int64_t now, bool all) {
  std::vector<Summary> out;
  for (auto it = refusals_.begin(); it != refusals_.end();) {
    RefusalWindow& w = it->second;
    if (!all && now - w.start_ms < bound_.window_ms) {
      ++it;
      continue;
    }
    if (w.suppressed > 0) {
      out.push_back(Summary{.actor = it->first.first,
                            .action = it->first.second + ".suppressed",
                            .object = "last: " + w.last_object,
                            .outcome = std::to_string(w.suppressed) + " more " + it->first.second +
                                       " refusals within " +
                                       std::to_string(bound_.window_ms / 1000) + " s, beyond the " +
                                       std::to_string(bound_.burst) + " written one by one"});
    }
    it = refusals_.erase(it);
  }
  return out;
}

void AuditLog::record_refusal(const std::string& actor, const std::string& action,
                              const std::string& object, const std::string& outcome,
                              std::move_only_function<void(Result<void>)> done) {
  std::int64_t now = clock_.now_ms();
  std::vector<Summary> ended;
  bool write = false;
  {
    std::lock_guard lock(refusals_mutex_);
    ended = take_ended(now, false);
    auto key = std::make_pair(actor, action);
    auto it = refusals_.find(key);
    if (it == refusals_.end()) {
      if (refusals_.size() >= bound_.max_keys) key.first = "(many actors)";
      it = refusals_.try_emplace(key, RefusalWindow{.start_ms = now}).first;
    }
    RefusalWindow& w = it->second;
    if (w.written < bound_.burst) {
      w.written += 1;
      write = true;
    } else {
      w.suppressed += 1;
      w.last_object = object;
    }
  }
  for (auto& e : ended) record(e.actor, e.action, e.object, e.outcome);
  if (write) {
    if (done) {
      record_then(actor, action, object, outcome, std::move(done));
    } else {
      record(actor, action, object, outcome);
    }
  } else if (done) {
    done({});
  }
}

void AuditLog::flush_refusals(bool all) {
  std::vector<Summary> ended;
  {
    std::lock_guard lock(refusals_mutex_);
    ended = take_ended(clock_.now_ms(), all);
  }
  for (auto& e : ended) record(e.actor, e.action, e.object, e.outcome);
}

void AuditLog::record_then(const std::string& actor, const std::string& action,
                           const std::string& object, const std::string& outcome,
                           std::move_only_function<void(Result<void>)> done) {
  AuditEntry e = make_entry(clock_, actor, action, object, outcome);
  std::string what = e.action + " " + e.object;
  store_.write_async(
      append_fn(std::move(e)), 512, [what, done = std::move(done)](Result<void> r) mutable {
        if (!r) {
          spdlog::error("audit entry not written ({}): {}", what, r.error().describe());
        }
        done(std::move(r));
      });
}

Result<void> AuditLog::record_sync(const std::string& actor, const std::string& action,
                                   const std::string& object, const std::string& outcome) {
  auto r = store_.write(append_fn(make_entry(clock_, actor, action, object, outcome)), 512);
  if (!r) {
    spdlog::critical("audit entry not written ({} {}): {}", action, mask_personal_data(object),
                     r.error().describe());
  }
  return r;
}

Result<void> AuditLog::record_with(const std::string& actor, const std::string& action,
                                   const std::string& object, const std::string& outcome,
                                   std::function<Result<void>(queue::TableWriter&)> change,
                                   std::size_t bytes) {
  queue::WriteFn append = append_fn(make_entry(clock_, actor, action, object, outcome));
  auto r = store_.write(
      [change = std::move(change), append = std::move(append)](queue::TableWriter& w) {
        if (auto c = change(w); !c) return c;
        return append(w);
      },
      bytes + 512);
  if (!r) {
    spdlog::error("{} {} not written: {}", action, mask_personal_data(object),
                  r.error().describe());
  }
  return r;
}

Result<AuditReport> AuditLog::verify() const {
  AuditReport report;
  std::string prev = kGenesis;
  std::uint64_t expected_seq = 1;
  auto r = store_.scan(kTable, "", [&](std::string_view key, std::string_view value) {
    auto e = decode(value);
    std::uint64_t key_seq = key.size() == 8 ? get_u64be(key) : 0;
    std::string problem;
    if (!e) {
      problem = "entry is not readable";
    } else if (e->seq != expected_seq || key_seq != expected_seq) {
      problem = "expected entry " + std::to_string(expected_seq) + ", found " +
                std::to_string(e->seq) + " (an entry was removed or inserted)";
    } else if (e->prev != prev) {
      problem = "link to the previous entry is broken";
    } else if (chain_hash(e->prev, canonical(*e)) != e->hash) {
      problem = "entry content does not match its hash (edited)";
    }
    if (!problem.empty()) {
      report.intact = false;
      report.first_bad = expected_seq;
      report.problem = problem;
      return false;
    }
    prev = e->hash;
    ++expected_seq;
    ++report.entries;
    return true;
  });
  if (!r) {
    return fail(r.error());
  }
  report.head = prev;
  return report;
}

Result<std::vector<AuditEntry>> AuditLog::tail(std::size_t n) const {
  std::vector<AuditEntry> out;
  auto r = store_.scan_reverse(kTable, [&](std::string_view, std::string_view value) {
    if (auto e = decode(value)) {
      out.push_back(std::move(*e));
    }
    return out.size() < n;
  });
  if (!r) {
    return fail(r.error());
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace sluice::ops
