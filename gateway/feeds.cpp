#include "gateway/feeds.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "adapters/adapter.h"
#include "adapters/registry.h"
#include "common/clock.h"
#include "gateway/audit.h"
#include "gateway/authz.h"
#include "gateway/quarantine.h"

namespace sluice::gateway {
namespace json = boost::json;

namespace {
constexpr int kWindow = 512;  // records in flight (validated, waiting for their commit)
}

bool FeedOutcome::retry_later() const {
  if (fatal && fatal->status == 503) return true;
  return std::any_of(rejected.begin(), rejected.end(),
                     [](const Bad& b) { return b.rejection.status == 503; });
}

class FeedIngest::Impl {
 public:
  Impl(const Config& config, Ingest& ingest, Quarantine* quarantine, const Authorizer* authorizer,
       AuditLog* audit)
      : config_(config),
        ingest_(ingest),
        quarantine_(quarantine),
        authorizer_(authorizer),
        audit_(audit),
        pool_(static_cast<std::size_t>(config.feed_threads)) {}

  ~Impl() { pool_.join(); }

  std::map<std::string, std::unique_ptr<adapters::Adapter>> adapters;

  FeedOutcome run(const std::string& feed, std::string_view input, const PeerIdentity& peer,
                  const std::string& source, bool single_record) {
    FeedOutcome out;
    out.feed = feed;
    auto it = adapters.find(feed);
    if (it == adapters.end()) {
      out.fatal =
          Rejection{.status = 404, .code = "feed.unknown", .message = "no feed named " + feed};
      return out;
    }
    if (authorizer_ != nullptr) {
      if (auto why = authorizer_->check_feed(peer.sender(), feed)) {
        out.fatal = Rejection{.status = 403, .code = "auth.forbidden", .message = *why};
        if (audit_ != nullptr) audit_->record(peer.sender(), "feed.refused", feed, *why);
        return out;
      }
    }
    adapters::Context ctx;
    ctx.sender = xml::NodeAddress{peer.node, peer.system};
    ctx.feed = feed;
    ctx.now_ms = SystemClock::instance().now_ms();
    ctx.xml_limits = config_.xml;
    ctx.xml_limits.max_bytes = config_.data.max_batch_bytes;
    ctx.max_records = config_.max_batch_records;

    std::mutex m;
    std::condition_variable cv;
    int in_flight = 0;
    auto finished = [&](std::int64_t record, int line, IngestResult r) {
      std::lock_guard lock(m);
      if (r) {
        out.accepted.push_back({record, line, r->message_id, r->duplicate});
      } else {
        out.rejected.push_back({record, line, std::move(r.error())});
      }
      --in_flight;
      cv.notify_all();
    };
    auto emit = [&](adapters::Translated&& t) {
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return in_flight < kWindow; });
        ++in_flight;
        ++out.records;
      }
      std::int64_t record = t.record;
      int line = t.line;
      if (!t.document) {
        Rejection rej;
        rej.status = 422;
        rej.code = "record.untranslatable";
        rej.message = "record " + std::to_string(record) +
                      (line > 0 ? " (line " + std::to_string(line) + ")" : std::string()) +
                      " cannot be translated: " + xml::describe(t.document.error(), 3);
        rej.problems = std::move(t.document.error());
        if (quarantine_ == nullptr) {
          finished(record, line, std::unexpected(std::move(rej)));
          return;
        }
        QuarantineEntry e;
        e.sender = peer.sender();
        e.source = source;
        e.feed = feed;
        e.kind = "feed-record";
        e.record = record;
        e.line = line;
        e.code = rej.code;
        e.message = rej.message;
        e.problems = rej.problems;
        e.raw = std::move(t.raw);
        quarantine_->put_async(std::move(e), [&finished, record, line, rej = std::move(rej)](
                                                 Result<std::string> id) mutable {
          if (id) {
            rej.quarantine_id = *id;
          } else {
            rej.message += " (not kept: " + id.error().message + ")";
          }
          finished(record, line, std::unexpected(std::move(rej)));
        });
        return;
      }
      Submission s;
      s.document = std::move(*t.document);
      s.peer = peer;
      s.source = source;
      s.record = record;
      s.line = line;
      ingest_.submit(std::move(s), [&finished, record, line](IngestResult r) {
        finished(record, line, std::move(r));
      });
    };
    std::optional<xml::Problem> fatal = single_record
                                            ? it->second->translate_record(input, ctx, emit)
                                            : it->second->translate(input, ctx, emit);
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight == 0; });
    }
    if (fatal) {
      Rejection rej;
      rej.status = fatal->code.ends_with("too-many-records") ? 413 : 400;
      rej.code = fatal->code;
      rej.message = "the input cannot be read by feed " + feed + ": " + fatal->message;
      rej.problems = {*fatal};
      if (quarantine_ != nullptr) {
        QuarantineEntry e;
        e.sender = peer.sender();
        e.source = source;
        e.feed = feed;
        e.kind = "feed-input";
        e.line = fatal->line;
        e.code = rej.code;
        e.message = rej.message;
        e.problems = rej.problems;
        e.raw.assign(input);
        auto id = quarantine_->put(std::move(e));
        if (id) {
          rej.quarantine_id = *id;
        } else {
          rej.message += " (not kept: " + id.error().message + ")";
        }
      }
      out.fatal = std::move(rej);
    }
    auto by_record = [](const auto& a, const auto& b) { return a.record < b.record; };
    std::sort(out.accepted.begin(), out.accepted.end(), by_record);
    std::sort(out.rejected.begin(), out.rejected.end(), by_record);
    spdlog::info("feed {} from {} via {}: {} records, {} accepted, {} refused{}", feed,
                 peer.sender(), source, out.records, out.accepted.size(), out.rejected.size(),
                 out.fatal ? ", input refused: " + out.fatal->message : std::string());
    return out;
  }

  void post(std::move_only_function<void()> job) { boost::asio::post(pool_, std::move(job)); }

 private:
  const Config& config_;
  Ingest& ingest_;
  Quarantine* quarantine_;
  const Authorizer* authorizer_;
  AuditLog* audit_;
  boost::asio::thread_pool pool_;
};

FeedIngest::FeedIngest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeedIngest::~FeedIngest() = default;

Result<std::unique_ptr<FeedIngest>> FeedIngest::create(const Config& config,
                                                       const adapters::Registry& registry,
                                                       Ingest& ingest, Quarantine* quarantine,
                                                       const Authorizer* authorizer,
                                                       AuditLog* audit) {
  auto impl = std::make_unique<Impl>(config, ingest, quarantine, authorizer, audit);
  for (const auto& f : config.feeds) {
    auto adapter = registry.create(f.mapping);
    if (!adapter) {
      return fail(Errc::kInvalidArgument, "feed " + f.name + ": " + adapter.error().message);
    }
    impl->adapters.emplace(f.name, std::move(*adapter));
  }
  return std::unique_ptr<FeedIngest>(new FeedIngest(std::move(impl)));
}

bool FeedIngest::has_feed(const std::string& name) const { return impl_->adapters.contains(name); }

FeedOutcome FeedIngest::run(const std::string& feed, std::string_view input,
                            const PeerIdentity& sender, const std::string& source,
                            bool single_record) {
  return impl_->run(feed, input, sender, source, single_record);
}

void FeedIngest::submit(std::string feed, std::vector<std::string> inputs, PeerIdentity sender,
                        std::string source,
                        std::move_only_function<void(std::vector<FeedOutcome>)> done) {
  impl_->post([this, feed = std::move(feed), inputs = std::move(inputs), sender = std::move(sender),
               source = std::move(source), done = std::move(done)]() mutable {
    std::vector<FeedOutcome> outcomes;
    for (const auto& input : inputs) {
      outcomes.push_back(impl_->run(feed, input, sender, source, false));
    }
    done(std::move(outcomes));
  });
}

void FeedIngest::post(std::move_only_function<void()> job) { impl_->post(std::move(job)); }

namespace {

json::object rejection_object(const Rejection& r) {
  json::object o;
  o["code"] = r.code;
  o["message"] = r.message;
  json::array ps;
  for (const auto& p : r.problems) {
    json::object po;
    po["code"] = p.code;
    if (!p.field.empty()) po["field"] = p.field;
    if (!p.path.empty()) po["path"] = p.path;
    if (p.line > 0) po["line"] = p.line;
    if (p.record >= 0) po["record"] = p.record;
    po["message"] = p.message;
    ps.push_back(std::move(po));
  }
  if (!ps.empty()) o["problems"] = std::move(ps);
  if (!r.quarantine_id.empty()) o["quarantineId"] = r.quarantine_id;
  return o;
}

}  // namespace

std::pair<unsigned, std::string> feed_outcome_json(const std::vector<FeedOutcome>& outcomes,
                                                   const std::vector<std::string>& part_names) {
  json::array parts;
  std::uint64_t accepted = 0, rejected = 0, records = 0;
  unsigned fatal_status = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    json::object p;
    p["feed"] = o.feed;
    if (i < part_names.size() && !part_names[i].empty()) p["part"] = part_names[i];
    p["records"] = o.records;
    p["accepted"] = o.accepted.size();
    p["rejected"] = o.rejected.size();
    json::array msgs;
    for (const auto& a : o.accepted) {
      json::object m{{"record", a.record}, {"messageId", a.message_id}, {"duplicate", a.duplicate}};
      if (a.line > 0) m["line"] = a.line;
      msgs.push_back(std::move(m));
    }
    p["messages"] = std::move(msgs);
    json::array errs;
    for (const auto& b : o.rejected) {
      json::object e = rejection_object(b.rejection);
      e["record"] = b.record;
      if (b.line > 0) e["line"] = b.line;
      e["status"] = b.rejection.status;
      errs.push_back(std::move(e));
    }
    p["errors"] = std::move(errs);
    if (o.fatal) {
      p["error"] = rejection_object(*o.fatal);
      fatal_status = fatal_status == 0 ? o.fatal->status : fatal_status;
    }
    accepted += o.accepted.size();
    rejected += o.rejected.size();
    records += o.records;
    parts.push_back(std::move(p));
  }
  json::object root;
  root["records"] = records;
  root["accepted"] = accepted;
  root["rejected"] = rejected;
  root["inputs"] = std::move(parts);
  unsigned status;
  if (accepted == 0 && fatal_status != 0) {
    status = fatal_status;
  } else if (accepted == 0 && rejected > 0) {
    status = 422;
  } else if (rejected > 0 || fatal_status != 0) {
    status = 207;
  } else {
    status = 202;
  }
  if (outcomes.size() == 1) {
    // One input: flatten for the common case.
    json::object flat = root["inputs"].as_array()[0].as_object();
    return {status, json::serialize(flat)};
  }
  return {status, json::serialize(root)};
}

}  // namespace sluice::gateway
