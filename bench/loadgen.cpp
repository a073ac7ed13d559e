// sluice-loadgen: end-to-end load through a real sluiced. It starts an embedded sink, writes a
// sluiced configuration that delivers to it, starts sluiced, then posts N documents over C
// kept-alive mTLS connections (one request in flight per connection) and waits until every
// document has reached the sink.
//
//   sluice-loadgen --sluiced build/gateway/sluiced --pki var/pki --connections 64
//                  --messages 100000 --size 2048   (one line)
//
// Reports (one JSON line): accepted msgs/s (first POST to last 202), end-to-end msgs/s (first
// POST to last delivery), accept latency (POST -> 202) and end-to-end latency (POST -> sink)
// p50/p99, and the check: exactly N distinct deliveries, no duplicates.
//
// With --gate it runs the two halves instead, as two sluiced processes with their own stores,
// certificates and CURVE keys: the documents are posted to the outer, cross the ferry to the
// inner (which re-checks each one: parse, XSD + GB checks, the outer's signature, the gate
// rules, then signs it again and stores it) and are delivered by the inner to the sink.
// sluiced CPU is then the sum of both halves.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "ferry/keys.h"
#include "net/tls.h"
#include "tools/sink/sink.h"

extern char** environ;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Options {
  std::string sluiced = "build/gateway/sluiced";
  std::string pki = "var/pki";
  std::string schemas = "schemas";
  std::string sample = "schemas/examples/case.accept/valid-1.xml";
  std::string dir = "/tmp/sluice-loadgen";
  std::string extra_config;
  std::string store_config;
  int connections = 16;
  std::size_t messages = 20'000;
  std::size_t size = 2048;
  int delivery_concurrency = 16;
  int delivery_pipeline = 1;
  int sluiced_threads = 2;
  int sluiced_workers = 2;
  std::string label;
  std::size_t cases = 0;  // distinct CaseIds cycled through; 0: every message its own case
  bool signing = true;    // sluiced signs every document and answers with a signed receipt
  bool gate = false;      // two halves joined by the ferry: post to the outer, sink inside
  int ferry_concurrency = 2;
};

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sample with SenderMessageId "@@SMID@@" and the Opinion padded to reach `size` bytes.
std::string make_template(const std::string& sample, std::size_t size) {
  std::string doc = sample;
  auto a = doc.find("<env:SenderMessageId>") + std::string("<env:SenderMessageId>").size();
  auto b = doc.find("</env:SenderMessageId>");
  doc.replace(a, b - a, "@@SMID@@");
  auto c = doc.find("<case:CaseId>");
  if (c != std::string::npos) {
    c += std::string("<case:CaseId>").size();
    doc.replace(c, doc.find("</case:CaseId>") - c, "@@CASE@@");
  }
  auto o = doc.find("</case:Opinion>");
  std::size_t target = size > doc.size() + 20 ? size - 20 : doc.size();
  if (o != std::string::npos && doc.size() < target) {
    doc.insert(o, std::string(target - doc.size(), 'x'));
  }
  return doc;
}

std::int64_t ns_since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - t0).count();
}

double pct(std::vector<std::int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t idx = static_cast<std::size_t>(std::ceil(p / 100.0 * v.size())) - 1;
  return v[std::min(idx, v.size() - 1)] / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-loadgen - end-to-end load through sluiced"};
  Options o;
  cli.add_option("--sluiced", o.sluiced, "path to the sluiced binary");
  cli.add_option("--pki", o.pki, "development PKI directory (certs/make-dev-pki.sh)");
  cli.add_option("--schemas", o.schemas, "schema directory");
  cli.add_option("--sample", o.sample, "document to post (SenderMessageId is replaced)");
  cli.add_option("--dir", o.dir, "scratch directory for sluiced's store and config");
  cli.add_option("--connections", o.connections, "kept-alive client connections");
  cli.add_option("--messages", o.messages, "documents to post");
  cli.add_option("--size", o.size, "approximate document size in bytes");
  cli.add_option("--delivery-concurrency", o.delivery_concurrency, "sluiced -> sink connections");
  cli.add_option("--sluiced-threads", o.sluiced_threads, "io threads of sluiced");
  cli.add_option("--sluiced-workers", o.sluiced_workers, "worker threads of sluiced (CPU work)");
  cli.add_option("--delivery-pipeline", o.delivery_pipeline,
                 "pipelined requests per sluiced -> sink connection");
  cli.add_option("--extra-config", o.extra_config, "TOML appended to the generated config");
  cli.add_option("--store-config", o.store_config, "TOML lines added to its [store] table");
  cli.add_option("--label", o.label, "label written into the JSON result");
  cli.add_flag("--signing,!--no-signing", o.signing,
               "the gateway's signatures and receipts (on by default, as in sluiced)");
  cli.add_option(
      "--cases", o.cases,
      "distinct CaseIds (events of one case are delivered in order); 0: one per message");
  cli.add_flag("--gate", o.gate,
               "two halves joined by the ferry: post to the outer, the inner delivers to the sink");
  cli.add_option("--ferry-concurrency", o.ferry_concurrency,
                 "with --gate: delivery workers of the outer's ferry destination");
  CLI11_PARSE(cli, argc, argv);

  const std::size_t n = o.messages;
  std::vector<std::int64_t> sent(n, 0), accepted(n, 0), delivered(n, 0);
  std::atomic<std::size_t> delivered_count{0}, bad_status{0}, sink_unknown{0};
  std::string run_id = std::to_string(::getpid());
  std::string prefix = "lg" + run_id + "-";
  SteadyClock::time_point t0 = SteadyClock::now();

  asio::io_context io(1);
  auto sink = sluice::tools::Sink::start(io, {}, [&](const std::string&, const std::string& body) {
    auto a = body.find(prefix);
    if (a == std::string::npos) {
      sink_unknown.fetch_add(1);
      return;
    }
    std::size_t seq = std::strtoull(body.c_str() + a + prefix.size(), nullptr, 10);
    if (seq < n && delivered[seq] == 0) {
      delivered[seq] = ns_since(t0);
      delivered_count.fetch_add(1);
    }
  });

  auto abs = [](const std::string& p) { return std::filesystem::absolute(p).string(); };
  o.dir = abs(o.dir);
  std::filesystem::remove_all(o.dir);
  std::filesystem::create_directories(o.dir);
  std::string pki = abs(o.pki);
  // One half's configuration: `cert` names its certificate in the PKI (gateway-outer or
  // gateway-inner), `destinations` its [[destination]] and [[route]] tables.
  auto config_of = [&](const std::string& id, const std::string& cert, const std::string& dir,
                       const std::string& destinations, const std::string& role = "") {
    return "[gateway]\n" + (role.empty() ? "" : "role = \"" + role + "\"\n") + "id = \"" + id +
           "\"\nstate_dir = \"" + dir +
           "\"\nlog_level = \"warn\"\nthreads = " + std::to_string(o.sluiced_threads) +
           "\nschema_dir = \"" + abs(o.schemas) + "\"\n[listen.data]\nport = 0\ncert = \"" + pki +
           "/" + cert + ".chain.pem\"\nkey = \"" + pki + "/" + cert + ".key.pem\"\nclient_ca = \"" +
           pki + "/ca-bundle.pem\"\ncrls = [\"" + pki +
           "/crl-chain.pem\"]\nrequire_client_cert = true\nmax_anonymous_per_address = " +
           std::to_string(std::max(32, 2 * o.connections)) +
           "\n[listen.admin]\nenabled = "
           "false\n[store]\npath = \"" +
           dir + "/store\"\nmap_size_mb = 4096\nmax_queued_mb = 2048\n" + o.store_config + "\n" +
           destinations + "[[sender]]\nid = \"440604/approval\"\ndoc_types = [\"*\"]\n" +
           (o.signing ? "[signing]\ncert = \"" + pki + "/" + cert + ".chain.pem\"\nkey = \"" + pki +
                            "/" + cert + ".key.pem\"\ntrust = \"" + pki +
                            "/ca-bundle.pem\"\ncrls = [\"" + pki + "/crl-chain.pem\"]\n"
                      : std::string()) +
           o.extra_config + "\n";
  };
  std::string to_sink =
      "[[destination]]\nname = \"sink\"\nkind = \"http\"\nurl = "
      "\"http://127.0.0.1:" +
      std::to_string(sink->port()) +
      "/in\"\nconcurrency = " + std::to_string(o.delivery_concurrency) +
      "\npipeline = " + std::to_string(o.delivery_pipeline) +
      "\n[[route]]\ndoc_type = \"*\"\ndestinations = [\"sink\"]\n";

  // CPU seconds (user + system) a process has used, from /proc.
  auto cpu_seconds = [](pid_t p) {
    std::string stat = read_file("/proc/" + std::to_string(p) + "/stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(field);
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  };
  struct Started {
    pid_t pid = 0;
    std::string ready;  // the ready file's JSON
  };
  std::vector<pid_t> pids;
  double sluiced_cpu = 0;
  auto stop_sluiced = [&] {
    for (auto it = pids.rbegin(); it != pids.rend(); ++it) {
      sluiced_cpu += cpu_seconds(*it);
      ::kill(*it, SIGTERM);
      int st;
      ::waitpid(*it, &st, 0);
    }
    pids.clear();
  };
  // Starts sluiced on `config` in `dir` and waits for its ready file; empty on failure.
  auto start_sluiced = [&](const std::string& dir, const std::string& config) -> Started {
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/sluiced.toml") << config;
    std::string ready = dir + "/ready.json";
    std::string log = dir + "/sluiced.log";
    std::vector<std::string> args{o.sluiced, "--config", dir + "/sluiced.toml", "--ready-file",
                                  ready};
    std::vector<char*> argv_c;
    for (auto& a : args) argv_c.push_back(a.data());
    argv_c.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, args[0].c_str(), &fa, nullptr, argv_c.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      std::cerr << "cannot start " << o.sluiced << "\n";
      return {};
    }
    pids.push_back(pid);
    int st = 0;
    for (int i = 0; i < 2000 && !std::filesystem::exists(ready); ++i) {
      if (::waitpid(pid, &st, WNOHANG) == pid) {  // it stopped: say why, from its log
        pids.pop_back();
        std::cerr << "sluiced exited; see " << log << "\n" << read_file(log);
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!std::filesystem::exists(ready)) {
      std::cerr << "sluiced did not start; see " << log << "\n" << read_file(log);
      return {};
    }
    return {pid, read_file(ready)};
  };
  auto json_string = [](const std::string& json, const std::string& key) {
    auto a = json.find("\"" + key + "\":\"");
    if (a == std::string::npos) return std::string();
    a += key.size() + 4;
    return json.substr(a, json.find('"', a) - a);
  };

  Started front;  // the process the documents are posted to
  if (!o.gate) {
    front = start_sluiced(o.dir, config_of("bench-outer", "gateway-outer", o.dir, to_sink));
  } else {
    std::string keys = o.dir + "/keys";
    std::filesystem::create_directories(keys);
    for (const char* name : {"outer", "inner"}) {
      auto pair = sluice::ferry::generate_key_pair();
      if (!pair || !sluice::ferry::write_key_pair(*pair, keys, name)) {
        std::cerr << "cannot write the ferry keys in " << keys << "\n";
        return 1;
      }
    }
    // What may cross inbound; the outer checks it on the way out, the inner on arrival.
    std::string gate = "[[gate.inbound]]\ndoc_types = [\"case.*\"]\nmax_kb = 1024\n";
    front = start_sluiced(
        o.dir + "/outer",
        "[ferry]\nlisten = \"tcp://127.0.0.1:*\"\nsecret_key = \"" + keys +
            "/outer.key\"\nallowed_keys = [\"" + keys +
            "/inner.pub\"]\npeer = \"gateway/sluice-inner\"\n" + gate +
            config_of("bench-outer", "gateway-outer", o.dir + "/outer",
                      "[[destination]]\nname = \"inner\"\nkind = \"ferry\"\nconcurrency = " +
                          std::to_string(o.ferry_concurrency) +
                          "\n[[route]]\ndoc_type = \"*\"\ndestinations = [\"inner\"]\n",
                      "outer"));
    std::string ferry = json_string(front.ready, "ferryEndpoint");
    if (front.pid != 0 && ferry.empty()) {
      std::cerr << "the outer's ready file names no ferry endpoint: " << front.ready << "\n";
      front = {};
    }
    if (front.pid != 0) {
      Started inner = start_sluiced(
          o.dir + "/inner",
          "[ferry]\nconnect = \"" + ferry + "\"\nsecret_key = \"" + keys +
              "/inner.key\"\nserver_key = \"" + keys +
              "/outer.pub\"\npeer = \"gateway/sluice-outer\"\n" + gate +
              config_of("bench-inner", "gateway-inner", o.dir + "/inner", to_sink, "inner"));
      if (inner.pid == 0) front = {};
      // The inner opens the link after its ready file; give it a moment so that the first
      // documents do not meet a ferry destination that is still waiting for the link.
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  if (front.pid == 0) {
    stop_sluiced();
    return 1;
  }
  std::string rj = front.ready;
  std::string port = rj.substr(rj.find("\"dataPort\":") + 11);
  port = port.substr(0, port.find_first_of(",}"));

  auto ctx = sluice::net::make_client_context(pki + "/ca-bundle.pem",
                                              pki + "/sender-440604-approval.chain.pem",
                                              pki + "/sender-440604-approval.key.pem");
  if (!ctx) {
    std::cerr << ctx.error().message << "\n";
    stop_sluiced();
    return 1;
  }
  std::string tmpl = make_template(read_file(o.sample), o.size);
  std::size_t case_at = tmpl.find("@@CASE@@");
  std::size_t smid_at = tmpl.find("@@SMID@@");
  std::atomic<std::size_t> next{0};
  std::atomic<int> clients_done{0};

  t0 = SteadyClock::now();
  for (int c = 0; c < o.connections; ++c) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          tcp::resolver resolver(co_await asio::this_coro::executor);
          auto [ec_r, eps] = co_await resolver.async_resolve("127.0.0.1", port, kTuple);
          beast::ssl_stream<beast::tcp_stream> stream(co_await asio::this_coro::executor, **ctx);
          auto [ec_c, ep] = co_await beast::get_lowest_layer(stream).async_connect(eps, kTuple);
          beast::get_lowest_layer(stream).socket().set_option(tcp::no_delay(true));
          auto [ec_h] = co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
          if (ec_r || ec_c || ec_h) {
            std::cerr << "connect failed: " << (ec_h ? ec_h : ec_c).message() << "\n";
            clients_done.fetch_add(1);
            co_return;
          }
          beast::flat_buffer buffer;
          for (;;) {
            std::size_t seq = next.fetch_add(1);
            if (seq >= n) break;
            http::request<http::string_body> req{http::verb::post, "/v1/messages", 11};
            req.set(http::field::host, "localhost");
            req.set(http::field::content_type, "application/xml");
            std::string body = tmpl;
            if (case_at != std::string::npos) {
              char case_id[32];
              std::snprintf(case_id, sizeof case_id, "LG%018zu",
                            o.cases == 0 ? seq : seq % o.cases);
              body.replace(case_at, 8, case_id);
            }
            body.replace(smid_at, 8, prefix + std::to_string(seq));
            req.body() = std::move(body);
            req.keep_alive(true);
            req.prepare_payload();
            sent[seq] = ns_since(t0);
            auto [ec_w, nw] = co_await http::async_write(stream, req, kTuple);
            http::response<http::string_body> res;
            auto [ec_rd, nr] = co_await http::async_read(stream, buffer, res, kTuple);
            accepted[seq] = ns_since(t0);
            if (ec_w || ec_rd || res.result_int() != 202) {
              if (bad_status.fetch_add(1) < 5) {
                std::cerr << "POST " << seq << ": " << (ec_w ? ec_w.message() : ec_rd.message())
                          << " " << res.result_int() << " " << res.body() << "\n";
              }
              if (ec_w || ec_rd) break;
            }
          }
          clients_done.fetch_add(1);
        },
        asio::detached);
  }
  // Run until every document is delivered (or nothing moves for 30 s).
  std::size_t last_count = 0;
  auto last_progress = SteadyClock::now();
  while (true) {
    io.run_for(std::chrono::milliseconds(50));
    std::size_t d = delivered_count.load();
    if (clients_done.load() == o.connections && d + bad_status.load() >= n) break;
    if (d != last_count) {
      last_count = d;
      last_progress = SteadyClock::now();
    } else if (SteadyClock::now() - last_progress > std::chrono::seconds(30)) {
      std::cerr << "stalled at " << d << " of " << n << " delivered\n";
      break;
    }
  }
  // Let a late duplicate show up before counting.
  io.run_for(std::chrono::milliseconds(300));
  stop_sluiced();

  std::vector<std::int64_t> accept_lat, e2e_lat;
  std::int64_t last_accept = 0, last_delivery = 0, first_send = INT64_MAX;
  for (std::size_t i = 0; i < n; ++i) {
    if (sent[i] == 0 && accepted[i] == 0) continue;
    first_send = std::min(first_send, sent[i]);
    accept_lat.push_back(accepted[i] - sent[i]);
    last_accept = std::max(last_accept, accepted[i]);
    if (delivered[i] != 0) {
      e2e_lat.push_back(delivered[i] - sent[i]);
      last_delivery = std::max(last_delivery, delivered[i]);
    }
  }
  auto stats = sink->stats();
  bool ok = stats.distinct == n && stats.duplicates == 0 && bad_status.load() == 0 &&
            sink_unknown.load() == 0;
  double own_cpu = cpu_seconds(::getpid());
  std::printf(
      "{\"label\":\"%s\",\"sluiced_cpu_us_per_msg\":%.0f,\"loadgen_cpu_us_per_msg\":%.0f,"
      "\"connections\":%d,\"messages\":%zu,\"size\":%zu,\"accept_msgs_per_s\":%.0f,"
      "\"e2e_msgs_per_s\":%.0f,\"accept_p50_ms\":%.2f,\"accept_p99_ms\":%.2f,\"e2e_p50_ms\":%.2f,"
      "\"e2e_p99_ms\":%.2f,\"delivered\":%llu,\"duplicates\":%llu,\"errors\":%zu,\"ok\":%s}\n",
      o.label.c_str(), sluiced_cpu * 1e6 / n, own_cpu * 1e6 / n, o.connections, n,
      tmpl.size() - 8 + prefix.size() + 5, n / ((last_accept - first_send) / 1e9),
      e2e_lat.size() / ((last_delivery - first_send) / 1e9), pct(accept_lat, 50),
      pct(accept_lat, 99), pct(e2e_lat, 50), pct(e2e_lat, 99),
      static_cast<unsigned long long>(stats.distinct),
      static_cast<unsigned long long>(stats.duplicates), bad_status.load(), ok ? "true" : "false");
  return ok ? 0 : 1;
}
