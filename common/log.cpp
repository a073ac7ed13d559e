#include "common/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "common/encoding.h"
#include "common/pii.h"

namespace sluice {
namespace {

// Masks personal data and escapes control characters in each message, then hands it to the
// wrapped sink.
class MaskingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit MaskingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string masked =
        sanitize_log_message(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy(msg.time, msg.source, msg.logger_name, msg.level, masked);
    copy.thread_id = msg.thread_id;
    inner_->log(copy);
  }
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

 private:
  spdlog::sink_ptr inner_;
};

// One line per message: the time in China Standard Time (+08:00, as every time the API
// gives), the level and the sanitised message; or the same as one JSON object. With a
// journald priority prefix ("<3>" for an error, RFC 5424 severities) when stderr goes to the
// journal, which then records the level.
class LineFormatter final : public spdlog::formatter {
 public:
  LineFormatter(bool json, bool journal) : json_(json), journal_(journal) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    std::string line;
    // Appended piece by piece: GCC 12 at -O3 misreads "<" + std::string (-Wrestrict).
    if (journal_) {
      line += '<';
      line += static_cast<char>('0' + severity(msg.level));
      line += '>';
    }
    const std::string time = format_time_cn(ms);
    const auto level_view = spdlog::level::to_string_view(msg.level);
    const std::string_view level(level_view.data(), level_view.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (json_) {
      line += R"({"time":")";
      line += time;
      line += R"(","level":")";
      line += level;
      line += R"(","message":")";
      for (char c : text) {
        if (c == '"' || c == '\\') line += '\\';
        line += c;  // control characters were escaped by the sanitising sink already
      }
      line += "\"}";
    } else {
      line += time;
      line += ' ';
      line += level;
      line += ' ';
      line += text;
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(json_, journal_);
  }

 private:
  static int severity(spdlog::level::level_enum l) {
    switch (l) {
      case spdlog::level::critical:
        return 2;
      case spdlog::level::err:
        return 3;
      case spdlog::level::warn:
        return 4;
      case spdlog::level::info:
        return 6;
      default:
        return 7;
    }
  }
  bool json_;
  bool journal_;
};

}  // namespace

std::string sanitize_log_message(std::string_view message) {
  std::string masked = mask_personal_data(message);
  std::string out;
  out.reserve(masked.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : masked) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void init_logging(const std::string& level, const std::string& format) {
  auto sink = std::make_shared<MaskingSink>(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("sluice", sink);
  logger->set_level(spdlog::level::from_str(level));
  // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
  const char* journal = std::getenv("JOURNAL_STREAM");
  logger->set_formatter(
      std::make_unique<LineFormatter>(format == "json", journal != nullptr && *journal != 0));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace sluice
