#include "ops/quarantine.h"

#include <boost/json.hpp>

#include <future>
#include <memory>

#include "common/encoding.h"
#include "queue/queue.h"

namespace sluice::ops {
namespace json = boost::json;

std::string encode_entry(const QuarantineEntry& e) {
  json::object o;
  o["id"] = e.id;
  o["time"] = e.time_ms;
  o["sender"] = e.sender;
  o["source"] = e.source;
  o["feed"] = e.feed;
  o["kind"] = e.kind;
  o["record"] = e.record;
  o["line"] = e.line;
  o["code"] = e.code;
  o["message"] = e.message;
  o["resubmissions"] = e.resubmissions;
  json::array ps;
  for (const auto& p : e.problems) {
    ps.push_back(json::object{{"code", p.code},
                              {"field", p.field},
                              {"path", p.path},
                              {"line", p.line},
                              {"record", p.record},
                              {"message", p.message}});
  }
  o["problems"] = std::move(ps);
  std::string meta = json::serialize(o);
  std::string out;
  put_u32be(out, static_cast<std::uint32_t>(meta.size()));
  out += meta;
  out += e.raw;
  return out;
}

std::optional<QuarantineEntry> decode_entry(std::string_view v) {
  if (v.size() < 4) return std::nullopt;
  std::uint32_t n = get_u32be(v);
  if (4 + static_cast<std::size_t>(n) > v.size()) return std::nullopt;
  boost::system::error_code ec;
  auto parsed = json::parse(v.substr(4, n), ec);
  const json::object* o = ec ? nullptr : parsed.if_object();
  if (o == nullptr) return std::nullopt;
  QuarantineEntry e;
  try {
    e.id = json::value_to<std::string>(o->at("id"));
    e.time_ms = json::value_to<std::int64_t>(o->at("time"));
    e.sender = json::value_to<std::string>(o->at("sender"));
    e.source = json::value_to<std::string>(o->at("source"));
    e.feed = json::value_to<std::string>(o->at("feed"));
    e.kind = json::value_to<std::string>(o->at("kind"));
    e.record = json::value_to<std::int64_t>(o->at("record"));
    e.line = json::value_to<int>(o->at("line"));
    e.code = json::value_to<std::string>(o->at("code"));
    e.message = json::value_to<std::string>(o->at("message"));
    e.resubmissions = json::value_to<int>(o->at("resubmissions"));
    for (const auto& pv : o->at("problems").as_array()) {
      const auto& po = pv.as_object();
      xml::Problem p;
      p.code = json::value_to<std::string>(po.at("code"));
      p.field = json::value_to<std::string>(po.at("field"));
      p.path = json::value_to<std::string>(po.at("path"));
      p.line = json::value_to<int>(po.at("line"));
      p.record = json::value_to<std::int64_t>(po.at("record"));
      p.message = json::value_to<std::string>(po.at("message"));
      e.problems.push_back(std::move(p));
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  e.raw.assign(v.substr(4 + n));
  return e;
}

Quarantine::Quarantine(queue::Store& store, const Clock& clock, Random& random,
                       std::uint64_t max_bytes)
    : store_(store), clock_(clock), random_(random), max_bytes_(max_bytes) {}

Result<void> Quarantine::open() {
  std::uint64_t bytes = 0, count = 0;
  auto r = store_.scan(kTable, "", [&](std::string_view, std::string_view v) {
    bytes += v.size();
    ++count;
    return true;
  });
  if (!r) return r;
  bytes_ = bytes;
  count_ = count;
  return {};
}

void Quarantine::put_async(QuarantineEntry entry, PutCallback done) {
  entry.id = new_uuid_v7(random_, clock_.now_ms());
  entry.time_ms = clock_.now_ms();
  if (entry.problems.size() > 100) entry.problems.resize(100);
  std::string value = encode_entry(entry);
  if (bytes_.load() + value.size() > max_bytes_) {
    done(fail(Errc::kQueueFull, "the quarantine is full (" + std::to_string(bytes_.load()) +
                                    " bytes held, limit " + std::to_string(max_bytes_) +
                                    "); the input was not kept"));
    return;
  }
  std::size_t size = value.size();
  bytes_.fetch_add(size);
  std::string id = entry.id;
  store_.write_async(
      [id, value = std::move(value)](queue::TableWriter& w) -> Result<void> {
        return w.put(kTable, id, value);
      },
      size,
      [this, id, size, done = std::move(done)](Result<void> r) mutable {
        if (!r) {
          bytes_.fetch_sub(size);
          done(fail(r.error()));
          return;
        }
        count_.fetch_add(1);
        done(id);
      });
}

Result<std::string> Quarantine::put(QuarantineEntry entry) {
  std::promise<Result<std::string>> p;
  auto f = p.get_future();
  put_async(std::move(entry), [&p](Result<std::string> r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<QuarantineEntry> Quarantine::get(const std::string& id) const {
  auto v = store_.get(kTable, id);
  if (!v) return fail(v.error());
  if (!v->has_value()) return fail(Errc::kNotFound, "no quarantine entry " + id);
  auto e = decode_entry(**v);
  if (!e) return fail(Errc::kInternal, "quarantine entry " + id + " is corrupt");
  return *e;
}

Result<std::vector<QuarantineEntry>> Quarantine::list(std::size_t limit, bool with_raw) const {
  std::vector<QuarantineEntry> out;
  auto r = store_.scan_reverse(kTable, [&](std::string_view, std::string_view v) {
    if (auto e = decode_entry(v)) {
      if (!with_raw) {
        e->raw.clear();
      }
      out.push_back(std::move(*e));
    }
    return out.size() < limit;
  });
  if (!r) return fail(r.error());
  return out;
}

// The size an entry had is read inside the same transaction that changes it, so two
// concurrent changes of one entry cannot both count it: the second finds it gone (kNotFound)
// and its transaction leaves nothing behind. The write function may run more than once when
// its batch is retried; it sets the delta, never adds to it.
Result<void> Quarantine::replace(const QuarantineEntry& entry) {
  std::string value = encode_entry(entry);
  std::string id = entry.id;
  auto delta = std::make_shared<std::int64_t>(0);
  auto r = store_.write(
      [id, value, delta](queue::TableWriter& w) -> Result<void> {
        auto old = w.get(kTable, id);
        if (!old) return fail(old.error());
        if (!old->has_value()) return fail(Errc::kNotFound, "no quarantine entry " + id);
        *delta =
            static_cast<std::int64_t>(value.size()) - static_cast<std::int64_t>((*old)->size());
        return w.put(kTable, id, value);
      },
      value.size());
  if (r) bytes_.fetch_add(static_cast<std::uint64_t>(*delta));
  return r;
}

Result<void> Quarantine::remove(const std::string& id) {
  auto size = std::make_shared<std::size_t>(0);
  auto r = store_.write(
      [id, size](queue::TableWriter& w) -> Result<void> {
        auto old = w.get(kTable, id);
        if (!old) return fail(old.error());
        if (!old->has_value()) return fail(Errc::kNotFound, "no quarantine entry " + id);
        *size = (*old)->size();
        auto d = w.del(kTable, id);
        if (!d) return fail(d.error());
        if (!*d) return fail(Errc::kNotFound, "no quarantine entry " + id);
        return {};
      },
      64);
  if (r) {
    bytes_.fetch_sub(*size);
    count_.fetch_sub(1);
  }
  return r;
}

}  // namespace sluice::ops
