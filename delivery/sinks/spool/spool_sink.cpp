#include "delivery/sinks/spool/spool_sink.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/fs.h"

namespace sluice::delivery {

namespace {

class SpoolChannel final : public Channel {
 public:
  SpoolChannel(boost::asio::thread_pool& pool, const std::filesystem::path& dir)
      : pool_(pool), dir_(dir) {}

  void deliver(std::vector<queue::Lease> leases, DeliverDone done) override {
    boost::asio::post(pool_, [dir = dir_, leases = std::move(leases),
                              done = std::move(done)]() mutable {
      std::vector<Outcome> out(leases.size());
      for (std::size_t i = 0; i < leases.size(); ++i) {
        auto written = write_file_durable(dir / (leases[i].message_id + ".xml"), leases[i].payload);
        if (written) {
          out[i].kind = Outcome::Kind::kDelivered;
        } else {
          out[i].kind = Outcome::Kind::kUnreachable;
          out[i].reason = written.error().message;
        }
      }
      done(std::move(out));
    });
  }

 private:
  boost::asio::thread_pool& pool_;
  std::filesystem::path dir_;
};

class SpoolSink final : public Sink {
 public:
  explicit SpoolSink(std::filesystem::path dir) : dir_(std::move(dir)), pool_(2) {}
  ~SpoolSink() override { pool_.join(); }
  std::size_t batch() const override { return 1; }
  std::unique_ptr<Channel> open_channel() override {
    return std::make_unique<SpoolChannel>(pool_, dir_);
  }

 private:
  std::filesystem::path dir_;
  boost::asio::thread_pool pool_;
};

}  // namespace

Result<std::unique_ptr<Sink>> make_spool_sink(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(Errc::kIo, "cannot create " + dir.string() + ": " + ec.message());
  }
  return std::unique_ptr<Sink>(new SpoolSink(dir));
}

}  // namespace sluice::delivery
