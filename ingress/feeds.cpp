#include "ingress/feeds.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "adapters/adapter.h"
#include "adapters/registry.h"
#include "common/clock.h"
#include "ops/audit.h"
#include "ops/quarantine.h"
#include "pipeline/authz.h"

namespace sluice::ingress {

using ops::AuditLog;
using ops::Quarantine;
using ops::QuarantineEntry;
using pipeline::Authorizer;
using pipeline::IngestResult;
using pipeline::RefusalKind;
using pipeline::Rejection;
using pipeline::Submission;
namespace {
constexpr int kWindow = 512;  // records in flight (validated, waiting for their commit)
}

struct FeedSet {
  std::map<std::string, std::unique_ptr<adapters::Adapter>> adapters;
};

bool FeedOutcome::retry_later() const {
  if (fatal && fatal->kind == RefusalKind::kBusy) return true;
  return std::any_of(rejected.begin(), rejected.end(),
                     [](const Bad& b) { return b.rejection.kind == RefusalKind::kBusy; });
}

class FeedIngest::Impl {
 public:
  Impl(FeedOptions options, Ingest& ingest, Quarantine* quarantine, const Authorizer* authorizer,
       AuditLog* audit)
      : options_(std::move(options)),
        ingest_(ingest),
        quarantine_(quarantine),
        authorizer_(authorizer),
        audit_(audit),
        pool_(static_cast<std::size_t>(options_.threads)) {}

  ~Impl() { pool_.join(); }

  std::atomic<std::shared_ptr<const FeedSet>> feeds;

  FeedOutcome run(const std::string& feed, std::string_view input, const PeerIdentity& peer,
                  const std::string& source, bool single_record,
                  std::chrono::steady_clock::time_point deadline, bool quarantine_failures) {
    Quarantine* const quarantine = quarantine_failures ? quarantine_ : nullptr;
    FeedOutcome out;
    out.feed = feed;
    const auto set = feeds.load();  // a run keeps the adapter it started with
    auto it = set->adapters.find(feed);
    if (it == set->adapters.end()) {
      out.fatal = Rejection{.kind = RefusalKind::kNotFound,
                            .code = "feed.unknown",
                            .message = "no feed named " + feed};
      return out;
    }
    if (authorizer_ != nullptr) {
      if (auto why = authorizer_->check_feed(peer.sender(), feed)) {
        out.fatal =
            Rejection{.kind = RefusalKind::kForbidden, .code = "auth.forbidden", .message = *why};
        if (audit_ != nullptr) {
          audit_->record_refusal(peer.sender(), "feed.refused", feed, *why);
        }
        return out;
      }
    }
    adapters::Context ctx;
    ctx.sender = xml::NodeAddress{peer.node, peer.system};
    ctx.feed = feed;
    ctx.now_ms = SystemClock::instance().now_ms();
    ctx.xml_limits = options_.xml;
    ctx.xml_limits.max_bytes = options_.max_input_bytes;
    ctx.max_records = options_.max_records;

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
        rej.kind = RefusalKind::kInvalid;
        rej.code = "record.untranslatable";
        rej.message = "record " + std::to_string(record) +
                      (line > 0 ? " (line " + std::to_string(line) + ")" : std::string()) +
                      " cannot be translated: " + xml::describe(t.document.error(), 3);
        rej.problems = std::move(t.document.error());
        if (quarantine == nullptr) {
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
        quarantine->put_async(std::move(e), [&finished, record, line,
                                             rej = std::move(rej)](Result<std::string> id) mutable {
          if (id) {
            rej.quarantine_id = *id;
          } else {
            rej.message += " (not kept: " + id.error().message + ")";
          }
          finished(record, line, std::unexpected(std::move(rej)));
        });
        return;
      }
      if (t.raw.size() > options_.xml.max_bytes) {
        // One record is one document: it is held to the bound of a document posted on its
        // own (max_body_bytes), measured on the record as received, at no extra cost.
        Rejection rej;
        rej.kind = RefusalKind::kTooLarge;
        rej.code = "xml.too-large";
        rej.message = "record " + std::to_string(record) + " is " + std::to_string(t.raw.size()) +
                      " bytes, more than the limit of " + std::to_string(options_.xml.max_bytes) +
                      " bytes for one document";
        finished(record, line, std::unexpected(std::move(rej)));
        return;
      }
      Submission s;
      s.document = std::move(*t.document);
      s.peer = peer;
      s.source = source;
      s.deadline = deadline;
      s.record = record;
      s.line = line;
      s.quarantine_on_failure = quarantine_failures;
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
      rej.kind = fatal->code.ends_with("too-many-records") ? RefusalKind::kTooLarge
                                                           : RefusalKind::kMalformed;
      rej.code = fatal->code;
      rej.message = "the input cannot be read by feed " + feed + ": " + fatal->message;
      rej.problems = {*fatal};
      if (quarantine != nullptr) {
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
        auto id = quarantine->put(std::move(e));
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
  FeedOptions options_;
  Ingest& ingest_;
  Quarantine* quarantine_;
  const Authorizer* authorizer_;
  AuditLog* audit_;
  boost::asio::thread_pool pool_;
};

FeedIngest::FeedIngest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeedIngest::~FeedIngest() = default;

Result<std::unique_ptr<FeedIngest>> FeedIngest::create(FeedOptions options,
                                                       const adapters::Registry& registry,
                                                       Ingest& ingest, Quarantine* quarantine,
                                                       const Authorizer* authorizer,
                                                       AuditLog* audit) {
  auto set = load(options.feeds, registry);
  if (!set) {
    return fail(set.error());
  }
  auto impl = std::make_unique<Impl>(options, ingest, quarantine, authorizer, audit);
  impl->feeds.store(std::move(*set));
  return std::unique_ptr<FeedIngest>(new FeedIngest(std::move(impl)));
}

Result<std::shared_ptr<const FeedSet>> FeedIngest::load(const std::vector<FeedConfig>& feeds,
                                                        const adapters::Registry& registry) {
  auto set = std::make_shared<FeedSet>();
  for (const auto& f : feeds) {
    auto adapter = registry.create(f.mapping);
    if (!adapter) {
      return fail(Errc::kInvalidArgument, "feed " + f.name + ": " + adapter.error().message);
    }
    set->adapters.emplace(f.name, std::move(*adapter));
  }
  return std::shared_ptr<const FeedSet>(std::move(set));
}

void FeedIngest::use(std::shared_ptr<const FeedSet> feeds) { impl_->feeds.store(std::move(feeds)); }

bool FeedIngest::has_feed(const std::string& name) const {
  return impl_->feeds.load()->adapters.contains(name);
}

FeedOutcome FeedIngest::run(const std::string& feed, std::string_view input,
                            const PeerIdentity& sender, const std::string& source,
                            bool single_record, std::chrono::steady_clock::time_point deadline,
                            bool quarantine_failures) {
  return impl_->run(feed, input, sender, source, single_record, deadline, quarantine_failures);
}

void FeedIngest::submit(std::string feed, std::vector<std::string> inputs, PeerIdentity sender,
                        std::string source,
                        std::move_only_function<void(std::vector<FeedOutcome>)> done,
                        std::chrono::steady_clock::time_point deadline) {
  impl_->post([this, feed = std::move(feed), inputs = std::move(inputs), sender = std::move(sender),
               source = std::move(source), done = std::move(done), deadline]() mutable {
    std::vector<FeedOutcome> outcomes;
    for (const auto& input : inputs) {
      outcomes.push_back(impl_->run(feed, input, sender, source, false, deadline, true));
    }
    done(std::move(outcomes));
  });
}

void FeedIngest::post(std::move_only_function<void()> job) { impl_->post(std::move(job)); }

}  // namespace sluice::ingress
