// The ingest pipeline shared by every entry path (HTTPS POST, feeds, batch upload, spool
// directory): parse (hardened) -> envelope -> authenticate the claimed sender -> validate ->
// authorize -> route -> assign MessageId + Trace hop -> sign -> persist (durable) -> answer.
// Knows nothing of HTTP: it returns an Accepted or a Rejection whose kind says what is wrong
// (api/ alone turns a kind into an HTTP status).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/identity.h"
#include "common/random.h"
#include "pipeline/config.h"
#include "xml/parse.h"
#include "xml/problem.h"

#include "queue/queue.h"

namespace sluice::xml {
class Validator;
struct Envelope;
}  // namespace sluice::xml
namespace sluice::trust {
class DocumentSigner;
class DocumentVerifier;
class SenderSignatureVerifier;
}  // namespace sluice::trust

namespace sluice {
class Metrics;
}
namespace sluice::ops {
class Quarantine;
class AuditLog;
}  // namespace sluice::ops

namespace sluice::pipeline {

class RouteTable;
class Authorizer;

struct Submission {
  std::string bytes;         // one standard envelope as received...
  xml::DocPtr document;      // ...or already parsed / built by an adapter
  PeerIdentity peer;         // who sent it (verified certificate or configured spool sender)
  std::string source;        // "api", "feed:<name>", "spool:<name>/<file>", "resubmit:<id>"
  std::int64_t record = -1;  // record and line in a feed input, for problems
  int line = 0;
  bool quarantine_on_failure = true;
  // Set for a document received over the ferry: the gate rules of that direction apply.
  std::optional<Crossing> arrived;
  // Not stored when this has passed before the append (kDeadline); the caller answers.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct Accepted {
  std::string message_id;
  bool duplicate = false;
  std::string doc_type;
  std::string sender;
  std::string sender_message_id;
  std::vector<std::string> destinations;
  std::string receipt;  // signed receipt XML (empty when signing is off)
};

// What is wrong with a refused input, in the pipeline's terms.
enum class RefusalKind : std::uint8_t {
  kMalformed,  // not well-formed, not an envelope
  kTooLarge,   // over a configured bound
  kForbidden,  // the sender may not do this
  kNotFound,   // no such feed
  kInvalid,    // well-formed but invalid, expired, unroutable or badly signed
  kBusy,       // backpressure: try again after retry_after_s
  kDeadline,   // the request's deadline passed before it was stored
  kInternal,   // our fault
};
std::string_view to_string(RefusalKind kind);

struct Rejection {
  RefusalKind kind = RefusalKind::kMalformed;
  std::string code;           // machine-readable, e.g. "envelope.invalid", "route.none"
  std::string message;        // human sentence (masked)
  xml::Problems problems;     // per-field detail
  std::string quarantine_id;  // set when the input was kept in the quarantine
  int retry_after_s = 0;      // set for kBusy
  bool keep = false;          // the input belongs in the quarantine (translation/validation)
};

using IngestResult = std::expected<Accepted, Rejection>;
using IngestCallback = std::move_only_function<void(IngestResult)>;

struct IngestDeps {
  IngestOptions options;
  queue::Store* store = nullptr;
  const RouteTable* routes = nullptr;
  sluice::Metrics* metrics = nullptr;
  const xml::Validator* validator = nullptr;                    // optional: XSD + semantic checks
  const Authorizer* authorizer = nullptr;                       // optional: sender permissions
  ops::Quarantine* quarantine = nullptr;                        // optional: keeps failed input
  const trust::DocumentSigner* signer = nullptr;                // optional: signature + receipts
  const trust::SenderSignatureVerifier* sender_sigs = nullptr;  // optional: Body signatures
  // Checks the signature a peer gateway forwards a document with (it is then replaced by
  // ours). Without it, a forwarded document that carries a signature is refused.
  const trust::DocumentVerifier* peer_sigs = nullptr;
  ops::AuditLog* audit = nullptr;  // optional: refusals are audited
  const Clock* clock = nullptr;
  Random* random = nullptr;
};

class Ingest {
 public:
  explicit Ingest(IngestDeps deps)
      : deps_(std::move(deps)), gate_(std::make_shared<const GateConfig>(deps_.options.gate)) {}

  // Replaces the gate's rules at run time; a document being prepared keeps the rules it
  // started with.
  void set_gate(GateConfig gate) {
    gate_.store(std::make_shared<const GateConfig>(std::move(gate)));
  }

  // Runs the pipeline; `done` is called once, possibly on the store's writer thread.
  void submit(Submission submission, IngestCallback done);

  // The synchronous front half (everything before persisting). Exposed for tests/benchmarks.
  struct Prepared {
    queue::NewMessage message;  // ready to append (empty when `duplicate`)
    Accepted accepted;          // what to answer once it is durable
    bool duplicate = false;     // already stored: answer without persisting again
  };
  // Pure: writes nothing to the store (refusals are written by reject_async).
  std::expected<Prepared, Rejection> prepare(Submission& submission) const;

  // Keeps a rejected input in the quarantine (when it belongs there) and then reports.
  void reject_async(const Submission& submission, Rejection rejection, IngestCallback done);

  const IngestDeps& deps() const { return deps_; }

 private:
  Rejection reject(const Submission& s, RefusalKind kind, std::string code, std::string message,
                   xml::Problems problems, bool keep) const;
  // The sender identity of a submission: the certificate's, or the envelope's when the
  // listener does not authenticate (development only).
  bool is_peer_gateway(const std::string& sender) const;
  static std::string sender_of(const Submission& s, const std::string& claimed);
  std::optional<Rejection> gate_stop(const Submission& s,
                                     const std::vector<std::string>& destinations,
                                     const xml::Envelope& env, std::size_t bytes) const;
  Rejection refuse_envelope_dsig(const Submission& s, const xml::Envelope& env) const;
  std::optional<Rejection> take_peer_signature(const Submission& s, xml::Envelope& env,
                                               std::string& signer_subject) const;

  IngestDeps deps_;
  std::atomic<std::shared_ptr<const GateConfig>> gate_;
};

}  // namespace sluice::pipeline
