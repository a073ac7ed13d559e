// The data listener's HTTP API, for department systems:
//   POST /v1/messages              one standard envelope -> 202 {messageId, status, receipt}
//   GET  /v1/messages/{id}         state, attempts and per-destination status
//   GET  /v1/messages/{id}/receipt the signed acceptance receipt again; with
//                                  ?status=delivered, a signed delivery receipt once every
//                                  destination has confirmed
//   POST /v1/submit/{feed}         a department's own format through the feed's adapter
//   GET  /v1/health
// A sender sees only its own messages.
#pragma once

#include "api/handler.h"
#include "net/listener.h"

namespace sluice::trust {
class DocumentSigner;
}

namespace sluice::api {

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

 private:
  void status(const HttpRequest& req, std::string_view id, Respond& respond);
  void receipt(const HttpRequest& req, std::string_view id, Respond& respond);

  net::ListenerConfig config_;
  pipeline::Ingest& ingest_;
  queue::Store& store_;
  Metrics& metrics_;
  ingress::FeedIngest* feeds_;
  const trust::DocumentSigner* signer_;
};

}  // namespace sluice::api
