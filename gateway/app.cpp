#include "gateway/app.h"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <thread>

#include "adapters/mapping.h"
#include "adapters/registry.h"
#include "api/admin_api.h"
#include "api/data_api.h"
#include "api/json.h"
#include "api/quarantine_api.h"
#include "api/search_api.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/random.h"
#include "common/worker_pool.h"
#include "delivery/egress.h"
#include "ferry/keys.h"
#include "ferry/link.h"
#include "gateway/config_api.h"
#include "gateway/config_versions.h"
#include "gateway/run_config.h"
#include "ingress/feeds.h"
#include "ingress/spool_in.h"
#include "net/admission.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "ops/audit.h"
#include "ops/quarantine.h"
#include "pipeline/authz.h"
#include "pipeline/ingest.h"
#include "pipeline/routes.h"
#include "queue/queue.h"
#include "trust/sender_signature.h"
#include "trust/signer.h"
#include "trust/trust_store.h"
#include "trust/verifier.h"
#include "xml/parse.h"
#include "xml/validate.h"

namespace sluice::gateway {

namespace asio = boost::asio;

using api::AdminApi;
using api::DataApi;
using api::error_response;
using api::json_response;
using api::register_quarantine_api;
using delivery::Egress;
using ingress::FeedIngest;
using ingress::SpoolWatcher;
using net::HttpRequest;
using net::HttpServer;
using net::Respond;
using net::ServerTls;
using ops::AuditLog;
using ops::Quarantine;
using pipeline::Authorizer;
using pipeline::Ingest;
using pipeline::IngestDeps;
using pipeline::RouteTable;

class App::Impl {
 public:
  Impl(asio::io_context& io, const Config& config) : io_(io), config_(config) {}

  Result<void> start() {
    xml::initialize(config_.schema_dir);
    body_budget_ = std::make_unique<net::BodyBudget>(config_.max_body_bytes_in_flight);
    workers_ = std::make_unique<WorkerPool>("request", static_cast<std::size_t>(config_.workers),
                                            static_cast<std::size_t>(config_.worker_queue));
    queue::Options so = config_.store;
    so.extension_tables = {AuditLog::kTable, "quarantine", ConfigVersions::kTable};
    auto store = queue::Store::open(so);
    if (!store) {
      return fail(store.error());
    }
    store_ = std::move(*store);
    audit_ = std::make_unique<AuditLog>(*store_, SystemClock::instance());
    audit_->set_refusal_bound(
        {.burst = config_.audit_refusal_burst, .window_ms = config_.audit_refusal_window_ms});
    // The run-time configuration in use is the store's newest version (the file seeds it).
    versions_ = std::make_unique<ConfigVersions>(*store_, SystemClock::instance());
    run_config_ = std::make_unique<RunConfigService>(
        config_, *versions_, *audit_,
        [this](const RunConfig& from, const RunConfig& to) { return prepare_change(from, to); });
    auto opened = run_config_->open();
    if (!opened) {
      return fail(opened.error());
    }
    config_ = std::move(*opened);
    routes_ = std::make_unique<RouteTable>(config_.routes);
    auto validator = xml::Validator::load(config_.schema_dir);
    if (!validator) {
      return fail(validator.error());
    }
    validator_ = std::move(*validator);
    authorizer_ = std::make_unique<Authorizer>(config_.senders);
    if (config_.signing.enabled) {
      auto trust = trust::TrustStore::load(config_.signing.trust, config_.signing.crls);
      if (!trust) {
        return fail(Errc::kInvalidArgument, "[signing] trust: " + trust.error().message);
      }
      trust_ = *trust;
      auto signer = trust::DocumentSigner::create(config_.signing.cert, config_.signing.key,
                                                  config_.gateway_id);
      if (!signer) {
        return fail(Errc::kInvalidArgument, "[signing] " + signer.error().message);
      }
      signer_ = std::move(*signer);
      auto sender_sigs = trust::SenderSignatureVerifier::create(trust_);
      if (!sender_sigs) {
        return fail(sender_sigs.error());
      }
      sender_sigs_ = std::move(*sender_sigs);
      peer_sigs_ = std::make_unique<trust::DocumentVerifier>(trust_);
    } else {
      spdlog::warn("[signing] is off: accepted documents are stored unsigned and get no receipt");
    }
    quarantine_ = std::make_unique<Quarantine>(
        *store_, SystemClock::instance(), SecureRandom::instance(), config_.quarantine_max_bytes);
    if (auto r = quarantine_->open(); !r) {
      return fail(r.error());
    }
    metrics_.add_gauge_source([this](std::string& out) { render_gauges(out); });

    IngestDeps deps;
    deps.options = config_.ingest_options();
    deps.store = store_.get();
    deps.routes = routes_.get();
    deps.metrics = &metrics_;
    deps.clock = &SystemClock::instance();
    deps.random = &SecureRandom::instance();
    deps.validator = validator_.get();
    deps.authorizer = authorizer_.get();
    deps.quarantine = quarantine_.get();
    deps.signer = signer_.get();
    deps.sender_sigs = sender_sigs_.get();
    deps.peer_sigs = peer_sigs_.get();
    deps.audit = audit_.get();
    ingest_ = std::make_unique<Ingest>(deps);
    adapters::register_builtin_adapters(registry_);
    auto feeds = FeedIngest::create(config_.feed_options(), registry_, *ingest_, quarantine_.get(),
                                    authorizer_.get(), audit_.get());
    if (!feeds) {
      return fail(feeds.error());
    }
    feeds_ = std::move(*feeds);
    data_api_ = std::make_unique<DataApi>(config_.data, *ingest_, *store_, metrics_, feeds_.get(),
                                          signer_.get());
    admin_api_ = std::make_unique<AdminApi>(*store_, metrics_, audit_.get(), admin_roles());
    data_api_->set_readiness([this] { return not_ready(); });
    admin_api_->set_readiness([this] { return not_ready(); });
    register_quarantine_api(*admin_api_, *quarantine_, *ingest_, *feeds_, *audit_);
    api::register_search_api(*admin_api_, *store_, audit_.get());
    run_config_->register_routes(*admin_api_);
    // Before the listeners: the data API asks the other half about messages that crossed.
    if (config_.ferry.enabled()) {
      if (auto r = start_ferry(); !r) {
        return fail(r.error());
      }
    }

    if (config_.data.enabled) {
      auto tls = ServerTls::create(config_.data.tls);
      if (!tls) {
        return fail(Errc::kInvalidArgument, "listen.data: " + tls.error().message);
      }
      data_tls_ = *tls;
      if (!config_.data.tls.require_client_cert) {
        spdlog::warn(
            "listen.data does not require client certificates: senders are not "
            "authenticated (development only)");
      }
      auto server = HttpServer::start(io_, config_.data, data_tls_, *data_api_, *workers_,
                                      body_budget_.get(), "data", request_observer());
      if (!server) {
        return fail(server.error());
      }
      data_server_ = std::move(*server);
    }
    if (config_.admin.enabled) {
      if (config_.admin.tls.client_ca.empty()) {
        return fail(Errc::kInvalidArgument,
                    "listen.admin needs client_ca: the admin API accepts admin certificates only");
      }
      auto tls = ServerTls::create(config_.admin.tls);
      if (!tls) {
        return fail(Errc::kInvalidArgument, "listen.admin: " + tls.error().message);
      }
      admin_tls_ = *tls;
      auto server = HttpServer::start(io_, config_.admin, admin_tls_, *admin_api_, *workers_,
                                      body_budget_.get(), "admin", request_observer());
      if (!server) {
        return fail(server.error());
      }
      admin_server_ = std::move(*server);
    }
    admin_api_->add_route([this](HttpRequest& req, Respond& respond) {
      if (req.path != "/admin/v1/tls/reload" || req.method != "POST") {
        return false;
      }
      Result<void> r = reload_tls(req.peer.sender());
      if (!r) {
        respond(error_response(400, "tls.reload-failed",
                               "kept the previous TLS material: " + r.error().message));
      } else {
        respond(json_response(200, R"({"status":"reloaded"})"));
      }
      return true;
    });
    auto egress = Egress::start(io_, *store_, config_.destinations, metrics_,
                                SystemClock::instance(), ferry_.get());
    if (!egress) {
      return fail(egress.error());
    }
    egress_ = std::move(*egress);
    for (const auto& sp : config_.spool_in) {
      auto w = SpoolWatcher::start(sp, *feeds_, metrics_, config_.data.max_batch_bytes);
      if (!w) {
        return fail(w.error());
      }
      spool_watchers_.emplace_back(sp, std::move(*w));
    }
    maintenance_ = std::jthread([this](std::stop_token stop) { maintenance(stop); });
    audit_->record("system", "gateway.start", config_.gateway_id,
                   "role " + config_.role + ", config " + config_.source.string());
    spdlog::info("sluiced {} ({}) up: data port {}, admin port {}, {} destinations, {} routes",
                 config_.gateway_id, config_.role, data_port(), admin_port(),
                 config_.destinations.size(), config_.routes.size());
    return {};
  }

  std::uint16_t data_port() const { return data_server_ ? data_server_->port() : 0; }
  std::string ferry_endpoint() const { return ferry_ ? ferry_->bound_endpoint() : ""; }
  std::uint16_t admin_port() const { return admin_server_ ? admin_server_->port() : 0; }

  // Drains both listeners (net::HttpServer::drain: no new requests, every request already
  // read answered with Connection: close), then stops delivery and calls `done`, which stops
  // the io_context. The wait is bounded by gateway.shutdown_timeout_ms, which must stay below
  // the unit's TimeoutStopSec (deploy/sluiced.service: 30 s) with room for close() — the
  // workers finishing their jobs and the last commit — or systemd kills sluiced mid-commit.
  // Answers to requests the store is committing are posted back to their sessions from the
  // store's completion thread, so io must keep running until those sessions have written
  // them and closed; only a bound that passed cuts them, and that is logged.
  void begin_shutdown(std::function<void()> done) {
    stopping_.store(true);
    // One strand sees the drains complete and the bound pass, so the stop happens once.
    struct Shutdown {
      explicit Shutdown(asio::io_context& io) : strand(asio::make_strand(io)), bound(strand) {}
      asio::strand<asio::io_context::executor_type> strand;
      asio::steady_timer bound;
      std::size_t draining = 0;  // listeners not drained yet; touched on the strand
    };
    auto s = std::make_shared<Shutdown>(io_);
    std::vector<HttpServer*> servers;
    if (data_server_) servers.push_back(data_server_.get());
    if (admin_server_) servers.push_back(admin_server_.get());
    auto started = std::chrono::steady_clock::now();
    asio::dispatch(s->strand, [this, s, servers, started, done = std::move(done)]() mutable {
      s->draining = servers.size();
      s->bound.expires_after(std::chrono::milliseconds(config_.shutdown_timeout_ms));
      s->bound.async_wait(
          [this, s, started, done = std::move(done)](const boost::system::error_code&) mutable {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
            if (s->draining == 0) {
              spdlog::info("listeners drained in {} ms: every request read was answered", ms);
            } else {
              log_cut(ms);
            }
            if (egress_) egress_->stop();
            done();
          });
      if (servers.empty()) s->bound.cancel();
      for (HttpServer* server : servers) {
        server->drain([s] {
          asio::post(s->strand, [s] {
            if (--s->draining == 0) s->bound.cancel();
          });
        });
      }
    });
  }

  void close() {
    maintenance_.request_stop();
    { std::lock_guard lock(maintenance_mutex_); }
    maintenance_cv_.notify_all();
    if (maintenance_.joinable()) maintenance_.join();
    {
      std::lock_guard lock(spool_mutex_);
      for (auto& [sp, w] : spool_watchers_) w->stop();
    }
    if (egress_) egress_->stop();
    // Before the workers stop: no document received after this is handed to them.
    if (ferry_) ferry_->stop();
    data_server_.reset();
    admin_server_.reset();
    if (workers_) workers_->stop();  // answers every request already taken, then joins
    {
      std::lock_guard lock(spool_mutex_);
      spool_watchers_.clear();
    }
    feeds_.reset();  // joins the feed workers: no more writes after this
    if (store_) {
      audit_->flush_refusals(true);
      audit_->record_sync("system", "gateway.stop", config_.gateway_id, "clean shutdown");
      store_->close();
    }
  }

 private:
  // What only the running half can check of a change to its run-time configuration, and the
  // parts built for it; the function returned puts them in use (RunConfigService, after the
  // new version and its audit entry are on disk).
  Result<std::function<void()>> prepare_change(const RunConfig& from, const RunConfig& to) {
    for (const auto& d : store_->stats().destinations) {
      bool kept = std::any_of(to.destinations.begin(), to.destinations.end(),
                              [&](const DestinationConfig& c) { return c.name == d.destination; });
      if (!kept && d.pending > 0) {
        return fail(Errc::kInvalidArgument,
                    "destination \"" + d.destination + "\" still has " + std::to_string(d.pending) +
                        " message(s) to deliver: they keep the routing they were stored with, so "
                        "remove it once they are delivered (or dead, and discarded)");
      }
    }
    auto plan = egress_->prepare(to.destinations);
    if (!plan) {
      return fail(plan.error());
    }
    std::shared_ptr<const ingress::FeedSet> feeds;
    if (to_toml(RunConfig{.feeds = from.feeds}) != to_toml(RunConfig{.feeds = to.feeds})) {
      auto loaded = FeedIngest::load(to.feeds, registry_);
      if (!loaded) {
        return fail(loaded.error());
      }
      feeds = std::move(*loaded);
    }
    for (const auto& sp : to.spool_in) {
      std::error_code ec;
      if (!std::filesystem::is_directory(sp.path, ec)) {
        return fail(Errc::kInvalidArgument,
                    "spool_in \"" + sp.name + "\": " + sp.path.string() + " is not a directory");
      }
    }
    Config next = with_run_config(config_, to);
    return [this, next = std::move(next), plan = std::move(*plan),
            feeds = std::move(feeds)]() mutable {
      routes_->replace(next.routes);
      authorizer_->replace(next.senders);
      ingest_->set_gate(next.ingest_options().gate);
      if (feeds) feeds_->use(std::move(feeds));
      egress_->commit(std::move(plan));
      restart_spools(next.spool_in);
    };
  }

  // Stops the spool watchers that are no longer configured the same and starts the new ones
  // (a watcher looks its feed up for every file, so a changed feed needs no restart).
  void restart_spools(const std::vector<ingress::SpoolInConfig>& wanted) {
    std::lock_guard lock(spool_mutex_);
    if (stopping_.load()) return;
    auto same = [](const ingress::SpoolInConfig& a, const ingress::SpoolInConfig& b) {
      return a.name == b.name && a.path == b.path && a.feed == b.feed && a.sender == b.sender &&
             a.owner == b.owner;
    };
    std::vector<std::pair<ingress::SpoolInConfig, std::unique_ptr<SpoolWatcher>>> kept;
    for (auto& [sp, w] : spool_watchers_) {
      bool wanted_as_is =
          std::any_of(wanted.begin(), wanted.end(), [&](const auto& x) { return same(x, sp); });
      if (wanted_as_is) {
        kept.emplace_back(sp, std::move(w));
      } else {
        w->stop();
      }
    }
    for (const auto& sp : wanted) {
      bool running =
          std::any_of(kept.begin(), kept.end(), [&](const auto& k) { return same(k.first, sp); });
      if (running) continue;
      auto w = SpoolWatcher::start(sp, *feeds_, metrics_, config_.data.max_batch_bytes);
      if (!w) {
        spdlog::critical("spool_in {} of the new run-time configuration did not start: {}", sp.name,
                         w.error().describe());
        continue;
      }
      kept.emplace_back(sp, std::move(*w));
    }
    spool_watchers_ = std::move(kept);
  }

  // The link to the other half (docs/ferry.md). What arrives on it runs through this half's
  // own pipeline as a document forwarded by the configured peer gateway — parsed, validated,
  // its signatures checked against this half's trust store, authorized, routed — and is
  // answered stored only once it is in this half's synced store.
  Result<void> start_ferry() {
    const FerryConfig& f = config_.ferry;
    auto own = ferry::load_secret_key(f.secret_key);
    if (!own) return fail(Errc::kInvalidArgument, "ferry.secret_key: " + own.error().message);
    ferry::LinkConfig lc;
    lc.public_key = own->public_key;
    lc.secret_key = own->secret_key;
    lc.gateway_id = config_.gateway_id;
    if (config_.role == "outer") {
      lc.side = ferry::Side::kOuter;
      lc.endpoint = f.listen;
      for (const auto& k : f.allowed_keys) {
        auto key = ferry::load_public_key(k);
        if (!key) return fail(Errc::kInvalidArgument, "ferry.allowed_keys: " + key.error().message);
        lc.allowed_keys.push_back(*key);
      }
    } else {
      lc.side = ferry::Side::kInner;
      lc.endpoint = f.connect;
      auto key = ferry::load_public_key(f.server_key);
      if (!key) return fail(Errc::kInvalidArgument, "ferry.server_key: " + key.error().message);
      lc.server_key = *key;
    }
    lc.credit_docs = f.credit_docs;
    lc.credit_bytes = f.credit_bytes;
    lc.max_frame_bytes =
        std::max(config_.data.max_body_bytes, config_.data.max_batch_bytes) + (1u << 20);
    lc.heartbeat_ms = f.heartbeat_ms;
    lc.stall_ms = f.stall_ms;
    lc.answer_timeout_ms = f.answer_timeout_ms;
    lc.reconnect_min_ms = f.reconnect_min_ms;
    lc.reconnect_max_ms = f.reconnect_max_ms;
    const auto sends =
        config_.role == "outer" ? ferry::Direction::kInbound : ferry::Direction::kOutbound;
    auto link = ferry::Link::start(
        lc, sends,
        [this](ferry::Received r, ferry::Reply reply) {
          on_ferried(std::move(r), std::move(reply));
        },
        [this](std::string id, ferry::AnswerFn answer) {
          on_query(std::move(id), std::move(answer));
        },
        link_audit());
    if (!link) return fail(Errc::kInvalidArgument, "[ferry] " + link.error().message);
    ferry_ = std::move(*link);
    auto slash = f.peer.find('/');
    ferry_peer_.authenticated = true;
    ferry_peer_.node = f.peer.substr(0, slash);
    ferry_peer_.system = f.peer.substr(slash + 1);
    ferry_peer_.subject = "ferry peer " + f.peer;
    api::PeerView peer;
    for (const auto& d : config_.destinations) {
      if (d.kind == delivery::SinkKind::kFerry) peer.destination = d.name;
    }
    peer.name = config_.role == "outer" ? "inner" : "outer";
    peer.ask = [this](std::string id, std::move_only_function<void(Result<api::PeerAnswer>)> done) {
      ferry_->query(std::move(id), [done = std::move(done)](Result<ferry::Answer> a) mutable {
        if (!a) {
          done(fail(a.error()));
        } else {
          done(api::PeerAnswer{a->found, std::move(a->status_json), std::move(a->receipt)});
        }
      });
    };
    if (!peer.destination.empty()) data_api_->set_peer(std::move(peer));
    admin_api_->add_route([this](HttpRequest& req, Respond& respond) {
      if (req.path != "/admin/v1/ferry" || req.method != "GET") return false;
      respond(json_response(200, ferry_status_json()));
      return true;
    });
    spdlog::info("ferry: {} {} ({} half), peer {}",
                 config_.role == "outer" ? "listening on" : "connecting to",
                 ferry_->bound_endpoint(), config_.role, f.peer);
    return {};
  }

  // What the link decides itself goes into this half's audit trail as well: a document it
  // refused before the pipeline saw it (bounded like every refusal, so a peer sending damaged
  // frames in a loop cannot grow the trail without bound), and the other half's answer to
  // every document this half sent (stored there, or refused there and so dead here).
  ferry::LinkObserver link_audit() {
    ferry::LinkObserver o;
    const std::string actor = "ferry/" + config_.ferry.peer;
    o.refused_here = [this, actor](ferry::Direction d, const std::string& id,
                                   const std::string& code, const std::string& reason) {
      audit_->record_refusal(actor, "ferry.refused", id,
                             std::string(ferry::to_string(d)) + " " + code + ": " + reason);
    };
    o.answered = [this, actor](ferry::Direction d, const std::string& id, const ferry::Sent& s) {
      if (s.kind == ferry::Sent::Kind::kStored) {
        audit_->record(actor, "ferry.sent", id,
                       std::string(ferry::to_string(d)) + " stored by " + config_.ferry.peer);
      } else if (s.kind == ferry::Sent::Kind::kRefused) {
        audit_->record(actor, "ferry.refused-by-peer", id,
                       std::string(ferry::to_string(d)) + " " + s.code + ": " + s.reason);
      }
    };
    return o;
  }

  // On the link thread: hands the document to a worker, which runs the pipeline.
  void on_ferried(ferry::Received r, ferry::Reply reply) {
    auto answer = std::make_shared<ferry::Reply>(std::move(reply));
    auto job = [this, r = std::move(r), answer]() mutable {
      pipeline::Submission sub;
      sub.bytes = std::move(r.payload);
      sub.peer = ferry_peer_;
      sub.source = std::string("ferry:") + std::string(ferry::to_string(r.direction));
      sub.arrived = r.direction == ferry::Direction::kInbound ? pipeline::Crossing::kInbound
                                                              : pipeline::Crossing::kOutbound;
      ingest_->submit(std::move(sub), [this, id = r.message_id, direction = r.direction,
                                       answer](pipeline::IngestResult result) {
        auto verdict = verdict_of(id, direction, result);
        if (result && !result->duplicate) {
          // Every crossing is in this half's audit trail before the other half is told it
          // is stored here.
          audit_->record_then("ferry/" + config_.ferry.peer, "ferry.received", id,
                              std::string(ferry::to_string(direction)) + " " + result->doc_type +
                                  " from " + result->sender,
                              [answer, verdict = std::move(verdict)](Result<void>) mutable {
                                (*answer)(std::move(verdict));
                              });
          return;
        }
        (*answer)(std::move(verdict));
      });
    };
    if (!workers_->try_post(std::move(job))) {
      (*answer)(ferry::Verdict{ferry::Fate::kRetry, "ferry.busy",
                               "the receiving half's workers are all busy"});
    }
  }

  // The other half asks what became of a document it sent here: answered from the store on
  // a worker, for documents that arrived over the ferry only.
  void on_query(std::string id, ferry::AnswerFn answer) {
    auto shared = std::make_shared<ferry::AnswerFn>(std::move(answer));
    auto job = [this, id, shared] {
      ferry::Answer a;
      auto s = store_->status(id);
      if (s) {
        auto source = s->attributes.find("source");
        a.found = source != s->attributes.end() && source->second.starts_with("ferry:");
      }
      if (a.found) {
        a.status_json = api::status_json(*s);
        if (s->state == "delivered" && signer_) {
          if (auto r = api::delivery_receipt(*signer_, *s)) a.receipt = std::move(*r);
        }
      }
      (*shared)(std::move(a));
    };
    if (!workers_->try_post(std::move(job))) {
      (*shared)(
          ferry::Answer{.found = true, .status_json = R"({"error":"the answering half is busy"})"});
    }
  }

  ferry::Verdict verdict_of(const std::string& id, ferry::Direction direction,
                            const pipeline::IngestResult& result) {
    using pipeline::RefusalKind;
    if (result) {
      return {result->duplicate ? ferry::Fate::kDuplicate : ferry::Fate::kStored, "", ""};
    }
    const auto& rej = result.error();
    const bool later = rej.kind == RefusalKind::kBusy || rej.kind == RefusalKind::kDeadline ||
                       rej.kind == RefusalKind::kInternal;
    if (!later) {
      // Stopped at this half: written down here (the quarantine keeps invalid input), and
      // the answer makes the sending half mark it dead with the same reason.
      audit_->record(
          "ferry/" + config_.ferry.peer, "ferry.refused", id,
          std::string(ferry::to_string(direction)) + " " + rej.code + ": " + rej.message);
    }
    return {later ? ferry::Fate::kRetry : ferry::Fate::kRefused, rej.code, rej.message};
  }

  std::string ferry_status_json() const {
    auto s = ferry_->status();
    boost::json::object o{
        {"role", config_.role},
        {"up", s.up},
        {"state", s.state},
        {"endpoint", s.endpoint},
        {"peer", config_.ferry.peer},
        {"peerGateway", s.peer_gateway},
        {"peerKey", s.peer_key},
        {"lastHeardMs", s.last_heard_ms},
        {"upSinceMs", s.up_since_ms},
        {"inFlight", s.in_flight},
        {"waiting", s.waiting},
        {"creditDocs", s.credit_docs},
        {"creditBytes", s.credit_bytes},
        {"receivedInProgress", s.received_in_progress},
        {"sent", s.sent_total},
        {"stored", s.stored_total},
        {"refused", s.refused_total},
        {"retried", s.retried_total},
        {"received", s.received_total},
        {"receivedRefused", s.received_refused_total},
        {"zapDenied", s.zap_denied_total},
        {"linkDowns", s.link_downs_total},
        {"lastError", s.last_error},
    };
    boost::json::object backlog;
    const auto run = run_config_->current();
    for (const auto& d : store_->stats().destinations) {
      for (const auto& dc : run->destinations) {
        if (dc.name == d.destination && dc.kind == delivery::SinkKind::kFerry) {
          backlog[d.destination] = d.pending;
        }
      }
    }
    o["backlog"] = std::move(backlog);
    return boost::json::serialize(o);
  }

  void maintenance(std::stop_token stop) {
    std::unique_lock lock(maintenance_mutex_);
    while (!stop.stop_requested()) {
      maintenance_cv_.wait_for(lock, std::chrono::milliseconds(config_.purge_interval_ms),
                               [&] { return stop.stop_requested(); });
      if (stop.stop_requested()) break;
      audit_->flush_refusals();
      auto purged = store_->purge_expired_history();
      if (!purged) {
        spdlog::warn("retention purge failed: {}", purged.error().describe());
      } else if (*purged > 0) {
        spdlog::info("retention purge removed {} delivered messages", *purged);
      }
    }
  }

  // The shutdown bound passed: say what is being cut, per listener.
  void log_cut(std::int64_t ms) {
    auto report = [&](const HttpServer* server, const char* name) {
      if (server == nullptr) return;
      const auto& c = server->counters();
      auto open = c.open_connections.load();
      if (open == 0) return;
      spdlog::warn(
          "{} listener not drained after {} ms (gateway.shutdown_timeout_ms {}): {} connections "
          "cut, {} of them with a request being handled whose answer is lost (a document it "
          "stored is returned again to a resend with the same SenderMessageId)",
          name, ms, config_.shutdown_timeout_ms, open, c.in_flight.load());
    };
    report(data_server_.get(), "data");
    report(admin_server_.get(), "admin");
  }

 public:
  Result<void> reload_tls(const std::string& actor) {
    std::lock_guard lock(reload_mutex_);
    Result<void> r;
    if (data_tls_) r = data_tls_->reload();
    if (r && admin_tls_) r = admin_tls_->reload();
    if (r && trust_) r = trust_->reload();
    audit_->record_sync(actor, "tls.reload", "certificates and CRLs",
                        r ? std::string("ok") : r.error().message);
    if (r) {
      spdlog::info("{}: TLS certificates, keys and CRLs reloaded", actor);
    } else {
      spdlog::error("{}: TLS reload failed, the previous material stays in use: {}", actor,
                    r.error().message);
    }
    return r;
  }

 private:
  // The separated admin roles from [[admin_role]]; without any, every OU=admin certificate
  // is a system admin and no one may read the audit trail or reload the trust material.
  api::RoleMap admin_roles() const {
    if (!config_.admin_roles.empty()) return api::RoleMap(config_.admin_roles);
    spdlog::warn(
        "no [[admin_role]] configured: every admin certificate (OU=admin) has the system role, "
        "and no certificate has the security, audit or monitor role");
    return api::RoleMap({{"admin/*", api::Role::kSystem}});
  }

  // Why this half should not be sent new documents now (/readyz): empty when it takes them.
  std::vector<std::string> not_ready() const {
    std::vector<std::string> why;
    auto st = store_->stats();
    if (st.read_only) why.emplace_back(api::kReadOnlyReason);
    // Not ready from 95 % of the bound: the last few documents that fit are not worth a
    // load balancer's traffic, and a document that no longer fits is answered 503.
    if (st.queued_bytes * 100 >= config_.store.max_queued_bytes * 95) {
      why.push_back("the store is full: " + std::to_string(st.queued_bytes) + " of " +
                    std::to_string(config_.store.max_queued_bytes) +
                    " queued bytes (store.max_queued_mb); new documents are answered 503");
    }
    if (st.queued_messages * 100 >= config_.store.max_queued_messages * 95) {
      why.push_back("the store is full: " + std::to_string(st.queued_messages) + " of " +
                    std::to_string(config_.store.max_queued_messages) +
                    " queued messages (store.max_queued_messages)");
    }
    if (stopping_.load()) why.emplace_back("sluiced is stopping");
    return why;
  }

  // One access-log line per answered request (info level: method, path without its query,
  // status, sender, bytes in and out, duration; never a body or a query string), and the
  // time every document request (POST) took to be answered.
  net::RequestObserver request_observer() {
    return [this](const net::RequestRecord& r) {
      spdlog::info("access {} {} {} {} {} {} in={} out={} {:.1f}ms", r.listener, r.remote, r.method,
                   r.path, r.status, r.sender, r.bytes_in, r.bytes_out, r.seconds * 1000);
      if (r.method == "POST" && r.listener == "data") {
        metrics_.observe("sluice_accept_duration_seconds", "listener=\"data\"", r.seconds);
      }
    };
  }

  void render_gauges(std::string& out) {
    auto st = store_->stats();
    if (ferry_) {
      auto f = ferry_->status();
      Metrics::sample(out, "sluice_ferry_up", f.up ? 1 : 0);
      Metrics::sample(out, "sluice_ferry_in_flight", f.in_flight);
      Metrics::sample(out, "sluice_ferry_waiting", f.waiting);
      Metrics::sample(out, "sluice_ferry_received_in_progress", f.received_in_progress);
      Metrics::sample(out, "sluice_ferry_sent_total", f.sent_total);
      Metrics::sample(out, "sluice_ferry_stored_total", f.stored_total);
      Metrics::sample(out, "sluice_ferry_refused_total", f.refused_total);
      Metrics::sample(out, "sluice_ferry_received_total", f.received_total);
      Metrics::sample(out, "sluice_ferry_received_refused_total", f.received_refused_total);
      Metrics::sample(out, "sluice_ferry_zap_denied_total", f.zap_denied_total);
      Metrics::sample(out, "sluice_ferry_link_downs_total", f.link_downs_total);
    }
    Metrics::header(out, "sluice_queue_pending");
    for (const auto& d : st.destinations) {
      out += "sluice_queue_pending{destination=\"" + d.destination + "\"} " +
             std::to_string(d.pending) + "\n";
    }
    Metrics::sample(out, "sluice_queue_bytes", st.queued_bytes);
    Metrics::sample(out, "sluice_store_commits_total", st.commits);
    Metrics::sample(out, "sluice_store_map_bytes", st.map_bytes);
    Metrics::sample(out, "sluice_store_map_used_bytes", st.map_high_water_bytes);
    const std::uint64_t limit = config_.store.max_queued_bytes;
    Metrics::sample(out, "sluice_store_queued_bytes_limit", limit);
    Metrics::header(out, "sluice_store_fill_ratio");
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.4f",
                  limit == 0 ? 0.0
                             : std::min(1.0, static_cast<double>(st.queued_bytes) /
                                                 static_cast<double>(limit)));
    out += std::string("sluice_store_fill_ratio ") + ratio + "\n";
    Metrics::sample(out, "sluice_quarantine_entries", quarantine_->count());
    Metrics::sample(out, "sluice_quarantine_bytes", quarantine_->bytes());
    Metrics::sample(out, "sluice_store_read_only", st.read_only ? 1 : 0);
    if (body_budget_) Metrics::sample(out, "sluice_body_bytes_in_flight", body_budget_->used());
    // Per listener: a family's header once, then one sample per listener.
    std::vector<std::pair<std::string, const net::ServerCounters*>> listeners;
    if (data_server_) listeners.emplace_back("data", &data_server_->counters());
    if (admin_server_) listeners.emplace_back("admin", &admin_server_->counters());
    auto per_listener = [&](const char* name, auto value) {
      Metrics::header(out, name);
      for (const auto& [listener, c] : listeners) {
        out += std::string(name) + "{listener=\"" + listener + "\"} " + std::to_string(value(*c)) +
               "\n";
      }
    };
    if (!listeners.empty()) {
      per_listener("sluice_connections_open",
                   [](const net::ServerCounters& c) { return c.open_connections.load(); });
      per_listener("sluice_connections_refused_total",
                   [](const net::ServerCounters& c) { return c.connections_refused.load(); });
      per_listener("sluice_connections_evicted_total",
                   [](const net::ServerCounters& c) { return c.connections_evicted.load(); });
      per_listener("sluice_body_budget_refusals_total",
                   [](const net::ServerCounters& c) { return c.budget_refusals.load(); });
      per_listener("sluice_tls_handshake_failures_total",
                   [](const net::ServerCounters& c) { return c.handshake_failures.load(); });
    }
  }

  asio::io_context& io_;
  Config config_;
  std::unique_ptr<queue::Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<xml::Validator> validator_;
  std::unique_ptr<Authorizer> authorizer_;
  std::shared_ptr<trust::TrustStore> trust_;
  std::unique_ptr<trust::DocumentSigner> signer_;
  std::unique_ptr<trust::SenderSignatureVerifier> sender_sigs_;
  std::unique_ptr<trust::DocumentVerifier> peer_sigs_;
  std::unique_ptr<Quarantine> quarantine_;
  adapters::Registry registry_;
  std::unique_ptr<FeedIngest> feeds_;
  std::mutex spool_mutex_;  // run-time changes and close()
  std::vector<std::pair<ingress::SpoolInConfig, std::unique_ptr<SpoolWatcher>>>
      spool_watchers_;  // Guarded by spool_mutex_.
  std::unique_ptr<ConfigVersions> versions_;
  std::unique_ptr<RunConfigService> run_config_;
  Metrics metrics_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<DataApi> data_api_;
  std::unique_ptr<AdminApi> admin_api_;
  std::shared_ptr<ServerTls> data_tls_;
  std::shared_ptr<ServerTls> admin_tls_;
  std::unique_ptr<net::BodyBudget> body_budget_;  // outlives the servers (declared before)
  std::atomic<bool> stopping_{false};
  std::mutex reload_mutex_;  // one reload at a time (SIGHUP and the admin API)
  std::unique_ptr<HttpServer> data_server_;
  std::unique_ptr<HttpServer> admin_server_;
  std::unique_ptr<ferry::Link> ferry_;
  PeerIdentity ferry_peer_;  // who documents arriving on the link come from
  std::unique_ptr<Egress> egress_;
  std::mutex maintenance_mutex_;
  std::condition_variable_any maintenance_cv_;
  std::jthread maintenance_;
  // Last, so it is stopped first: its jobs use everything above.
  std::unique_ptr<WorkerPool> workers_;
};

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
App::~App() = default;

Result<std::unique_ptr<App>> App::start(asio::io_context& io, const Config& config) {
  auto impl = std::make_unique<Impl>(io, config);
  if (auto r = impl->start(); !r) {
    return fail(r.error());
  }
  return std::unique_ptr<App>(new App(std::move(impl)));
}

std::uint16_t App::data_port() const { return impl_->data_port(); }
std::uint16_t App::admin_port() const { return impl_->admin_port(); }
std::string App::ferry_endpoint() const { return impl_->ferry_endpoint(); }
std::vector<std::string> check_config_files(const Config& config) {
  std::vector<std::string> problems;
  // Each problem names its key and, where the file says it, the line: of the file's own key,
  // or of the section when the problem belongs to several files (a listener's TLS material).
  auto check = [&](const std::string& key, const std::string& at, Result<void> r) {
    if (r) return;
    std::string line = key;
    if (const int n = config.line_of(at); n > 0) {
      line += " (line ";
      line += std::to_string(n);
      line += ")";
    }
    line += ": ";
    line += r.error().message;
    problems.push_back(std::move(line));
  };
  auto readable = [](const std::filesystem::path& p) -> Result<void> {
    std::ifstream in(p, std::ios::binary);
    if (!in) return fail(Errc::kNotFound, p.string() + " cannot be read");
    return {};
  };
  xml::initialize(config.schema_dir);
  check("gateway.schema_dir", "gateway.schema_dir", [&]() -> Result<void> {
    auto v = xml::Validator::load(config.schema_dir);
    if (!v) return fail(v.error());
    return {};
  }());
  for (const auto& [key, listener] :
       {std::pair<std::string, const net::ListenerConfig*>{"listen.data", &config.data},
        std::pair<std::string, const net::ListenerConfig*>{"listen.admin", &config.admin}}) {
    if (!listener->enabled) continue;
    check(key, key, [&]() -> Result<void> {
      auto tls = ServerTls::create(listener->tls);
      if (!tls) return fail(tls.error());
      return {};
    }());
  }
  if (config.signing.enabled) {
    check("signing.trust", "signing.trust", [&]() -> Result<void> {
      auto t = trust::TrustStore::load(config.signing.trust, config.signing.crls);
      if (!t) return fail(t.error());
      return {};
    }());
    check("signing.cert", "signing.cert", [&]() -> Result<void> {
      auto sg =
          trust::DocumentSigner::create(config.signing.cert, config.signing.key, config.gateway_id);
      if (!sg) return fail(sg.error());
      return {};
    }());
  }
  for (std::size_t i = 0; i < config.feeds.size(); ++i) {
    const auto& f = config.feeds[i];
    const auto at = "feed[" + std::to_string(i) + "].mapping";
    check("feed " + f.name + " mapping", at, [&]() -> Result<void> {
      auto m = adapters::load_mapping(f.mapping);
      if (!m) return fail(m.error());
      return {};
    }());
  }
  for (std::size_t i = 0; i < config.destinations.size(); ++i) {
    const auto& d = config.destinations[i];
    for (const auto& [what, file] :
         {std::pair<const char*, const std::filesystem::path*>{"ca", &d.ca},
          {"client_cert", &d.client_cert},
          {"client_key", &d.client_key}}) {
      if (!file->empty()) {
        check("destination " + d.name + " " + what,
              "destination[" + std::to_string(i) + "]." + what, readable(*file));
      }
    }
  }
  if (config.ferry.enabled()) {
    check("ferry.secret_key", "ferry.secret_key", [&]() -> Result<void> {
      auto k = ferry::load_secret_key(config.ferry.secret_key);
      if (!k) return fail(k.error());
      return {};
    }());
    auto pub = [&](const std::string& key, const std::filesystem::path& file) {
      check(key, key, [&]() -> Result<void> {
        auto k = ferry::load_public_key(file);
        if (!k) return fail(k.error());
        return {};
      }());
    };
    if (!config.ferry.server_key.empty()) pub("ferry.server_key", config.ferry.server_key);
    for (const auto& k : config.ferry.allowed_keys) pub("ferry.allowed_keys", k);
  }
  // The store's directory, or the nearest ancestor that exists (sluiced creates the rest),
  // must be writable by this user; the check itself creates nothing.
  check("store.path", "store.path", [&]() -> Result<void> {
    std::filesystem::path p = std::filesystem::absolute(config.store.path);
    std::error_code ec;
    while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) {
      p = p.parent_path();
    }
    if (!std::filesystem::is_directory(p, ec)) {
      return fail(Errc::kIo, p.string() + " is not a directory");
    }
    if (::access(p.c_str(), W_OK) != 0) {
      return fail(Errc::kIo, p.string() + " is not writable by this user");
    }
    return {};
  }());
  return problems;
}

void App::begin_shutdown(std::function<void()> done) { impl_->begin_shutdown(std::move(done)); }
Result<void> App::reload_tls(const std::string& actor) { return impl_->reload_tls(actor); }
void App::close() { impl_->close(); }

}  // namespace sluice::gateway
