#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace sluice::test {

std::filesystem::path source_dir() { return SLUICE_SOURCE_DIR; }
std::filesystem::path binary_dir() { return SLUICE_BINARY_DIR; }

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path dev_pki() {
  static std::once_flag once;
  static std::filesystem::path dir = binary_dir() / "test-pki";
  std::call_once(once, [] {
    std::string cmd = (source_dir() / "certs" / "make-dev-pki.sh").string() + " " + dir.string() +
                      " > " + (binary_dir() / "test-pki.log").string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("make-dev-pki.sh failed; see " +
                               (binary_dir() / "test-pki.log").string());
    }
  });
  return dir;
}

std::filesystem::path dev_pki_rsa() {
  static std::once_flag once;
  static std::filesystem::path dir = binary_dir() / "test-pki-rsa";
  std::call_once(once, [] {
    std::string cmd = (source_dir() / "certs" / "make-dev-pki.sh").string() + " " + dir.string() +
                      " --rsa > " + (binary_dir() / "test-pki-rsa.log").string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("make-dev-pki.sh --rsa failed; see " +
                               (binary_dir() / "test-pki-rsa.log").string());
    }
  });
  return dir;
}

PortHold::PortHold() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int one = 1;
  if (fd_ < 0 || ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("cannot hold a loopback port");
  }
  port_ = ntohs(a.sin_port);
}

PortHold::~PortHold() { release(); }

void PortHold::release() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

SinkRunner::SinkRunner(tools::SinkOptions options) {
  sink_ = tools::Sink::start(io_, std::move(options),
                             [this](const std::string& id, const std::string&) {
                               std::lock_guard lock(mutex_);
                               arrivals_.push_back(id);
                             });
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

SinkRunner::~SinkRunner() {
  sink_.reset();
  io_.stop();
  thread_.join();
}

std::vector<std::string> SinkRunner::arrivals() const {
  std::lock_guard lock(mutex_);
  return arrivals_;
}

tools::SinkStats SinkRunner::wait_for(std::uint64_t distinct,
                                      std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (sink_->stats().distinct >= distinct) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return sink_->stats();
}

std::string default_senders() {
  std::string maps = (source_dir() / "adapters" / "mappings").string();
  std::string out = "[[feed]]\nname = \"market-json\"\nmapping = \"" + maps +
                    "/market-regulation-json.toml\"\n"
                    "[[feed]]\nname = \"tax-csv\"\nmapping = \"" +
                    maps +
                    "/tax-register-csv-gbk.toml\"\n"
                    "[[feed]]\nname = \"psb-xml\"\nmapping = \"" +
                    maps +
                    "/public-security-xslt.toml\"\n"
                    "[[feed]]\nname = \"standard-xml\"\nmapping = \"" +
                    maps + "/standard-xml.toml\"\n";
  for (const char* id :
       {"440604/approval", "440605/tax", "440600/market", "440600/supervision", "440600/psb"}) {
    out += "[[sender]]\nid = \"" + std::string(id) +
           "\"\ndoc_types = [\"*\"]\nreceivers = [\"*\"]\nfeeds = [\"market-json\", "
           "\"tax-csv\", \"psb-xml\", \"standard-xml\"]\n";
  }
  return out;
}

std::string http_destination(const std::string& name, std::uint16_t port, int concurrency) {
  return "[[destination]]\nname = \"" + name +
         "\"\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(port) +
         "/inbox\"\nconcurrency = " + std::to_string(concurrency) + "\ntimeout_ms = 2000\n";
}

namespace {

// The [listen.data] defaults, leaving out every key the test sets itself in `extra`.
std::string data_lines(const std::string& extra, const std::string& pki) {
  std::vector<std::pair<std::string, std::string>> defaults = {
      {"cert", "\"" + pki + "/gateway-outer.chain.pem\""},
      {"key", "\"" + pki + "/gateway-outer.key.pem\""},
      {"client_ca", "\"" + pki + "/ca-bundle.pem\""},
      {"crls", "[\"" + pki + "/crl-chain.pem\"]"},
      {"require_client_cert", "true"},
      {"max_body_bytes", "262144"},
      {"request_timeout_ms", "5000"},
  };
  std::string out;
  for (const auto& [k, v] : defaults) {
    if (extra.find(k + " =") == std::string::npos) out += k + " = " + v + "\n";
  }
  return out;
}

// The sluiced under test: this build's, or SLUICE_TEST_SLUICED (to run a test against
// another build, e.g. to show it failing before a fix).

}  // namespace

Gateway::Gateway(GatewayOptions o, const std::string& name) : dir_("sluiced-" + name) {
  auto pki = dev_pki().string();
  std::string toml = R"([gateway]
id = ")" + o.gateway_id +
                     R"("
state_dir = ")" + dir_.path().string() +
                     R"("
log_level = "debug"
threads = 2
schema_dir = ")" + (source_dir() / "schemas").string() +
                     R"("
)" + o.gateway_extra +
                     R"(

[listen.data]
port = 0
)" + data_lines(o.data_extra, pki) +
                     R"()" + o.data_extra + R"(
[listen.admin]
port = 0
cert = ")" + pki + R"(/gateway-outer.chain.pem"
key = ")" + pki + R"(/gateway-outer.key.pem"
client_ca = ")" + pki +
                     R"(/ca-bundle.pem"
crls = [")" + pki + R"(/crl-chain.pem"]
require_client_cert = true

[store]
path = ")" + (dir_.path() / "store").string() +
                     R"("
)" + (o.store_extra.find("map_size_mb") == std::string::npos ? "map_size_mb = 256\n" : "") +
                     o.store_extra + R"(
[signing]
cert = ")" + pki + "/" +
                     o.signing_cert + R"(.chain.pem"
key = ")" + pki + "/" +
                     o.signing_cert + R"(.key.pem"
trust = ")" + pki + R"(/ca-bundle.pem"
crls = [")" + pki + R"(/crl-chain.pem"]

[[admin_role]]
certificate = "admin/netadmin"
role = "system"
[[admin_role]]
certificate = "admin/secadmin"
role = "security"
[[admin_role]]
certificate = "admin/auditor"
role = "audit"
[[admin_role]]
certificate = "monitor/prometheus"
role = "monitor"

[retry]
)" + o.retry + "\n" + o.destinations +
                     "\n" + o.routes + "\n" + o.senders + "\n" + o.extra;
  std::ofstream(dir_ / "sluiced.toml") << toml;
  env_ = o.env;
  wrapper_ = o.wrapper;
  launch();
}

void Gateway::launch() {
  auto ready = dir_ / "ready.json";
  std::filesystem::remove(ready);
  std::vector<std::string> argv = wrapper_;
  for (std::string a :
       {sluiced_binary().string(), std::string("--config"), (dir_ / "sluiced.toml").string(),
        std::string("--ready-file"), ready.string()}) {
    argv.push_back(std::move(a));
  }
  process_ = std::make_unique<Process>(argv, dir_ / "sluiced.log", env_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!std::filesystem::exists(ready)) {
    if (!process_->running() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("sluiced did not start:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string r = read_text(ready);
  data_port_ = static_cast<std::uint16_t>(std::stoi(json_field(r, "dataPort")));
  admin_port_ = static_cast<std::uint16_t>(std::stoi(json_field(r, "adminPort")));
  ferry_endpoint_ = json_field(r, "ferryEndpoint");
}

void Gateway::kill() { process_->stop(SIGKILL); }
pid_t Gateway::pid() const { return process_ ? process_->pid() : 0; }

void Gateway::restart() {
  if (process_->running()) process_->stop(SIGKILL);
  launch();
}

Gateway::~Gateway() {
  if (process_) process_->stop(SIGTERM);
}

int Gateway::stop() { return process_->stop(SIGTERM); }

std::optional<std::uint64_t> Gateway::metric(const std::string& series) const {
  auto m = admin()->request("GET", "/metrics");
  if (!m || m->status != 200) return std::nullopt;
  const std::string line = "\n" + series + " ";
  auto at = m->body.find(line);
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(m->body.substr(at + line.size()));
}

std::unique_ptr<net::HttpsClient> Gateway::client(const std::string& cert_name) const {
  bool admin = cert_name.starts_with("admin") || cert_name.starts_with("monitor");
  return client_on(admin ? admin_port_ : data_port_, cert_name);
}

std::unique_ptr<net::HttpsClient> Gateway::admin_client(const std::string& cert_name) const {
  return client_on(admin_port_, cert_name);
}

std::unique_ptr<net::HttpsClient> Gateway::client_on(std::uint16_t port,
                                                     const std::string& cert_name) const {
  net::ClientOptions o;
  o.host = "localhost";
  o.port = std::to_string(port);
  o.ca = dev_pki() / "ca-bundle.pem";
  if (!cert_name.empty()) {
    o.cert = dev_pki() / (cert_name + ".chain.pem");
    o.key = dev_pki() / (cert_name + ".key.pem");
  }
  o.timeout = std::chrono::seconds(10);
  return std::make_unique<net::HttpsClient>(o);
}

std::string sample(const std::string& relative, const std::string& smid,
                   const std::string& sender) {
  std::string doc = read_text(source_dir() / "schemas" / "examples" / relative);
  if (!sender.empty()) {
    auto a = doc.find("<env:Sender>");
    auto b = doc.find("</env:Sender>");
    if (a != std::string::npos && b != std::string::npos) {
      auto slash = sender.find('/');
      doc.replace(a, b + 13 - a,
                  "<env:Sender><cm:Node>" + sender.substr(0, slash) + "</cm:Node><cm:System>" +
                      sender.substr(slash + 1) + "</cm:System></env:Sender>");
    }
  }
  if (!smid.empty()) {
    auto a = doc.find("<env:SenderMessageId>");
    auto b = doc.find("</env:SenderMessageId>");
    if (a != std::string::npos && b != std::string::npos) {
      a += std::string("<env:SenderMessageId>").size();
      doc.replace(a, b - a, smid);
    }
  }
  return doc;
}

std::string sender_signed_sample(const std::string& cert_name, const std::string& smid,
                                 const std::string& sender) {
  static const std::string kTemplate =
      "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>"
      "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>"
      "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>"
      "<ds:Reference URI=\"#body-conclude\"><ds:Transforms>"
      "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>"
      "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>"
      "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/>"
      "</ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data>"
      "<ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature>";
  TempDir dir("sender-sig");
  std::string doc = sample("case.conclude/valid-1.xml", smid, sender);
  auto at = doc.find("</case:CaseConclude>");
  if (at == std::string::npos) throw std::runtime_error("sample has no CaseConclude");
  doc.insert(at, kTemplate);
  std::ofstream(dir / "in.xml") << doc;
  std::string cmd =
      "xmlsec1 --sign --privkey-pem " + (dev_pki() / (cert_name + ".key.pem")).string() + "," +
      (dev_pki() / (cert_name + ".cert.pem")).string() +
      " --id-attr:Id urn:sluice:xs:case:1:CaseConclude --output " + (dir / "out.xml").string() +
      " " + (dir / "in.xml").string() + " > " + (dir / "log").string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("xmlsec1 --sign failed: " + read_text(dir / "log"));
  }
  return read_text(dir / "out.xml");
}

std::string json_field(const std::string& json, const std::string& field) {
  std::string key = "\"" + field + "\":";
  auto p = json.find(key);
  if (p == std::string::npos) return {};
  p += key.size();
  if (json[p] == '"') {
    auto e = json.find('"', p + 1);
    return json.substr(p + 1, e - p - 1);
  }
  auto e = json.find_first_of(",}", p);
  return json.substr(p, e - p);
}

std::filesystem::path sluiced_binary() {
  if (const char* other = std::getenv("SLUICE_TEST_SLUICED"); other != nullptr && *other) {
    return other;
  }
  return binary_dir() / "gateway" / "sluiced";
}

std::filesystem::path sluicectl_binary() { return binary_dir() / "tools" / "sluicectl"; }

int run_sluicectl(const Gateway& gw, const std::string& args, std::string& said,
                  const std::string& identity) {
  TempDir dir("sluicectl-out");
  const auto out = dir.path() / "out.txt";
  const std::string cmd = "env SLUICE_PKI=" + dev_pki().string() +
                          " SLUICE_ADMIN_PORT=" + std::to_string(gw.admin_port()) + " " +
                          sluicectl_binary().string() + " --json --identity " + identity + " " +
                          args + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace sluice::test
