// A local receiving system for demos, tests and benchmarks: an HTTP(S) server that accepts
// POSTed documents, counts distinct X-Sluice-Message-Id values (and duplicates), optionally
// writes each document to a directory, and reports GET /stats as JSON. It can be told to
// refuse the first N requests with 503, to exercise retries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace sluice::tools {

struct SinkOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::filesystem::path cert, key;  // HTTPS when both are set
  std::filesystem::path write_dir;  // keep each document as <MessageId>.xml when set
  std::uint64_t fail_first = 0;     // answer 503 to this many requests first
  int retry_after_s = 0;            // with every 503, Retry-After: this many seconds (0: none)
};

struct SinkStats {
  std::uint64_t requests = 0;
  std::uint64_t distinct = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t refused = 0;
};

class Sink {
 public:
  // Called for each newly seen message (not for duplicates), on an io thread.
  using OnMessage = std::function<void(const std::string& message_id, const std::string& body)>;
  static std::unique_ptr<Sink> start(boost::asio::io_context& io, SinkOptions options,
                                     OnMessage on_message = nullptr);
  ~Sink();
  std::uint16_t port() const;
  SinkStats stats() const;
  std::string stats_json() const;
  // While set, every POST is answered 503 (a receiver in an outage); counted as refused.
  void set_unavailable(bool unavailable);

  class Impl;

 private:
  explicit Sink(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::tools
