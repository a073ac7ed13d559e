// sluiced: the Sluice gateway daemon. One process per half; everything it does is in its
// TOML configuration (or the embedded defaults).
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <condition_variable>
#include <functional>
#include <iostream>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "gateway/app.h"
#include "gateway/config.h"
#include "gateway/restore.h"

namespace asio = boost::asio;
using namespace sluice;
using namespace sluice::gateway;

int main(int argc, char** argv) {
  CLI::App cli{"sluiced - the Sluice secure data-exchange gateway"};
  std::string config_path, ready_file, log_level;
  bool print_defaults = false, check_only = false;
  cli.add_option("-c,--config", config_path, "TOML configuration (default: the embedded defaults)");
  cli.add_option(
      "--ready-file", ready_file,
      "write {\"pid\",\"dataPort\",\"adminPort\",\"ferryEndpoint\"} as JSON here once listening");
  cli.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, off (overrides the config)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  cli.set_version_flag("--version", "sluiced " SLUICE_VERSION);
  cli.add_flag("--print-default-config", print_defaults, "print the embedded defaults and exit");
  cli.add_flag("--check-config", check_only, "validate the configuration and exit");
  std::string restore_from;
  cli.add_option("--restore-from", restore_from,
                 "restore the store from a backup directory (sluicectl backup made it) and exit; "
                 "sluiced must not be running on it");
  CLI11_PARSE(cli, argc, argv);

  if (print_defaults) {
    std::cout << embedded_default_toml();
    return 0;
  }
  auto config = config_path.empty() ? default_config() : load_config(config_path);
  if (!config) {
    std::cerr << "sluiced: " << config.error().message << "\n";
    return 2;
  }
  if (!log_level.empty()) {
    config->log_level = log_level;
  }
  init_logging(config->log_level, config->log_format);
  if (check_only) {
    auto problems = check_config_files(*config);
    if (!problems.empty()) {
      std::cerr << "sluiced: configuration " << config->source.string() << ": " << problems.size()
                << " problem(s):\n";
      for (const auto& p : problems) std::cerr << "  " << p << "\n";
      return 2;
    }
    std::cout << "configuration " << config->source.string()
              << " is valid, and every file it names loads\n";
    return 0;
  }

  if (!restore_from.empty()) {
    auto restored = restore_store(*config, restore_from);
    if (!restored) {
      std::cerr << "sluiced: not restored: " << restored.error().message << "\n";
      return 1;
    }
    std::cout << *restored << "\n";
    return 0;
  }

  asio::io_context io(config->threads);
  auto app = App::start(io, *config);
  if (!app) {
    spdlog::critical("cannot start: {}", app.error().message);
    return 1;
  }
  // Before the ready file: whoever reads it may send SIGTERM at once, and that must drain,
  // not take the default action.
  asio::steady_timer watchdog(io);  // systemd's watchdog pings (below), cancelled at the stop
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info(
        "signal {}: stopping (no new requests; answering those already read, for at "
        "most {} ms)",
        sig, config->shutdown_timeout_ms);
    sd_notify(0, "STOPPING=1");
    (*app)->begin_shutdown([&io, &watchdog] {
      watchdog.cancel();
      io.stop();
    });
  });

  // SIGHUP re-reads the TLS material and CRLs, as `sluicectl tls reload` does (the signal
  // handler runs on an io thread, which waits the few ms the audit entry takes to commit).
  asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("signal SIGHUP: reloading TLS certificates, keys and CRLs");
      (void)(*app)->reload_tls("signal/SIGHUP");
      on_hangup();
    });
  };
  on_hangup();

  if (!ready_file.empty()) {
    boost::json::object o{{"pid", ::getpid()},
                          {"dataPort", (*app)->data_port()},
                          {"adminPort", (*app)->admin_port()},
                          {"ferryEndpoint", (*app)->ferry_endpoint()}};
    if (auto r = write_file_durable(ready_file, boost::json::serialize(o)); !r) {
      spdlog::critical("cannot write ready file: {}", r.error().message);
      return 1;
    }
  }

  // Under systemd (Type=notify): ready once listening, and a watchdog ping from an io thread
  // every half WatchdogSec, so a process whose event loop is stuck is restarted. Without
  // NOTIFY_SOCKET these are no-ops.
  sd_notifyf(0, "READY=1\nSTATUS=serving: data port %u, admin port %u\nMAINPID=%d",
             static_cast<unsigned>((*app)->data_port()),
             static_cast<unsigned>((*app)->admin_port()), static_cast<int>(::getpid()));
  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    const auto every = std::chrono::microseconds(watchdog_usec / 2);
    std::function<void()> ping = [&, every] {
      sd_notify(0, "WATCHDOG=1");
      watchdog.expires_after(every);
      watchdog.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) ping();
      });
    };
    ping();
  }

  std::vector<std::thread> threads;
  for (int i = 1; i < config->threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : threads) {
    t.join();
  }
  (*app)->close();
  spdlog::info("stopped cleanly");
  return 0;
}
