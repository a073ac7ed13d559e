// sluice-reliability: the fault run. One state directory, one in-process sink, and one sluiced
// that is killed, starved of its disk, cut off from its receiver and stopped, in that order,
// while senders keep posting; at the end every document a sender was told was accepted (202)
// must have reached the sink.
//
//   sluice-reliability --cycles 300 --json reliability.json      (the full run, ~6 min)
//
// Phases, in order, against the same store (tests/reliability/README.md):
//   kill        --cycles times: post for a random --min-kill-ms..--max-kill-ms, SIGKILL
//               sluiced, start it again on the same store.
//   store-full  with the sync shim preloaded, every fdatasync fails from mid-load on:
//               /v1/health must answer 503 and the sink must see no redelivery storm; then
//               the disk is "freed" and sluiced restarted.
//   dest-503    the sink answers 503 for --outage-s: attempts are counted, no message may die.
//   sigterm     SIGTERM under load: exit 0, its time measured, every answer owed arrives;
//               then --sigterm-after-ready restarts stopped the moment they are ready.
//   drain       the senders stop; every acknowledged document must arrive.
//
// A sender resends the same SenderMessageId until it gets an answer. After every restart it
// also resends the last documents an earlier process acknowledged: a 202 whose commit did not
// survive the crash would be answered with a new MessageId (a mismatch) instead of the
// original one. Exit status 1 when anything acknowledged is missing, a resend was answered
// with another id, a message is dead, or a phase's own check failed (listed in "problems");
// "warnings" name defects that lose nothing acknowledged and show only in a timing window.
#include <signal.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "net/client.h"
#include "tests/support/harness.h"
#include "tests/support/process.h"
#include "tools/sink/sink.h"

namespace sluice::reliability {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Set by SIGINT/SIGTERM to the driver: every wait returns early and the run winds down
// (stopping its sluiced) instead of leaving a daemon behind.
std::atomic<bool> g_interrupted{false};

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

void pause(milliseconds d) {
  auto until = Clock::now() + d;
  while (!g_interrupted.load() && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<milliseconds>(milliseconds(20), d));
  }
}

enum Phase { kKill, kStoreFull, kDest503, kSigterm, kDrain, kPhases };
constexpr std::array<const char*, kPhases> kPhaseNames = {"kill", "store-full", "dest-503",
                                                          "sigterm", "drain"};

struct Options {
  fs::path sluiced = test::binary_dir() / "gateway" / "sluiced";
  fs::path pki;  // empty: the build tree's development PKI (generated when missing)
  fs::path syncshim =
#ifdef SLUICE_SYNCSHIM_PATH
      SLUICE_SYNCSHIM_PATH;
#else
      "";
#endif
  fs::path dir = fs::temp_directory_path() / "sluice-reliability";
  fs::path json_out;  // empty: <dir>/summary.json
  int cycles = 300;
  int clients = 8;
  int min_kill_ms = 200;
  int max_kill_ms = 1500;
  int store_full_s = 3;
  int outage_s = 5;
  int sigterm_load_ms = 1000;
  int sigterm_after_ready = 10;
  int drain_timeout_s = 180;
  int cases_per_client = 4;
  int resend_last = 4;
  int verify_sample = 500;
  int concurrency = 4;
  std::uint64_t seed = 0;
};

// What a phase did, as its senders saw it. Counted into the phase current when the answer came.
struct Counters {
  std::atomic<std::uint64_t> acknowledged{0};  // SenderMessageIds answered 202 for the first time
  std::atomic<std::uint64_t> recovered{0};     // of those, a resend after a lost answer: duplicate
  std::atomic<std::uint64_t> unexpected_dup{0};    // duplicate although no attempt had failed
  std::atomic<std::uint64_t> transport_errors{0};  // no answer (killed, refused while down, closed)
  std::atomic<std::uint64_t> busy{0};              // 503
  std::atomic<std::uint64_t> timeouts{0};          // 504
  std::atomic<std::uint64_t> server_errors{0};     // other 5xx
  std::atomic<std::uint64_t> refused{0};           // 4xx: the document was given up
  std::atomic<std::uint64_t> resend_checks{0};     // acknowledged documents resent after a restart
  std::atomic<std::uint64_t> mismatches{0};        // ... answered with another id, or not duplicate

  json::object to_json() const {
    return {{"acknowledged", acknowledged.load()},
            {"recoveredAnswers", recovered.load()},
            {"unexpectedDuplicates", unexpected_dup.load()},
            {"transportErrors", transport_errors.load()},
            {"answered503", busy.load()},
            {"answered504", timeouts.load()},
            {"answered5xx", server_errors.load()},
            {"refused4xx", refused.load()},
            {"resendChecks", resend_checks.load()},
            {"mismatches", mismatches.load()}};
  }
};

// The posted document: the shipped case.accept sample with SenderMessageId "rl-<client>-<seq>"
// and CaseId "RLCASE-<client>-<seq mod cases>", so that each client feeds a few ordered chains
// (events of one case must reach the destination in order) and the sink can tell which
// sender's document it received.
class Documents {
 public:
  explicit Documents(int cases) : cases_(cases) {
    tmpl_ = test::sample("case.accept/valid-1.xml", "@@SMID@@");
    auto a = tmpl_.find("<case:CaseId>") + std::string("<case:CaseId>").size();
    tmpl_.replace(a, tmpl_.find("</case:CaseId>") - a, "@@CASE@@");
    smid_at_ = tmpl_.find("@@SMID@@");
    case_at_ = tmpl_.find("@@CASE@@");
  }
  static std::string smid(int client, std::uint64_t seq) {
    return "rl-" + std::to_string(client) + "-" + std::to_string(seq);
  }
  std::string body(int client, std::uint64_t seq) const {
    std::string doc = tmpl_;
    // The later placeholder first, so that the earlier one's offset still holds.
    doc.replace(case_at_, 8,
                "RLCASE-" + std::to_string(client) + "-" + std::to_string(seq % cases_));
    doc.replace(smid_at_, 8, smid(client, seq));
    return doc;
  }
  // "rl-<client>-<seq>" back into its numbers; false for anything else.
  static bool parse(const std::string& smid, int& client, std::uint64_t& seq) {
    unsigned long long s = 0;
    return std::sscanf(smid.c_str(), "rl-%d-%llu", &client, &s) == 2 && (seq = s, true);
  }

 private:
  int cases_;
  std::string tmpl_;
  std::size_t smid_at_ = 0, case_at_ = 0;
};

struct Acked {
  std::string message_id;
  Phase phase;
};

// Every SenderMessageId a sender was told was accepted, with the MessageId it was told.
class Ledger {
 public:
  void record(const std::string& smid, const std::string& id, Phase phase) {
    std::lock_guard lock(mutex_);
    acked_.emplace(smid, Acked{id, phase});
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return acked_.size();
  }
  template <class F>
  void for_each(F f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [smid, a] : acked_) f(smid, a);
  }
  std::string id_of(const std::string& smid) const {
    std::lock_guard lock(mutex_);
    auto it = acked_.find(smid);
    return it == acked_.end() ? std::string() : it->second.message_id;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Acked> acked_;  // Guarded by mutex_.
};

// What reached the sink: MessageId -> SenderMessageId of each first arrival, and whether the
// first arrivals of each case came in the order the sender posted them.
class Deliveries {
 public:
  explicit Deliveries(int cases) : cases_(cases) {}

  void on_message(const std::string& id, const std::string& body) {
    std::string smid;
    auto a = body.find("SenderMessageId>");
    if (a != std::string::npos) {
      a += std::string("SenderMessageId>").size();
      smid = body.substr(a, body.find('<', a) - a);
    }
    std::lock_guard lock(mutex_);
    smid_of_.emplace(id, smid);
    int client = 0;
    std::uint64_t seq = 0;
    if (Documents::parse(smid, client, seq)) {
      auto key = std::to_string(client) + "/" + std::to_string(seq % cases_);
      auto [it, fresh] = last_seq_.emplace(key, seq);
      if (!fresh) {
        if (seq < it->second) {
          order_violations_ += 1;
          if (order_samples_.size() < 5) {
            order_samples_.push_back(smid + " after rl-" + std::to_string(client) + "-" +
                                     std::to_string(it->second));
          }
        } else {
          it->second = seq;
        }
      }
    }
  }
  bool has(const std::string& id) const {
    std::lock_guard lock(mutex_);
    return smid_of_.contains(id);
  }
  std::unordered_map<std::string, std::string> snapshot() const {
    std::lock_guard lock(mutex_);
    return smid_of_;
  }
  std::uint64_t order_violations() const {
    std::lock_guard lock(mutex_);
    return order_violations_;
  }
  std::vector<std::string> order_samples() const {
    std::lock_guard lock(mutex_);
    return order_samples_;
  }

 private:
  int cases_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::string> smid_of_;     // Guarded by mutex_.
  std::unordered_map<std::string, std::uint64_t> last_seq_;  // Guarded by mutex_.
  std::uint64_t order_violations_ = 0;                       // Guarded by mutex_.
  std::vector<std::string> order_samples_;                   // Guarded by mutex_.
};

// The sink on its own io thread, for the whole run: it outlives every sluiced, as a receiving
// system does, so a redelivery after a crash shows up as a duplicate.
class SinkThread {
 public:
  SinkThread(tools::SinkOptions options, Deliveries& deliveries) {
    sink_ = tools::Sink::start(io_, std::move(options),
                               [&deliveries](const std::string& id, const std::string& body) {
                                 deliveries.on_message(id, body);
                               });
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  ~SinkThread() {
    sink_.reset();
    io_.stop();
    thread_.join();
  }
  tools::Sink& sink() { return *sink_; }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<tools::Sink> sink_;
  std::thread thread_;
};

// A client of the running sluiced, authenticated as `cert_name` of the development PKI.
std::unique_ptr<net::HttpsClient> make_client(const fs::path& pki, std::uint16_t port,
                                              const std::string& cert_name) {
  net::ClientOptions o;
  o.host = "localhost";
  o.port = std::to_string(port);
  o.ca = pki / "ca-bundle.pem";
  o.cert = pki / (cert_name + ".chain.pem");
  o.key = pki / (cert_name + ".key.pem");
  // Longer than sluiced's own deadline for a request (handler_timeout_ms, 30 s), so that only
  // a hung gateway times out; a killed one shows at once, as a reset.
  o.timeout = std::chrono::seconds(35);
  return std::make_unique<net::HttpsClient>(o);
}

// sluiced on the run's one configuration and store, started and stopped again and again.
class Daemon {
 public:
  struct Exit {
    std::int64_t ms = 0;
    int status = 0;  // wait status; -1 when it had to be killed after the bound
  };

  Daemon(fs::path binary, fs::path dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}

  // Starts it (with `env` added to the environment) and waits for its ready file.
  Result<void> start(std::vector<std::string> env = {}) {
    auto ready = dir_ / "ready.json";
    std::error_code ec;
    fs::remove(ready, ec);
    auto began = Clock::now();
    try {
      process_ = std::make_unique<test::Process>(
          std::vector<std::string>{binary_.string(), "--config", (dir_ / "sluiced.toml").string(),
                                   "--ready-file", ready.string()},
          dir_ / "sluiced.log", std::move(env));
    } catch (const std::exception& e) {
      return fail(Errc::kIo, e.what());
    }
    // A store of a few hundred thousand messages is reopened in well under a second; the
    // bound is for a machine that is busy with other work.
    auto deadline = began + std::chrono::seconds(60);
    while (!fs::exists(ready)) {
      if (!process_->running()) {
        return fail(Errc::kUnavailable,
                    "sluiced exited before it was ready; see " + (dir_ / "sluiced.log").string());
      }
      if (Clock::now() > deadline || g_interrupted.load()) {
        process_->stop(SIGKILL);
        return fail(Errc::kTimeout, "sluiced was not ready within 60 s");
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    starts_ms_.push_back(ms_since(began));
    std::string r = test::read_text(ready);
    data_port_ = static_cast<std::uint16_t>(std::stoi(test::json_field(r, "dataPort")));
    admin_port_ = static_cast<std::uint16_t>(std::stoi(test::json_field(r, "adminPort")));
    return {};
  }

  // Sends `sig` and waits for the exit (bounded: SIGTERM must not take longer than the
  // unit's TimeoutStopSec, 30 s).
  Exit stop(int sig) {
    if (!process_) return {};
    auto began = Clock::now();
    int status = process_->stop(sig, std::chrono::seconds(30));
    Exit e{ms_since(began), status};
    process_.reset();
    return e;
  }

  bool running() const { return process_ != nullptr; }
  std::uint16_t data_port() const { return data_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  const std::vector<std::int64_t>& starts_ms() const { return starts_ms_; }

 private:
  fs::path binary_, dir_;
  std::unique_ptr<test::Process> process_;
  std::uint16_t data_port_ = 0, admin_port_ = 0;
  std::vector<std::int64_t> starts_ms_;
};

// The senders: `clients` threads, each posting its own documents one after the other on a
// kept-alive mTLS connection, resending a document until it is answered.
class Load {
 public:
  Load(const Options& o, const fs::path& pki, const Documents& docs, Ledger& ledger,
       std::array<Counters, kPhases>& counters, std::atomic<int>& phase)
      : o_(o), pki_(pki), docs_(docs), ledger_(ledger), counters_(counters), phase_(phase) {}

  ~Load() {
    aborted_.store(true);
    join();
  }

  // A new sluiced answers on `data_port`: clients reconnect there, and what they were told
  // by earlier processes is now worth checking.
  void publish(std::uint16_t data_port) {
    port_.store(data_port);
    generation_.fetch_add(1);
  }

  void start() {
    for (int c = 0; c < o_.clients; ++c) threads_.emplace_back([this, c] { client_main(c); });
  }

  // Each client finishes the document it has in hand (answered, not abandoned) and stops.
  // Only while a sluiced runs: until then a client keeps resending.
  void stop() {
    stopping_.store(true);
    join();
  }
  // Stops at once (no sluiced will answer again).
  void abort() {
    aborted_.store(true);
    join();
  }

  std::vector<std::string> mismatch_samples() const {
    std::lock_guard lock(mutex_);
    return mismatch_samples_;
  }
  std::vector<std::string> refusal_samples() const {
    std::lock_guard lock(mutex_);
    return refusal_samples_;
  }

  struct Answer {
    bool accepted = false;
    unsigned status = 0;
    std::string message_id;
    bool duplicate = false;
    bool after_failure = false;  // an earlier attempt of this document got no answer
  };

  struct Connection {
    std::unique_ptr<net::HttpsClient> client;
    std::uint64_t generation = 0;
  };

  // Posts until sluiced answers something other than 5xx (or the run is interrupted).
  Answer post(Connection& conn, const std::string& body) {
    Answer a;
    for (;;) {
      if (aborted_.load() || g_interrupted.load()) return a;
      auto gen = generation_.load();
      if (!conn.client || conn.generation != gen) {
        conn.client = make_client(pki_, port_.load(), "sender-440604-approval");
        conn.generation = gen;
      }
      auto r = conn.client->request("POST", "/v1/messages", body);
      Counters& k = counters_[phase_.load()];
      if (!r) {
        // Killed mid-request, refused while it is down, or closed by a drain: the same
        // document again, on a new connection (to the new process once there is one).
        k.transport_errors += 1;
        a.after_failure = true;
        conn.client.reset();
        pause(milliseconds(20));
        continue;
      }
      if (r->status >= 500) {
        // Busy, store full or read-only, deadline: try again shortly. Retry-After (60 s for a
        // read-only store) is not honoured: the driver itself restarts the gateway and wants
        // to see at once when it answers again.
        (r->status == 503 ? k.busy : r->status == 504 ? k.timeouts : k.server_errors) += 1;
        pause(milliseconds(100));
        continue;
      }
      a.status = r->status;
      if (r->status == 202) {
        boost::system::error_code ec;
        auto v = json::parse(r->body, ec);
        const json::object* obj = ec ? nullptr : v.if_object();
        if (obj != nullptr && obj->contains("messageId") && obj->at("messageId").is_string()) {
          a.accepted = true;
          a.message_id = std::string(obj->at("messageId").as_string());
          a.duplicate = obj->contains("duplicate") && obj->at("duplicate").is_bool() &&
                        obj->at("duplicate").as_bool();
          return a;
        }
      }
      k.refused += 1;
      std::lock_guard lock(mutex_);
      if (refusal_samples_.size() < 5) {
        refusal_samples_.push_back(std::to_string(r->status) + " " + r->body.substr(0, 300));
      }
      return a;
    }
  }

 private:
  struct Recent {
    std::string smid, message_id;
    std::uint64_t generation = 0;
    std::uint64_t seq = 0;
  };

  void client_main(int c) {
    Connection conn;
    std::deque<Recent> recent;  // the last acknowledged documents, newest last
    std::uint64_t seen_generation = generation_.load();
    for (std::uint64_t seq = 0; !stopping_.load() && !aborted_.load(); ++seq) {
      if (auto gen = generation_.load(); gen != seen_generation) {
        seen_generation = gen;
        // What a process that is gone acknowledged must have outlived it: resend it.
        std::erase_if(recent, [&](const Recent& r) {
          if (r.generation >= gen) return false;
          check_resend(conn, c, r);
          return true;
        });
      }
      Answer a = post(conn, docs_.body(c, seq));
      if (!a.accepted) continue;  // refused (counted) or interrupted
      Counters& k = counters_[phase_.load()];
      Phase p = static_cast<Phase>(phase_.load());
      ledger_.record(Documents::smid(c, seq), a.message_id, p);
      k.acknowledged += 1;
      if (a.duplicate) (a.after_failure ? k.recovered : k.unexpected_dup) += 1;
      // conn.generation: the process whose connection carried the answer.
      recent.push_back({Documents::smid(c, seq), a.message_id, conn.generation, seq});
      while (recent.size() > static_cast<std::size_t>(o_.resend_last)) recent.pop_front();
    }
  }

  void check_resend(Connection& conn, int c, const Recent& r) {
    Answer a = post(conn, docs_.body(c, r.seq));
    if (!a.accepted) return;
    Counters& k = counters_[phase_.load()];
    k.resend_checks += 1;
    if (a.message_id != r.message_id || !a.duplicate) {
      k.mismatches += 1;
      std::lock_guard lock(mutex_);
      if (mismatch_samples_.size() < 10) {
        mismatch_samples_.push_back(r.smid + ": acknowledged as " + r.message_id + ", resent: " +
                                    a.message_id + (a.duplicate ? " (duplicate)" : " (new)"));
      }
    }
  }

  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  const Options& o_;
  fs::path pki_;
  const Documents& docs_;
  Ledger& ledger_;
  std::array<Counters, kPhases>& counters_;
  std::atomic<int>& phase_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false}, aborted_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<std::string> mismatch_samples_;  // Guarded by mutex_.
  std::vector<std::string> refusal_samples_;   // Guarded by mutex_.
};

std::string config_toml(const Options& o, const fs::path& pki, std::uint16_t sink_port) {
  auto p = pki.string();
  auto tls = "cert = \"" + p + "/gateway-outer.chain.pem\"\nkey = \"" + p +
             "/gateway-outer.key.pem\"\nclient_ca = \"" + p + "/ca-bundle.pem\"\ncrls = [\"" + p +
             "/crl-chain.pem\"]\nrequire_client_cert = true\n";
  // The product's defaults except where a phase must finish in seconds: the breaker backs off
  // for at most 1 s (not 60), and a delivery that fails while the destination otherwise works
  // is tried only 5 times, so that an outage that spent attempts would leave dead messages.
  return "[gateway]\nid = \"reliability-outer\"\nstate_dir = \"" + o.dir.string() +
         "\"\nlog_level = \"info\"\nthreads = 2\nworkers = 2\nschema_dir = \"" +
         (test::source_dir() / "schemas").string() + "\"\n\n[listen.data]\nport = 0\n" + tls +
         "\n[listen.admin]\nport = 0\n" + tls + "\n[store]\npath = \"" +
         (o.dir / "store").string() +
         "\"\nmap_size_mb = 8192\nmax_queued_mb = 1024\n\n"
         "[signing]\ncert = \"" +
         p + "/gateway-outer.chain.pem\"\nkey = \"" + p + "/gateway-outer.key.pem\"\ntrust = \"" +
         p + "/ca-bundle.pem\"\ncrls = [\"" + p +
         "/crl-chain.pem\"]\n\n[retry]\nmax_attempts = 5\ninitial_backoff_ms = 200\n"
         "max_backoff_ms = 2000\njitter = 0.1\n\n"
         "[[destination]]\nname = \"sink\"\nkind = \"http\"\nurl = \"http://127.0.0.1:" +
         std::to_string(sink_port) + "/inbox\"\nconcurrency = " + std::to_string(o.concurrency) +
         "\ntimeout_ms = 5000\nbreaker_failures = 3\nbreaker_min_ms = 200\n"
         "breaker_max_ms = 1000\n\n[[route]]\ndoc_type = \"*\"\ndestinations = [\"sink\"]\n\n"
         "[[sender]]\nid = \"440604/approval\"\ndoc_types = [\"*\"]\nreceivers = [\"*\"]\n";
}

// The state directory is removed at the start of a run, so it must be one this program made.
Result<void> prepare_dir(const fs::path& dir) {
  const auto marker = dir / ".sluice-reliability";
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec) && !fs::exists(marker, ec)) {
    return fail(Errc::kAlreadyExists, dir.string() +
                                          " exists and was not made by sluice-reliability; "
                                          "name an empty or new --dir");
  }
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return fail(Errc::kIo, "cannot create " + dir.string() + ": " + ec.message());
  std::ofstream(marker) << "state of a sluice-reliability run; removed by the next one\n";
  return {};
}

std::int64_t percentile(std::vector<std::int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string describe_exit(int status) {
  if (status == -1) return "killed after 30 s";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool clean_exit(const Daemon::Exit& e) {
  return e.status != -1 && WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0;
}

json::object sink_json(const tools::SinkStats& s) {
  return {{"requests", s.requests},
          {"distinct", s.distinct},
          {"duplicates", s.duplicates},
          {"refused", s.refused}};
}

tools::SinkStats minus(const tools::SinkStats& a, const tools::SinkStats& b) {
  return {a.requests - b.requests, a.distinct - b.distinct, a.duplicates - b.duplicates,
          a.refused - b.refused};
}

// Acknowledged documents not (yet) at the sink.
std::size_t count_missing(const Ledger& ledger, const Deliveries& deliveries,
                          std::vector<std::string>* samples = nullptr) {
  std::size_t missing = 0;
  ledger.for_each([&](const std::string& smid, const Acked& a) {
    if (!deliveries.has(a.message_id)) {
      missing += 1;
      if (samples != nullptr && samples->size() < 10) {
        samples->push_back(smid + " -> " + a.message_id + " (acknowledged in " +
                           kPhaseNames[a.phase] + ")");
      }
    }
  });
  return missing;
}

// Waits until every document acknowledged so far has arrived, or `bound` passes; returns
// how long it took (or -1).
std::int64_t wait_delivered(const Ledger& ledger, const Deliveries& deliveries,
                            milliseconds bound) {
  auto began = Clock::now();
  while (count_missing(ledger, deliveries) > 0) {
    if (Clock::now() - began > bound || g_interrupted.load()) return -1;
    pause(milliseconds(200));
  }
  return ms_since(began);
}

int run(const Options& o) {
  std::vector<std::string> problems;
  // Defects that lose nothing acknowledged (what this run guards) and show only in a timing
  // window: reported, not failed on, so that CI does not fail now and then because of them.
  std::vector<std::string> warnings;
  fs::path pki = o.pki.empty() ? test::dev_pki() : o.pki;
  if (auto r = prepare_dir(o.dir); !r) {
    std::cerr << "sluice-reliability: " << r.error().message << "\n";
    return 2;
  }
  std::uint64_t seed = o.seed != 0 ? o.seed : std::random_device{}();
  std::mt19937_64 rng(seed);
  Documents docs(o.cases_per_client);
  Deliveries deliveries(o.cases_per_client);
  tools::SinkOptions so;
  so.retry_after_s = 1;  // an outage says when to come back, as the breaker honours
  SinkThread sink(so, deliveries);
  std::ofstream(o.dir / "sluiced.toml") << config_toml(o, pki, sink.sink().port());

  Daemon gw(o.sluiced, o.dir);
  Ledger ledger;
  std::array<Counters, kPhases> counters;
  std::atomic<int> phase{kKill};
  Load load(o, pki, docs, ledger, counters, phase);
  std::array<tools::SinkStats, kPhases> sink_at{};  // the sink when each phase began
  std::array<bool, kPhases> began{};
  json::object phases;
  auto begin_phase = [&](Phase p) {
    phase.store(p);
    sink_at[p] = sink.sink().stats();
    began[p] = true;
    std::cerr << "sluice-reliability: phase " << kPhaseNames[p] << " (" << ledger.size()
              << " acknowledged so far)\n";
  };
  auto start = [&](std::vector<std::string> env = {}) {
    if (auto r = gw.start(std::move(env)); !r) {
      problems.push_back("sluiced did not start: " + r.error().message);
      std::string log = test::read_text(o.dir / "sluiced.log");
      std::cerr << "sluice-reliability: sluiced did not start; the end of its log:\n"
                << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << "\n";
      return false;
    }
    load.publish(gw.data_port());
    return true;
  };
  auto run_began = Clock::now();
  bool up = true;

  // Kill cycles: SIGKILL at a random moment of the load, then the same store again.
  begin_phase(kKill);
  int cycles_done = 0;
  if (!start()) up = false;
  if (up) load.start();
  std::uniform_int_distribution<int> kill_after(o.min_kill_ms,
                                                std::max(o.min_kill_ms, o.max_kill_ms));
  for (int i = 0; up && i < o.cycles && !g_interrupted.load(); ++i) {
    pause(milliseconds(kill_after(rng)));
    // One that ended before the SIGKILL crashed (or a sanitizer stopped it): a defect.
    if (auto e = gw.stop(SIGKILL); !(WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGKILL)) {
      problems.push_back("kill cycle " + std::to_string(i + 1) + ": sluiced had ended (" +
                         describe_exit(e.status) + ") before the SIGKILL");
    }
    ++cycles_done;
    if (!start()) up = false;
    if ((i + 1) % 25 == 0) {
      std::cerr << "sluice-reliability: " << (i + 1) << " kill cycles, " << ledger.size()
                << " acknowledged\n";
    }
  }
  auto starts = gw.starts_ms();
  phases["kill"] = json::object{{"cycles", cycles_done},
                                {"startP50Ms", percentile(starts, 50)},
                                {"startP99Ms", percentile(starts, 99)},
                                {"startMaxMs", percentile(starts, 100)},
                                {"firstStartMs", starts.empty() ? 0 : starts.front()},
                                {"lastStartMs", starts.empty() ? 0 : starts.back()}};

  // Store full: every sync fails. The store latches read-only; it must say so and deliver
  // nothing it cannot record (before, every failed ack handed the delivery back at once).
  if (up && !g_interrupted.load()) {
    begin_phase(kStoreFull);
    json::object sf;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const bool shim = false;  // the shim cannot be preloaded into a sanitizer build
#else
    const bool shim = !o.syncshim.empty() && fs::exists(o.syncshim);
#endif
    if (!shim) {
      sf["skipped"] = "no sync shim (a sanitizer build, or --syncshim missing)";
    } else {
      const auto disk_full = o.dir / "disk-full";
      // Not at the instant the last restart is ready: a SIGTERM then is not handled yet
      // (the sigterm phase measures that window on its own).
      pause(milliseconds(500));
      auto e = gw.stop(SIGTERM);
      if (!clean_exit(e))
        problems.push_back("store-full: SIGTERM before it: " + describe_exit(e.status));
      up = start({"LD_PRELOAD=" + fs::absolute(o.syncshim).string(),
                  "SLUICE_SYNCSHIM_FAIL_FILE=" + disk_full.string()});
    }
    if (shim && up) {
      const auto disk_full = o.dir / "disk-full";
      pause(milliseconds(1000));  // a healthy store under load first
      auto acked_before = counters[kStoreFull].acknowledged.load();
      { std::ofstream(disk_full) << "full"; }
      auto filled = Clock::now();
      auto probe = make_client(pki, gw.data_port(), "sender-440604-approval");
      std::int64_t latch_ms = -1;
      std::string health;
      while (ms_since(filled) < 15'000 && !g_interrupted.load()) {
        if (auto h = probe->request("GET", "/v1/health"); h && h->status == 503) {
          latch_ms = ms_since(filled);
          health = h->body;
          break;
        }
        pause(milliseconds(50));
      }
      if (latch_ms < 0) problems.push_back("store-full: /v1/health never answered 503");
      // What was in flight when it latched may still arrive; then nothing may.
      pause(milliseconds(500));
      auto s0 = sink.sink().stats();
      auto busy0 = counters[kStoreFull].busy.load() + counters[kStoreFull].server_errors.load();
      auto acked0 = counters[kStoreFull].acknowledged.load();
      pause(std::chrono::seconds(o.store_full_s));
      auto during = minus(sink.sink().stats(), s0);
      auto refused =
          counters[kStoreFull].busy.load() + counters[kStoreFull].server_errors.load() - busy0;
      auto acked_during = counters[kStoreFull].acknowledged.load() - acked0;
      if (during.requests > static_cast<std::uint64_t>(o.concurrency)) {
        problems.push_back("store-full: " + std::to_string(during.requests) + " sink requests in " +
                           std::to_string(o.store_full_s) +
                           " s while read-only (a redelivery storm)");
      }
      if (acked_during > 0) {
        problems.push_back("store-full: " + std::to_string(acked_during) +
                           " documents answered 202 by a read-only store");
      }
      std::error_code ec;
      fs::remove(disk_full, ec);
      auto e = gw.stop(SIGTERM);
      sf = json::object{{"acknowledgedBeforeFull", acked_before},
                        {"healthReadOnlyAfterMs", latch_ms},
                        {"health", health},
                        {"windowS", o.store_full_s},
                        {"sinkRequestsWhileReadOnly", during.requests},
                        {"postsRefusedWhileReadOnly", refused},
                        {"postsAcceptedWhileReadOnly", acked_during},
                        {"sigtermExitMs", e.ms},
                        {"sigtermExit", describe_exit(e.status)}};
      up = start();
    }
    phases["store-full"] = std::move(sf);
  }

  // Destination 503: the receiver is down. The destination backs off as a whole and no
  // message spends its attempts (5) on the outage.
  if (up && !g_interrupted.load()) {
    begin_phase(kDest503);
    // First the redeliveries that follow the restart (deliveries whose ack the read-only
    // store could not record), so that the outage's own figures are its own.
    pause(milliseconds(1000));
    auto s0 = sink.sink().stats();
    auto acked0 = counters[kDest503].acknowledged.load();
    sink.sink().set_unavailable(true);
    pause(std::chrono::seconds(o.outage_s));
    auto during = minus(sink.sink().stats(), s0);
    auto accepted_during = counters[kDest503].acknowledged.load() - acked0;
    // The documents accepted during the outage (and so never delivered yet): none is dead.
    std::vector<std::string> ids;
    ledger.for_each([&](const std::string&, const Acked& a) {
      if (a.phase == kDest503 && ids.size() < 300) ids.push_back(a.message_id);
    });
    auto probe = make_client(pki, gw.data_port(), "sender-440604-approval");
    std::uint64_t dead = 0, unreadable = 0;
    std::int64_t max_attempts = 0;
    for (const auto& id : ids) {
      auto st = probe->request("GET", "/v1/messages/" + id);
      boost::system::error_code ec;
      auto v = st && st->status == 200 ? json::parse(st->body, ec) : json::value();
      const json::object* obj = v.if_object();
      if (obj == nullptr || !obj->contains("state")) {
        unreadable += 1;
        continue;
      }
      if (obj->at("state").is_string() && obj->at("state").as_string() == "dead") dead += 1;
      if (auto* ds = obj->contains("deliveries") ? obj->at("deliveries").if_array() : nullptr) {
        for (const auto& d : *ds) {
          if (auto* dobj = d.if_object(); dobj != nullptr && dobj->contains("attempts")) {
            max_attempts = std::max(max_attempts, dobj->at("attempts").to_number<std::int64_t>());
          }
        }
      }
    }
    if (dead > 0) problems.push_back("dest-503: " + std::to_string(dead) + " messages dead");
    if (unreadable > 0) {
      problems.push_back("dest-503: the state of " + std::to_string(unreadable) +
                         " acknowledged messages could not be read");
    }
    auto s1 = sink.sink().stats();
    sink.sink().set_unavailable(false);
    auto recovery_ms = wait_delivered(ledger, deliveries, std::chrono::seconds(60));
    auto recovery = minus(sink.sink().stats(), s1);
    if (recovery_ms < 0)
      problems.push_back("dest-503: not all delivered within 60 s after the outage");
    phases["dest-503"] =
        json::object{{"outageS", o.outage_s},
                     {"attemptsDuringOutage", during.requests},
                     {"deliveredDuringOutage", during.distinct},
                     {"acceptedDuringOutage", accepted_during},
                     {"statesChecked", ids.size()},
                     {"deadDuringOutage", dead},
                     {"maxAttemptsSpent", max_attempts},
                     {"recoveryMs", recovery_ms},
                     {"duplicatesBeforeOutage", minus(s0, sink_at[kDest503]).duplicates},
                     {"duplicatesDuringOutage", during.duplicates},
                     {"duplicatesInRecovery", recovery.duplicates}};
  }

  // SIGTERM under load: the listeners drain, the process exits within its bound, and what it
  // acknowledged is delivered by the next one.
  if (up && !g_interrupted.load()) {
    begin_phase(kSigterm);
    pause(milliseconds(o.sigterm_load_ms));
    auto e = gw.stop(SIGTERM);
    if (!clean_exit(e)) problems.push_back("sigterm: " + describe_exit(e.status));
    up = start();
    // The senders resend what the stopped process acknowledged (counted in this phase).
    if (up) pause(milliseconds(500));
    // SIGTERM the moment the ready file appears, as a supervisor may that stops what it just
    // started: the process must still drain and exit 0, not die of the signal.
    int unclean_after_ready = 0;
    for (int i = 0; up && i < o.sigterm_after_ready && !g_interrupted.load(); ++i) {
      auto q = gw.stop(SIGTERM);
      if (q.status != -1 && WIFSIGNALED(q.status) && WTERMSIG(q.status) == SIGTERM) {
        ++unclean_after_ready;
      } else if (!clean_exit(q)) {
        problems.push_back("sigterm after ready: " + describe_exit(q.status));
      }
      up = start();
    }
    if (unclean_after_ready > 0) {
      problems.push_back("sigterm: " + std::to_string(unclean_after_ready) + " of " +
                         std::to_string(o.sigterm_after_ready) +
                         " SIGTERMs sent as soon as the ready file appeared killed sluiced "
                         "(signal 15) instead of stopping it cleanly");
    }
    if (auto cut = counters[kSigterm].recovered.load(); cut > 0) {
      problems.push_back("sigterm: " + std::to_string(cut) +
                         " documents were stored but their answer never arrived");
    }
    phases["sigterm"] = json::object{{"exitMs", e.ms},
                                     {"exit", describe_exit(e.status)},
                                     {"afterReadyRounds", o.sigterm_after_ready},
                                     {"afterReadyUnclean", unclean_after_ready}};
  }

  // Drain: no new documents; everything acknowledged must arrive.
  std::int64_t drain_ms = -1;
  std::uint64_t dead_letters = 0, queued = 0;
  json::object drain;
  if (up) begin_phase(kDrain);
  if (up) {
    load.stop();  // every client's last document answered
  } else {
    load.abort();
  }
  if (up && !g_interrupted.load()) {
    drain_ms = wait_delivered(ledger, deliveries, std::chrono::seconds(o.drain_timeout_s));
    // Resend a sample of everything acknowledged: each must still be known by its first id.
    std::vector<std::pair<std::string, std::string>> all;
    ledger.for_each(
        [&](const std::string& smid, const Acked& a) { all.emplace_back(smid, a.message_id); });
    std::sort(all.begin(), all.end());
    std::shuffle(all.begin(), all.end(), rng);
    Load::Connection conn;
    std::uint64_t verified = 0, verify_mismatch = 0;
    std::vector<std::string> verify_samples;
    for (std::size_t i = 0; i < all.size() && i < static_cast<std::size_t>(o.verify_sample); ++i) {
      int c = 0;
      std::uint64_t seq = 0;
      if (!Documents::parse(all[i].first, c, seq)) continue;
      auto a = load.post(conn, docs.body(c, seq));
      if (!a.accepted) continue;
      ++verified;
      if (a.message_id != all[i].second || !a.duplicate) {
        ++verify_mismatch;
        if (verify_samples.size() < 5) {
          verify_samples.push_back(all[i].first + ": " + all[i].second + " then " + a.message_id);
        }
      }
    }
    counters[kDrain].resend_checks += verified;
    counters[kDrain].mismatches += verify_mismatch;
    auto admin = make_client(pki, gw.admin_port(), "admin-netadmin");
    if (auto d = admin->request("GET", "/admin/v1/dead-letters?limit=10000");
        d && d->status == 200) {
      boost::system::error_code ec;
      auto v = json::parse(d->body, ec);
      if (!ec && v.is_array()) dead_letters = v.as_array().size();
    } else {
      problems.push_back("drain: cannot read the dead letters");
    }
    // Acks of the last deliveries are committed just after the sink answered them.
    pause(milliseconds(500));
    if (auto s = admin->request("GET", "/admin/v1/stats"); s && s->status == 200) {
      auto q = test::json_field(s->body, "queuedMessages");
      queued = q.empty() ? 0 : std::stoull(q);
    }
    auto e = gw.stop(SIGTERM);
    if (!clean_exit(e)) problems.push_back("final SIGTERM: " + describe_exit(e.status));
    drain = json::object{{"drainMs", drain_ms},
                         {"verifiedResends", verified},
                         {"verifyMismatches", verify_mismatch},
                         {"verifySamples", json::value_from(verify_samples)},
                         {"queuedAfterDrain", queued},
                         {"finalExitMs", e.ms}};
  }
  gw.stop(SIGKILL);  // no-op unless an error path left it running
  phases["drain"] = std::move(drain);

  // The counts.
  std::vector<std::string> missing_samples;
  std::size_t acknowledged = ledger.size();
  std::size_t missing = count_missing(ledger, deliveries, &missing_samples);
  auto delivered_map = deliveries.snapshot();
  // A document stored twice (a resend taken for a new document) reaches the sink under an id
  // its sender was never told; one no sender was told of at all is only possible for a
  // document whose sender gave it up.
  std::uint64_t split = 0, unacknowledged = 0;
  for (const auto& [id, smid] : delivered_map) {
    auto acked_id = ledger.id_of(smid);
    if (acked_id.empty()) {
      unacknowledged += 1;
    } else if (acked_id != id) {
      split += 1;
    }
  }
  auto stats = sink.sink().stats();
  std::uint64_t mismatches = split;
  json::object per_phase;
  for (int p = 0; p < kPhases; ++p) {
    mismatches += counters[p].mismatches.load();
    if (!began[p]) continue;
    auto end = p + 1 < kPhases && began[p + 1] ? sink_at[p + 1] : stats;
    json::object po = counters[p].to_json();
    po["sink"] = sink_json(minus(end, sink_at[p]));
    if (phases.contains(kPhaseNames[p])) po["figures"] = phases[kPhaseNames[p]];
    per_phase[kPhaseNames[p]] = std::move(po);
  }
  std::uint64_t unexpected_dups = 0, refused = 0;
  for (const auto& k : counters) {
    unexpected_dups += k.unexpected_dup.load();
    refused += k.refused.load();
  }
  if (g_interrupted.load()) problems.push_back("interrupted");
  if (missing > 0) problems.push_back(std::to_string(missing) + " acknowledged documents missing");
  if (mismatches > 0) problems.push_back(std::to_string(mismatches) + " resend mismatches");
  if (dead_letters > 0) problems.push_back(std::to_string(dead_letters) + " dead messages");
  if (split > 0) problems.push_back(std::to_string(split) + " documents stored under two ids");
  if (deliveries.order_violations() > 0) {
    problems.push_back(std::to_string(deliveries.order_violations()) +
                       " deliveries out of their case's order");
  }
  if (unexpected_dups > 0) {
    problems.push_back(std::to_string(unexpected_dups) +
                       " first answers said duplicate although no attempt had failed");
  }
  if (refused > 0) problems.push_back(std::to_string(refused) + " documents refused with 4xx");
  if (queued > 0)
    problems.push_back(std::to_string(queued) + " messages still queued after the drain");

  std::error_code ec;
  auto store_bytes = fs::file_size(o.dir / "store" / "data.mdb", ec);
  json::object summary{
      {"seed", seed},
      {"clients", o.clients},
      {"cycles", cycles_done},
      {"acknowledged", acknowledged},
      {"delivered", acknowledged - missing},
      {"missing", missing},
      {"duplicatesDelivered", stats.duplicates},
      {"resendMismatches", mismatches},
      {"dead", dead_letters},
      {"sinkDistinct", stats.distinct},
      {"sinkRequests", stats.requests},
      {"storedTwice", split},
      {"deliveredUnacknowledged", unacknowledged},
      {"unexpectedDuplicates", unexpected_dups},
      {"orderViolations", deliveries.order_violations()},
      {"orderSamples", json::value_from(deliveries.order_samples())},
      {"missingSamples", json::value_from(missing_samples)},
      {"mismatchSamples", json::value_from(load.mismatch_samples())},
      {"refusalSamples", json::value_from(load.refusal_samples())},
      {"storeBytes", ec ? 0 : store_bytes},
      {"runS", ms_since(run_began) / 1000.0},
      {"phases", std::move(per_phase)},
      {"problems", json::value_from(problems)},
      {"warnings", json::value_from(warnings)},
      {"ok", problems.empty()},
  };
  auto out = o.json_out.empty() ? o.dir / "summary.json" : o.json_out;
  std::ofstream(out) << json::serialize(summary) << "\n";

  std::printf(
      "sluice-reliability: %d kill cycles, %zu acknowledged, %zu delivered, %zu missing, "
      "%llu duplicates delivered, %llu resend mismatches, %llu dead (%.0f s, seed %llu)\n",
      cycles_done, acknowledged, acknowledged - missing, missing,
      static_cast<unsigned long long>(stats.duplicates),
      static_cast<unsigned long long>(mismatches), static_cast<unsigned long long>(dead_letters),
      ms_since(run_began) / 1000.0, static_cast<unsigned long long>(seed));
  for (int p = 0; p < kPhases; ++p) {
    std::printf("  %-10s %s\n", kPhaseNames[p],
                json::serialize(summary.at("phases").at(kPhaseNames[p])).c_str());
  }
  for (const auto& w : warnings) std::printf("  WARNING: %s\n", w.c_str());
  for (const auto& p : problems) std::printf("  PROBLEM: %s\n", p.c_str());
  std::printf("  summary: %s\n", out.c_str());
  return problems.empty() ? 0 : 1;
}

}  // namespace
}  // namespace sluice::reliability

int main(int argc, char** argv) {
  using sluice::reliability::Options;
  CLI::App cli{
      "sluice-reliability - kill cycles, store full, destination 503 and SIGTERM "
      "against one store, counting what was acknowledged and what arrived"};
  Options o;
  cli.add_option("--sluiced", o.sluiced, "the sluiced binary (default: this build's)");
  cli.add_option("--pki", o.pki, "development PKI (default: the build tree's, made when missing)");
  cli.add_option("--syncshim", o.syncshim, "libsluice_syncshim.so (store-full phase)");
  cli.add_option("--dir", o.dir, "state directory (store, config, log); removed at the start");
  cli.add_option("--json", o.json_out, "where to write the summary (default: <dir>/summary.json)");
  cli.add_option("--cycles", o.cycles, "SIGKILL cycles")->check(CLI::NonNegativeNumber);
  cli.add_option("--clients", o.clients, "sender threads, one kept-alive connection each")
      ->check(CLI::Range(1, 64));
  cli.add_option("--min-kill-ms", o.min_kill_ms, "shortest life of a killed sluiced");
  cli.add_option("--max-kill-ms", o.max_kill_ms, "longest life of a killed sluiced");
  cli.add_option("--store-full-s", o.store_full_s, "seconds the sink is watched while read-only");
  cli.add_option("--outage-s", o.outage_s, "seconds the sink answers 503");
  cli.add_option("--sigterm-load-ms", o.sigterm_load_ms, "load before the SIGTERM");
  cli.add_option("--sigterm-after-ready", o.sigterm_after_ready,
                 "restarts stopped by SIGTERM as soon as they are ready");
  cli.add_option("--drain-timeout-s", o.drain_timeout_s, "bound on the final delivery");
  cli.add_option("--cases-per-client", o.cases_per_client, "ordered chains each client feeds")
      ->check(CLI::Range(1, 1000));
  cli.add_option("--resend-last", o.resend_last,
                 "acknowledged documents per client resent after each restart");
  cli.add_option("--verify-sample", o.verify_sample, "acknowledged documents resent at the end");
  cli.add_option("--concurrency", o.concurrency, "delivery connections to the sink");
  cli.add_option("--seed", o.seed, "random seed of the kill times (0: random, printed)");
  CLI11_PARSE(cli, argc, argv);

  struct sigaction sa {};
  sa.sa_handler = [](int) { sluice::reliability::g_interrupted.store(true); };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return sluice::reliability::run(o);
  } catch (const std::exception& e) {
    std::cerr << "sluice-reliability: " << e.what() << "\n";
    return 2;
  }
}
