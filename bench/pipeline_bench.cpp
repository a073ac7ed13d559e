// sluice-pipeline-bench: documents per second per core through the stages of the ingest
// pipeline, each measured alone on one thread (medians of several runs).
//
//   sluice-pipeline-bench --stage parse --size 2048 --seconds 2 --runs 5
//
// Stages: parse (hardened libxml2 parse + envelope read), prepare (parse + MessageId + Trace +
// serialise), plus the stages registered further below as the pipeline grows.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "common/encoding.h"
#include "common/random.h"
#include "xml/envelope.h"
#include "xml/parse.h"

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
  cli.add_option("--stage", stage, "parse | prepare");
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
  stages["prepare"] = [&] {
    auto d = xml::parse(doc, limits);
    auto e = xml::read_envelope(d->get());
    xml::set_message_id(*e, new_uuid_v7(random, 1790000000000));
    xml::add_trace_hop(*e, "bench", format_time_cn(1790000000000));
    std::string out = xml::serialize(d->get());
    if (out.empty()) std::abort();
  };
  auto it = stages.find(stage);
  if (it == stages.end()) {
    std::fprintf(stderr, "unknown stage %s\n", stage.c_str());
    return 2;
  }
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) rates.push_back(run(it->second, seconds));
  std::sort(rates.begin(), rates.end());
  std::printf(
      "{\"stage\":\"%s\",\"bytes\":%zu,\"docs_per_s\":%.0f,\"min\":%.0f,\"max\":%.0f,\"runs\":%d}"
      "\n",
      stage.c_str(), doc.size(), rates[rates.size() / 2], rates.front(), rates.back(), runs);
  return 0;
}
