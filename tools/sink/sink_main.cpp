// sluice-sink: a local receiving system that counts and keeps what Sluice delivers.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>

#include "common/fs.h"
#include "tools/sink/sink.h"

int main(int argc, char** argv) {
  CLI::App cli{"sluice-sink - a local receiver for Sluice deliveries"};
  sluice::tools::SinkOptions o;
  std::string ready_file;
  bool quiet = false;
  cli.add_option("--address", o.address, "listen address");
  cli.add_option("--port", o.port, "listen port (0: any)");
  cli.add_option("--cert", o.cert, "HTTPS certificate chain (with --key)");
  cli.add_option("--key", o.key, "HTTPS private key");
  cli.add_option("--dir", o.write_dir, "keep each delivered document here as <MessageId>.xml");
  cli.add_option("--fail-first", o.fail_first, "answer 503 to the first N requests");
  cli.add_option("--ready-file", ready_file, "write {\"port\": N} here once listening");
  cli.add_flag("--quiet", quiet, "do not print one line per delivered document");
  CLI11_PARSE(cli, argc, argv);

  boost::asio::io_context io;
  try {
    auto sink =
        sluice::tools::Sink::start(io, o, [quiet](const std::string& id, const std::string& body) {
          if (!quiet) {
            std::size_t a = body.find("DocType>");
            std::size_t b = a == std::string::npos ? a : body.find('<', a);
            std::string doc_type = a == std::string::npos ? "?" : body.substr(a + 8, b - a - 8);
            std::cout << "sink: delivered " << id << " " << doc_type << " (" << body.size()
                      << " bytes)" << std::endl;
          }
        });
    if (!ready_file.empty()) {
      (void)sluice::write_file_durable(ready_file,
                                       "{\"port\":" + std::to_string(sink->port()) + "}");
    }
    std::cout << "sink: listening on " << o.address << ":" << sink->port() << std::endl;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
      std::cout << "sink: " << sink->stats_json() << std::endl;
      io.stop();
    });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "sluice-sink: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
