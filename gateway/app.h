// A running gateway half: the store, the pipeline, the listeners and the delivery workers,
// wired from a Config. sluiced is a thin main() around it; benchmarks embed it too.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "gateway/config.h"

namespace boost::asio {
class io_context;
}

namespace sluice::gateway {

// Everything `sluiced --check-config` checks beyond the file's syntax, all at once: every
// certificate and key it names loads (and the key matches, with mode 0600), trust stores and
// CRLs parse, the schemas and every feed's mapping file load, the ferry's key files read,
// destination TLS files are readable, and the store's directory can be created. Each problem
// names its configuration key. Empty when all is well.
std::vector<std::string> check_config_files(const Config& config);

class App {
 public:
  // Opens the store, loads keys and schemas, binds the listeners and starts delivering.
  static Result<std::unique_ptr<App>> start(boost::asio::io_context& io, const Config& config);
  ~App();

  std::uint16_t data_port() const;
  std::uint16_t admin_port() const;
  // The endpoint the outer half's ferry bound (its port resolved), or the inner's peer; "" off.
  std::string ferry_endpoint() const;
  // Drains the listeners (no new requests; every request already read is answered, with
  // Connection: close), waits for that at most gateway.shutdown_timeout_ms, stops delivery,
  // then calls `done` on an io thread. Call once.
  void begin_shutdown(std::function<void()> done);
  // Re-reads both listeners' certificates and keys and every CRL (SIGHUP, or POST
  // /admin/v1/tls/reload), audited as `actor`; on a failure the previous material stays in
  // use and the error is returned (and logged).
  Result<void> reload_tls(const std::string& actor);
  // After the io_context has stopped: commits what is waiting and closes the store.
  void close();

  class Impl;

 private:
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
