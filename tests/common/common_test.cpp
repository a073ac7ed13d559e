#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pii.h"
#include "common/worker_pool.h"

namespace sluice {
namespace {

TEST_CASE("trim_xml_space removes XML white space at both ends only", "[common]") {
  CHECK(trim_xml_space(" \t\r\n 4401 02\n") == "4401 02");
  CHECK(trim_xml_space("plain") == "plain");
  CHECK(trim_xml_space(" \n\t ").empty());
  CHECK(trim_xml_space("").empty());
  CHECK(trim_xml_space("\xc2\xa0x") == "\xc2\xa0x");  // no-break space is not XML space
}

TEST_CASE("is_valid_utf8 follows RFC 3629", "[common]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("ascii"));
  CHECK(is_valid_utf8("\xe6\x94\xbf\xe5\x8a\xa1"));  // 政务
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));          // U+1F600
  CHECK(is_valid_utf8("\xf4\x8f\xbf\xbf"));          // U+10FFFF, the last code point
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));            // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xe0\x80\xaf"));        // overlong, three bytes
  CHECK_FALSE(is_valid_utf8("\xf0\x80\x80\xaf"));    // overlong, four bytes
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));        // UTF-16 surrogate D800
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));    // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));    // invalid lead byte
  CHECK_FALSE(is_valid_utf8("\xe6\x94"));            // truncated
  CHECK_FALSE(is_valid_utf8("\xe6\x41\xbf"));        // bad continuation
  CHECK_FALSE(is_valid_utf8("\xd5\xfe\xce\xf1"));    // GBK 政务, not UTF-8
}

TEST_CASE("base64 round-trips and refuses malformed text", "[common]") {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto back = base64_decode(base64_encode(s));
    REQUIRE(back);
    CHECK(*back == s);
  }
  CHECK(base64_encode("abcd") == "YWJjZA==");
  CHECK(base64_decode("YWJj\nZA==") == std::optional<std::string>("abcd"));
  CHECK_FALSE(base64_decode("YWJjZA="));  // not a multiple of four
  CHECK_FALSE(base64_decode("YW!jZA=="));
}

TEST_CASE("sha256_hex matches the FIPS 180-2 vector", "[common]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("times: China time out, offsets and calendar checked in", "[common]") {
  CHECK(format_time_cn(0) == "1970-01-01T08:00:00.000+08:00");
  CHECK(format_time_cn(-1) == "1970-01-01T07:59:59.999+08:00");
  auto ms = parse_datetime_ms("2026-11-23T11:24:05.123+08:00");
  REQUIRE(ms);
  CHECK(format_time_cn(*ms) == "2026-11-23T11:24:05.123+08:00");
  CHECK(parse_datetime_ms("2026-11-23T03:24:05.123Z") == ms);
  CHECK(parse_datetime_ms("2024-02-29T00:00:00Z"));  // leap year
  CHECK_FALSE(parse_datetime_ms("2026-02-29T00:00:00Z"));
  CHECK_FALSE(parse_datetime_ms("2026-04-31T00:00:00Z"));
  CHECK_FALSE(parse_datetime_ms("2026-11-23T11:24:05"));  // no offset
  CHECK_FALSE(parse_datetime_ms("2026-11-23T24:00:00Z"));
  CHECK_FALSE(parse_datetime_ms("2026-11-23T11:24:05.Z"));
  CHECK_FALSE(parse_datetime_ms("2026-11-23T11:24:05+15:00"));
  CHECK_FALSE(parse_datetime_ms("2026-11-23T11:24:05Z trailing"));
}

TEST_CASE("mask_personal_data masks ID and mobile numbers, keeps other text", "[common]") {
  CHECK(mask_personal_data("id 440604199001011234 ok") == "id 4406**********1234 ok");
  CHECK(mask_personal_data("id 44060419900101123X") == "id 4406**********123X");
  CHECK(mask_personal_data("old id 440604900101123") == "old id 4406*******1123");
  CHECK(mask_personal_data("tel 13812345678") == "tel 138****5678");
  CHECK(mask_personal_data("tel +8613812345678") == "tel +86138****5678");
  CHECK(mask_personal_data("电话13812345678。") == "电话138****5678。");
  // Shapes that used to slip through: an extra digit, an ID run together with a phone
  // number, a mobile number inside a longer run, a phone in a claimed system name.
  CHECK(mask_personal_data("id 4406041990010112345") == "id 4406***********2345");
  CHECK(mask_personal_data("44060419900101123413812345678") == "4406*********************5678");
  CHECK(mask_personal_data("x 013812345678 y") == "x 013*****5678 y");
  CHECK(mask_personal_data("440604/+8613826581234") == "440604/+86138****1234");
  CHECK(mask_personal_data("problem at 138265812345") == "problem at 138*****2345");
  // Not personal data: other lengths, landlines, a UUID with digit runs.
  CHECK(mask_personal_data("case 2026112300001, line 12") == "case 2026112300001, line 12");
  CHECK(mask_personal_data("tel 02012345678") == "tel 02012345678");
  const std::string uuid = "01937a1c-5e2f-7abc-8def-123456789012";
  CHECK(mask_personal_data(uuid) == uuid);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("WorkerPool refuses jobs beyond its bound and runs the queued ones on stop", "[common]") {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> ran{0};
  std::promise<void> started;
  WorkerPool pool("test", 1, 2);
  auto blocker = [&] {
    started.set_value();
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return release; });
    ran.fetch_add(1);
  };
  REQUIRE(pool.try_post(blocker));  // taken by the one worker...
  // ...once it is running, two more fit in the queue and the next is refused.
  REQUIRE(started.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(pool.queued() == 0);
  CHECK(pool.try_post([&] { ran.fetch_add(1); }));
  CHECK(pool.try_post([&] { ran.fetch_add(1); }));
  CHECK_FALSE(pool.try_post([&] { ran.fetch_add(100); }));
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  pool.stop();
  CHECK(ran.load() == 3);
  CHECK_FALSE(pool.try_post([] {}));  // stopped
}

TEST_CASE("WorkerPool survives a job that throws", "[common]") {
  WorkerPool pool("test", 1, 8);
  std::atomic<int> ran{0};
  REQUIRE(pool.try_post([] { throw std::runtime_error("boom"); }));
  REQUIRE(pool.try_post([&] { ran.fetch_add(1); }));
  pool.stop();
  CHECK(ran.load() == 1);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("a logged value cannot forge a line or leak personal data", "[common][security]") {
  // A spool file named to look like a second, critical log line.
  std::string forged = sanitize_log_message(
      "spool:in/a.xml\n2026-12-01T00:00:00.000+0800 critical gateway compromised\r\x1b[2J");
  CHECK(forged.find('\n') == std::string::npos);
  CHECK(forged.find('\r') == std::string::npos);
  CHECK(forged.find('\x1b') == std::string::npos);
  CHECK(forged ==
        "spool:in/a.xml\\x0a2026-12-01T00:00:00.000+0800 critical gateway compromised"
        "\\x0d\\x1b[2J");
  CHECK(sanitize_log_message("tel 13812345678\tok") == "tel 138****5678\\x09ok");
  CHECK(sanitize_log_message("中文 stays") == "中文 stays");
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("read_dropped_file reads a plain file and refuses links, FIFOs and other owners",
          "[common][security]") {
  auto dir = std::filesystem::temp_directory_path() / ("dropped-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "plain.xml") << "<r/>";
  auto ok = read_dropped_file(dir / "plain.xml", 1024, std::nullopt);
  REQUIRE(ok);
  CHECK(*ok == "<r/>");
  CHECK(read_dropped_file(dir / "plain.xml", 1024, ::getuid()));
  auto other = read_dropped_file(dir / "plain.xml", 1024, ::getuid() + 1);
  REQUIRE_FALSE(other);
  CHECK(other.error().message.find("not by the configured owner") != std::string::npos);
  std::filesystem::create_symlink(dir / "plain.xml", dir / "link.xml");
  auto link = read_dropped_file(dir / "link.xml", 1024, std::nullopt);
  REQUIRE_FALSE(link);
  CHECK(link.error().is(Errc::kInvalidArgument));
  REQUIRE(::mkfifo((dir / "fifo.xml").c_str(), 0600) == 0);
  auto fifo = read_dropped_file(dir / "fifo.xml", 1024, std::nullopt);  // must not hang
  REQUIRE_FALSE(fifo);
  CHECK(fifo.error().message.find("not a regular file") != std::string::npos);
  CHECK(read_file(dir / "link.xml", 1024));  // the ordinary reader follows, as it should
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice

TEST_CASE("metrics render HELP and TYPE once per family and cumulative histogram buckets") {
  sluice::Metrics m;
  m.add("sluice_deliveries_total", "destination=\"a\",result=\"delivered\"");
  m.add("sluice_deliveries_total", "destination=\"b\",result=\"delivered\"", 2);
  m.observe("sluice_delivery_latency_seconds", "destination=\"a\"", 0.004);
  m.observe("sluice_delivery_latency_seconds", "destination=\"a\"", 0.3);
  m.observe("sluice_delivery_latency_seconds", "destination=\"a\"", 900);  // above every bound
  const std::string out = m.render();
  INFO(out);
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = out.find(what); at != std::string::npos; at = out.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("# HELP sluice_deliveries_total ") == 1);
  CHECK(count("# TYPE sluice_deliveries_total counter\n") == 1);
  CHECK(count("# TYPE sluice_delivery_latency_seconds histogram\n") == 1);
  CHECK(out.find("sluice_delivery_latency_seconds_bucket{destination=\"a\",le=\"0.001\"} 0\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_bucket{destination=\"a\",le=\"0.005\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_bucket{destination=\"a\",le=\"0.5\"} 2\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_bucket{destination=\"a\",le=\"300\"} 2\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_bucket{destination=\"a\",le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_count{destination=\"a\"} 3\n") !=
        std::string::npos);
  CHECK(out.find("sluice_delivery_latency_seconds_sum{destination=\"a\"} 900.304\n") !=
        std::string::npos);
  CHECK(m.observations("sluice_delivery_latency_seconds", "destination=\"a\"") == 3);
  // A family outside the catalogue still renders, and says so (a gateway test forbids it).
  m.add("sluice_made_up_total", "");
  CHECK(m.render().find("# HELP sluice_made_up_total Sluice metric (not in the catalogue).") !=
        std::string::npos);
}
