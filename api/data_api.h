// The data listener's HTTP API, for department systems:
//   POST /v1/messages              one standard envelope -> 202 {messageId, status, receipt}
//   GET  /v1/messages/{id}         state, attempts and per-destination status
//   GET  /v1/messages/{id}/receipt the signed acceptance receipt again; with
//                                  ?status=delivered, a signed delivery receipt once every
//                                  destination has confirmed
//   POST /v1/submit/{feed}         a department's own format through the feed's adapter
//   GET  /v1/health
// A sender sees only its own messages. On a half of a gate, a message delivered to the ferry
// also shows what the other half knows of it ("inner"/"outer": its state and deliveries
// there), and its delivery receipt is the one the other half signed once every destination
// there confirmed.
#pragma once

#include <functional>
#include <optional>

#include "api/handler.h"
#include "api/health.h"
#include "common/error.h"
#include "net/listener.h"

namespace sluice::trust {
class DocumentSigner;
}
namespace sluice::queue {
struct MessageStatus;
}

namespace sluice::api {

// The signed delivery receipt of a message every destination has confirmed.
Result<std::string> delivery_receipt(const trust::DocumentSigner& signer,
                                     const queue::MessageStatus& s);

// What the other half of a gate knows of a message this half ferried to it.
struct PeerAnswer {
  bool found = false;
  std::string status_json;  // its status JSON there (status_json below), or {"error": ...}
  std::string receipt;      // its signed delivery receipt, once all its destinations confirmed
};
struct PeerView {
  std::string destination;  // the ferry destination
  std::string name;         // "inner" or "outer": the key the other half's status goes under
  std::function<void(std::string message_id,
                     std::move_only_function<void(Result<PeerAnswer>)> done)>
      ask;
};

class DataApi final : public HttpHandler {
 public:
  DataApi(const net::ListenerConfig& config, pipeline::Ingest& ingest, queue::Store& store,
          Metrics& metrics, ingress::FeedIngest* feeds = nullptr,
          const trust::DocumentSigner* signer = nullptr)
      : config_(config),
        ingest_(ingest),
        store_(store),
        metrics_(metrics),
        feeds_(feeds),
        signer_(signer) {}
  void handle(HttpRequest request, Respond respond) override;
  net::RequestPlan plan(const net::RequestHead& head) const override;
  // Before the listener starts.
  void set_peer(PeerView peer) { peer_ = std::move(peer); }
  void set_readiness(Readiness readiness) { readiness_ = std::move(readiness); }

 private:
  void status(const HttpRequest& req, std::string_view id, Respond& respond);
  void receipt(const HttpRequest& req, std::string_view id, Respond& respond);

  net::ListenerConfig config_;
  pipeline::Ingest& ingest_;
  queue::Store& store_;
  Metrics& metrics_;
  ingress::FeedIngest* feeds_;
  const trust::DocumentSigner* signer_;
  std::optional<PeerView> peer_;
  Readiness readiness_;
};

}  // namespace sluice::api
