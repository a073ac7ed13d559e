// Starts a real sluiced (built binary) on port 0 with a temporary store and the development
// PKI, plus helpers to talk to it as a sender or an admin, and an in-process sink.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tools/sink/sink.h"

namespace sluice::test {

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
// Tests wait on conditions like this, never on fixed sleeps.
template <class Condition>
bool eventually(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Generates the development PKI once per build tree (idempotent) and returns its directory.
std::filesystem::path dev_pki();
// The same PKI shape with RSA-2048 keys.
std::filesystem::path dev_pki_rsa();
std::filesystem::path source_dir();
std::filesystem::path binary_dir();
// The built binaries (SLUICE_TEST_SLUICED overrides sluiced's, e.g. a sanitizer build).
std::filesystem::path sluiced_binary();
std::filesystem::path sluicectl_binary();
std::string read_text(const std::filesystem::path& p);

// A loopback TCP port that is bound but not listening: connections to it are refused, and no
// other program can take it. For a destination that is down; release() just before a sink
// starts on the same port (the sink binds with SO_REUSEADDR).
class PortHold {
 public:
  PortHold();
  ~PortHold();
  PortHold(const PortHold&) = delete;
  PortHold& operator=(const PortHold&) = delete;
  std::uint16_t port() const { return port_; }
  void release();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A sink on its own io thread.
class SinkRunner {
 public:
  explicit SinkRunner(tools::SinkOptions options = {});
  ~SinkRunner();
  std::uint16_t port() const { return sink_->port(); }
  tools::SinkStats stats() const { return sink_->stats(); }
  void set_unavailable(bool unavailable) { sink_->set_unavailable(unavailable); }
  // Waits until `distinct` messages arrived or the timeout passes; returns the final stats.
  tools::SinkStats wait_for(std::uint64_t distinct,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // The MessageIds of first arrivals, in the order they arrived.
  std::vector<std::string> arrivals() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> arrivals_;  // Guarded by mutex_.
  boost::asio::io_context io_;
  std::unique_ptr<tools::Sink> sink_;
  std::thread thread_;
};

// [[sender]] entries letting each development sender certificate send any DocType, and the
// shipped department feeds.
std::string default_senders();

// [[sender]] entries letting each development sender certificate send any DocType, and the
// shipped department feeds.
std::string default_senders();

struct GatewayOptions {
  std::string destinations;  // TOML [[destination]] blocks
  std::string routes = "[[route]]\ndoc_type = \"*\"\ndestinations = [\"sink\"]\n";
  std::string extra;          // more TOML appended verbatim (e.g. [retry])
  std::string store_extra;    // lines added to [store]
  std::string data_extra;     // lines added to [listen.data]
  std::string gateway_extra;  // lines added to [gateway]
  std::string retry =
      "max_attempts = 20\ninitial_backoff_ms = 100\nmax_backoff_ms = 400\njitter = 0.1\n";  // [retry]
  // Senders and feeds: every development sender may send anything by default.
  std::string senders = default_senders();
  std::vector<std::string> env;                // extra environment for sluiced ("NAME=value")
  std::string gateway_id = "test-outer";       // [gateway] id
  std::string signing_cert = "gateway-outer";  // development certificate for [signing]
  // Runs sluiced under this command (e.g. {"/usr/sbin/ip", "netns", "exec", "ns1"}).
  std::vector<std::string> wrapper;
};

class Gateway {
 public:
  Gateway(GatewayOptions options, const std::string& name = "gw");
  ~Gateway();
  std::uint16_t data_port() const { return data_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  // The ferry endpoint the outer half bound ("" without [ferry]).
  const std::string& ferry_endpoint() const { return ferry_endpoint_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  pid_t pid() const;
  std::string log() const { return read_text(dir_ / "sluiced.log"); }
  // SIGTERM and wait; returns the wait status.
  int stop();
  // SIGKILL and wait: a crash.
  void kill();
  // Starts sluiced again on the same configuration and store (killing it first if it runs);
  // the data and admin ports are new.
  void restart();
  // A client authenticated as the sender certificate `name` (e.g. "sender-440604-approval").
  std::unique_ptr<net::HttpsClient> client(const std::string& cert_name) const;
  // Any certificate on the admin listener (a sender's, a monitor's: to see what it may do).
  std::unique_ptr<net::HttpsClient> admin_client(const std::string& cert_name) const;
  std::unique_ptr<net::HttpsClient> admin() const { return client("admin-netadmin"); }
  // The audit admin: the only role that reads the audit trail.
  std::unique_ptr<net::HttpsClient> auditor() const { return client("admin-auditor"); }
  // The value of one series of /metrics, e.g. `sluice_body_bytes_in_flight` or
  // `sluice_destination_backoffs_total{destination="sink"}`; nullopt when it is not there.
  std::optional<std::uint64_t> metric(const std::string& series) const;

 private:
  void launch();
  std::unique_ptr<net::HttpsClient> client_on(std::uint16_t port,
                                              const std::string& cert_name) const;
  TempDir dir_;
  std::vector<std::string> env_;
  std::vector<std::string> wrapper_;
  std::unique_ptr<Process> process_;
  std::uint16_t data_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::string ferry_endpoint_;
};

// A [[destination]] block for an HTTP sink on `port`.
std::string http_destination(const std::string& name, std::uint16_t port, int concurrency = 4);
// Runs the built sluicectl with `args` against `gw`'s admin listener as the development admin
// certificate `identity`, with --json (one line per answer); returns its exit status, and what
// it printed (stdout and stderr) in `said`.
int run_sluicectl(const Gateway& gw, const std::string& args, std::string& said,
                  const std::string& identity = "admin-netadmin");
// A sample document from schemas/examples with SenderMessageId replaced by `smid` and the
// envelope Sender set to `sender` ("node/system"), so it matches the posting certificate.
std::string sample(const std::string& relative, const std::string& smid = "",
                   const std::string& sender = "440604/approval");
// A case.conclude sample whose business document is signed by `cert_name` (a development
// certificate) with the xmlsec1 command-line tool — independently of Sluice's own code.
std::string sender_signed_sample(const std::string& cert_name, const std::string& smid,
                                 const std::string& sender = "440604/approval");

// Extracts a JSON string field value (simple, for tests): "messageId" -> value.
std::string json_field(const std::string& json, const std::string& field);

}  // namespace sluice::test
