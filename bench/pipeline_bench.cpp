// sluice-pipeline-bench: documents per second per core through the stages of the ingest
// pipeline, each measured alone on one thread (medians of several runs).
//
//   sluice-pipeline-bench --stage parse --size 2048 --seconds 2 --runs 5
//
// Stages (2 KB standard documents unless noted):
//   parse          hardened libxml2 parse + envelope read
//   prepare        the whole pipeline before the store, as sluiced runs it (Ingest::prepare):
//                  parse, envelope, sender check, authorize, XSD + GB checks, route,
//                  idempotency look-up, MessageId + Trace, gateway signature (ECDSA P-256),
//                  serialise, signed receipt
//   validate       XSD + beyond-XSD checks of a parsed document (validation alone)
//   json           market-regulation JSON feed: records -> standard XML + validation
//   csv            tax CSV feed in GBK: rows -> standard XML + validation
//   sign-ecdsa     copy a parsed document + gateway signature, ECDSA P-256 (sign-rsa: RSA-2048)
//   verify-ecdsa   parse (comments refused) + strict verification (verify-rsa: RSA-2048)
//   xmlsec-sign    the baseline: the same signature made by xmlsec1's own signing loop
//                  (template, xmlSecDSigCtxSign) on a copied document, ECDSA P-256
#include <iconv.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "adapters/registry.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "common/metrics.h"
#include "common/random.h"
#include "pipeline/authz.h"
#include "pipeline/ingest.h"
#include "pipeline/routes.h"
#include "queue/queue.h"
#include "trust/signer.h"
#include "trust/verifier.h"
#include "xml/envelope.h"
#include "xml/parse.h"
#include "xml/validate.h"

using namespace sluice;
using Steady = std::chrono::steady_clock;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string padded(std::string doc, std::size_t size) {
  auto o = doc.find("</case:Opinion>");
  if (o != std::string::npos && doc.size() < size)
    doc.insert(o, std::string(size - doc.size(), 'x'));
  return doc;
}

double run(const std::function<void()>& op, double seconds) {
  std::size_t n = 0;
  auto start = Steady::now();
  auto end = start + std::chrono::duration<double>(seconds);
  while (Steady::now() < end) {
    for (int i = 0; i < 64; ++i) op();
    n += 64;
  }
  return n / std::chrono::duration<double>(Steady::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"sluice-pipeline-bench - documents/s per core through ingest stages"};
  std::string stage = "parse", sample = "schemas/examples/case.accept/valid-1.xml",
              schemas = "schemas";
  std::size_t size = 2048;
  double seconds = 2;
  int runs = 5;
  std::string pki = "var/pki", pki_rsa = "var/pki-rsa", mappings = "adapters/mappings";
  std::size_t batch = 100;
  cli.add_option("--stage", stage,
                 "parse | prepare | validate | json | csv | sign-ecdsa | sign-rsa | verify-ecdsa | "
                 "verify-rsa | xmlsec-sign");
  cli.add_option("--pki", pki, "ECDSA development PKI (certs/make-dev-pki.sh DIR)");
  cli.add_option("--pki-rsa", pki_rsa, "RSA development PKI (certs/make-dev-pki.sh DIR --rsa)");
  cli.add_option("--mappings", mappings, "mapping directory of the shipped feeds");
  cli.add_option("--batch", batch, "records per feed input (json, csv)");
  cli.add_option("--sample", sample, "input document");
  cli.add_option("--schemas", schemas, "schema directory");
  cli.add_option("--size", size, "pad the document to about this many bytes");
  cli.add_option("--seconds", seconds, "duration of one run");
  cli.add_option("--runs", runs, "runs; the median is reported");
  CLI11_PARSE(cli, argc, argv);

  xml::initialize(schemas);
  std::string doc = padded(read_file(sample), size);
  xml::ParseLimits limits;
  SeededRandom random(1);
  std::map<std::string, std::function<void()>> stages;
  stages["parse"] = [&] {
    auto d = xml::parse(doc, limits);
    auto e = xml::read_envelope(d->get());
    if (!e) std::abort();
  };
  std::unique_ptr<xml::Validator> validator;
  auto need_validator = [&] {
    if (!validator) {
      auto v = xml::Validator::load(schemas);
      if (!v) {
        std::fprintf(stderr, "%s\n", v.error().message.c_str());
        std::exit(1);
      }
      validator = std::move(*v);
    }
    return validator.get();
  };
  xml::DocPtr parsed;
  auto need_parsed = [&] {
    if (!parsed) parsed = std::move(*xml::parse(doc, limits));
    return parsed.get();
  };
  stages["validate"] = [&] {
    if (!need_validator()->validate(need_parsed()).empty()) std::abort();
  };

  std::size_t out_bytes = 0;  // size of the standard document a stage produces
  // Feeds: one input of `batch` records per call; the rate is records (documents) per second.
  std::unique_ptr<adapters::Adapter> adapter;
  std::string feed_input;
  std::size_t per_call = 1;
  auto feed_stage = [&](const std::string& mapping) {
    adapters::Registry reg;
    adapters::register_builtin_adapters(reg);
    auto a = reg.create(std::filesystem::path(mappings) / mapping);
    if (!a) {
      std::fprintf(stderr, "%s\n", a.error().message.c_str());
      std::exit(1);
    }
    adapter = std::move(*a);
    per_call = batch;
    adapters::Context once;
    once.sender = {"440600", "market"};
    once.feed = "bench";
    once.now_ms = 1'795'400'000'000;
    adapter->translate(feed_input, once, [&](adapters::Translated&& t) {
      if (out_bytes == 0 && t.document) out_bytes = xml::serialize(t.document->get()).size();
    });
    return [&] {
      adapters::Context ctx;
      ctx.sender = {"440600", "market"};
      ctx.feed = "bench";
      ctx.now_ms = 1'795'400'000'000;
      std::size_t ok = 0;
      adapter->translate(feed_input, ctx, [&](adapters::Translated&& t) {
        if (t.document && need_validator()->validate(t.document->get()).empty()) ++ok;
      });
      if (ok != batch) std::abort();
    };
  };
  if (stage == "json") {
    // A market-regulation API batch whose records become ~2 KB documents.
    std::string opinion(size > 1150 ? size - 1150 : 10, 'x');
    feed_input = "{\"code\":0,\"data\":{\"items\":[";
    for (std::size_t i = 0; i < batch; ++i) {
      char rec[512];
      std::snprintf(
          rec, sizeof rec,
          "%s{\"ywlsh\":\"SCJG-SL-%06zu\",\"sblsh\":\"44060020261123%06zu\",\"sxbm\":\"440600-SCJG-"
          "XK-0003\","
          "\"blbm\":{\"tyxydm\":\"11440600MB2C173593\",\"mc\":\"佛山市市场监督管理局\"},\"xzqhdm\":"
          "\"440600\","
          "\"fssj\":\"2026-11-23 "
          "09:10:00\",\"slr\":{\"gh\":\"SC-0107\",\"xm\":\"陈静\",\"zw\":\"科员\"},\"slyj\":\"",
          i == 0 ? "" : ",", i, i);
      feed_input += rec;
      feed_input += opinion;
      feed_input += "\",\"slsj\":\"20261123091000\",\"slbh\":\"佛市监食受〔2026〕0101号\"}";
    }
    feed_input += "]}}";
    stages["json"] = feed_stage("market-regulation-json.toml");
  } else if (stage == "csv") {
    // A GBK export whose rows become ~2 KB documents (a long material list).
    std::string header =
        "SBLSH,SXBM,SXMC,SLBMDM,SLBMMC,XZQHDM,SBSJ,SQRMC,SQRLX,ZJLX,ZJHM,LXSJ,SBQD,BJLX,FDSX,CNSX,"
        "CLQD\r\n";
    // Five materials make a ~2 KB standard document.
    std::string materials;
    for (int m = 0; m < 5; ++m) materials += (m == 0 ? "" : ";") + std::string("营业执照复印件");
    std::string item_name = "发票领用（个人代开）及相关涉税事项";
    while (item_name.size() + 2010 < size) item_name += "办理";
    std::string utf8 = header;
    for (std::size_t i = 0; i < batch; ++i) {
      char row[2048];
      std::snprintf(row, sizeof row,
                    "44060520261123%06zu,440605-SW-XK-0008,%s,11440605MB2D314825,"
                    "国家税务总局佛山市南海区税务局,440605,2026-11-23 "
                    "10:01:00,王小明,1,111,440605198803121002,13953464097,1,2,20,10,",
                    i, item_name.c_str());
      utf8 += row;
      utf8 += materials + "\r\n";
    }
    std::vector<int> bad;
    iconv_t cd = iconv_open("GBK", "UTF-8");
    feed_input.resize(utf8.size() * 2);
    char* in = utf8.data();
    std::size_t in_left = utf8.size(), out_left = feed_input.size();
    char* outp = feed_input.data();
    iconv(cd, &in, &in_left, &outp, &out_left);
    iconv_close(cd);
    feed_input.resize(feed_input.size() - out_left);
    stages["csv"] = feed_stage("tax-register-csv-gbk.toml");
  }

  // Signing and verification.
  std::unique_ptr<trust::DocumentSigner> signer;
  std::optional<trust::DocumentVerifier> verifier;
  // The whole prepare needs a store (for the idempotency look-up), routes, senders and keys.
  std::unique_ptr<queue::Store> store;
  std::optional<pipeline::RouteTable> routes;
  std::optional<pipeline::Authorizer> authorizer;
  std::optional<pipeline::Ingest> ingest;
  Metrics metrics;
  std::filesystem::path store_dir;
  std::string signed_doc;
  auto crypto_setup = [&](const std::string& dir) {
    auto sgn = trust::DocumentSigner::create(dir + "/gateway-outer.chain.pem",
                                             dir + "/gateway-outer.key.pem", "bench");
    auto ts = trust::TrustStore::load(dir + "/ca-bundle.pem", {dir + "/crl-chain.pem"});
    if (!sgn || !ts) {
      std::fprintf(stderr, "cannot load %s (run certs/make-dev-pki.sh)\n", dir.c_str());
      std::exit(1);
    }
    signer = std::move(*sgn);
    verifier.emplace(*ts);
    xml::DocPtr d(xmlCopyDoc(need_parsed(), 1));
    (void)signer->sign(d.get());
    signed_doc = xml::serialize(d.get());
    out_bytes = signed_doc.size();
  };
  auto sign_stage = [&] {
    xml::DocPtr d(xmlCopyDoc(parsed.get(), 1));
    if (!signer->sign(d.get())) std::abort();
  };
  auto verify_stage = [&] {
    if (!verifier->verify_bytes(signed_doc, limits)) std::abort();
  };
  if (stage == "sign-ecdsa" || stage == "verify-ecdsa") crypto_setup(pki);
  if (stage == "sign-rsa" || stage == "verify-rsa") crypto_setup(pki_rsa);
  if (stage == "prepare") {
    crypto_setup(pki);
    store_dir = std::filesystem::temp_directory_path() /
                ("sluice-pipeline-bench-" + std::to_string(::getpid()));
    queue::Options so;
    so.path = store_dir;
    so.map_size_bytes = 64ull << 20;
    auto st = queue::Store::open(so);
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 1;
    }
    store = std::move(*st);
    routes.emplace(std::vector<pipeline::RouteConfig>{{.destinations = {"sink"}}});
    authorizer.emplace(std::vector<pipeline::SenderConfig>{{.id = "440604/approval"}});
    pipeline::IngestDeps deps;
    deps.options.gateway_id = "bench";
    deps.options.xml = limits;
    deps.store = store.get();
    deps.routes = &*routes;
    deps.metrics = &metrics;
    deps.validator = need_validator();
    deps.authorizer = &*authorizer;
    deps.signer = signer.get();
    deps.clock = &SystemClock::instance();
    deps.random = &random;
    ingest.emplace(deps);
  }
  stages["prepare"] = [&] {
    pipeline::Submission sub;
    sub.bytes = doc;
    sub.peer.authenticated = true;
    sub.peer.node = "440604";
    sub.peer.system = "approval";
    sub.source = "bench";
    auto p = ingest->prepare(sub);
    if (!p || p->message.payload.empty() || p->accepted.receipt.empty()) std::abort();
  };
  stages["sign-ecdsa"] = sign_stage;
  stages["sign-rsa"] = sign_stage;
  stages["verify-ecdsa"] = verify_stage;
  stages["verify-rsa"] = verify_stage;

  // The baseline: xmlsec1's own signing loop, same profile, same key.
  xmlSecKeyPtr xkey = nullptr;
  if (stage == "xmlsec-sign") {
    if (xmlSecInit() < 0 || xmlSecCryptoAppInit(nullptr) < 0 || xmlSecCryptoInit() < 0)
      std::abort();
    xmlSecErrorsDefaultCallbackEnableOutput(0);
    xkey = xmlSecCryptoAppKeyLoad((pki + "/gateway-outer.key.pem").c_str(), xmlSecKeyDataFormatPem,
                                  nullptr, nullptr, nullptr);
    if (xkey == nullptr ||
        xmlSecCryptoAppKeyCertLoad(xkey, (pki + "/gateway-outer.cert.pem").c_str(),
                                   xmlSecKeyDataFormatPem) < 0) {
      std::fprintf(stderr, "cannot load the key into xmlsec1\n");
      return 1;
    }
    need_parsed();
  }
  stages["xmlsec-sign"] = [&] {
    xml::DocPtr d(xmlCopyDoc(parsed.get(), 1));
    xmlNode* root = xmlDocGetRootElement(d.get());
    xmlNode* sig = xmlSecTmplSignatureCreate(d.get(), xmlSecTransformExclC14NId,
                                             xmlSecTransformEcdsaSha256Id, nullptr);
    xmlAddChild(root, sig);
    xmlNode* ref = xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, nullptr,
                                                   reinterpret_cast<const xmlChar*>(""), nullptr);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId);
    xmlNode* ki = xmlSecTmplSignatureEnsureKeyInfo(sig, nullptr);
    xmlSecTmplKeyInfoAddX509Data(ki);
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(nullptr);
    ctx->signKey = xmlSecKeyDuplicate(xkey);
    if (xmlSecDSigCtxSign(ctx, sig) < 0) std::abort();
    xmlSecDSigCtxDestroy(ctx);
  };

  auto it = stages.find(stage);
  if (it == stages.end()) {
    std::fprintf(stderr, "unknown stage %s\n", stage.c_str());
    return 2;
  }
  it->second();  // warm up (and fail early)
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r)
    rates.push_back(run(it->second, seconds) * static_cast<double>(per_call));
  std::sort(rates.begin(), rates.end());
  std::printf(
      "{\"stage\":\"%s\",\"input_bytes_per_doc\":%zu,\"document_bytes\":%zu,\"docs_per_s\":%.0f,"
      "\"min\":%.0f,\"max\":%.0f,\"runs\":%d}\n",
      stage.c_str(), feed_input.empty() ? doc.size() : feed_input.size() / per_call,
      out_bytes != 0 ? out_bytes : doc.size(), rates[rates.size() / 2], rates.front(), rates.back(),
      runs);
  if (store) {
    store->close();
    std::filesystem::remove_all(store_dir);
  }
  return 0;
}
