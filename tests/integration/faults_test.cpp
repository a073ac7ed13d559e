// Faults a gateway must ride out without a false word or a storm: concurrent resends, a store
// that can no longer write, a receiver that answers 5xx. Each starts its own sluiced and sink.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <barrier>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

namespace sluice::test {
namespace {

namespace json = boost::json;

// Fault: the same SenderMessageId on 4 connections at once stored one MessageId, but most
// duplicate answers carried a receipt signed for another id, one never stored: a false
// statement under the gateway's key. Every answer must carry the stored message's receipt.
TEST_CASE("concurrent resends all get the stored message's id and receipt", "[faults]") {
  SinkRunner sink;
  Gateway gw(
      {.destinations = http_destination("sink", sink.port()), .gateway_extra = "workers = 4\n"});
  constexpr int kClients = 4;
  constexpr int kRounds = 40;
  std::vector<std::unique_ptr<net::HttpsClient>> clients;
  for (int c = 0; c < kClients; ++c) clients.push_back(gw.client("sender-440604-approval"));
  std::barrier start(kClients);
  std::mutex mutex;
  std::map<int, std::set<std::string>> ids;  // round -> MessageIds answered
  std::vector<std::string> wrong;            // answers whose receipt names another id
  int answered = 0;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        std::string doc = sample("case.accept/valid-1.xml", "race-" + std::to_string(round));
        start.arrive_and_wait();
        auto r = clients[c]->request("POST", "/v1/messages", doc);
        if (!r || r->status != 202) continue;
        boost::system::error_code ec;
        auto v = json::parse(r->body, ec);
        if (ec || !v.is_object()) continue;
        std::string id(v.as_object()["messageId"].as_string());
        std::string receipt(v.as_object()["receipt"].as_string());
        std::lock_guard lock(mutex);
        ++answered;
        ids[round].insert(id);
        if (receipt.find("<rc:MessageId>" + id + "</rc:MessageId>") == std::string::npos) {
          wrong.push_back(id + ": " + receipt.substr(0, 300));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(answered == kClients * kRounds);
  for (const auto& [round, set] : ids) {
    INFO("round " << round);
    CHECK(set.size() == 1);
  }
  INFO((wrong.empty() ? std::string() : wrong.front()));
  CHECK(wrong.empty());
  CHECK(sink.wait_for(kRounds).distinct == kRounds);
}

}  // namespace
}  // namespace sluice::test
