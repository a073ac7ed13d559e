#include "pipeline/ingest.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/encoding.h"
#include "common/metrics.h"
#include "common/pii.h"
#include "ops/audit.h"
#include "ops/quarantine.h"
#include "pipeline/authz.h"
#include "pipeline/gate.h"
#include "pipeline/routes.h"
#include "queue/queue.h"
#include "trust/sender_signature.h"
#include "trust/signer.h"
#include "trust/verifier.h"
#include "xml/envelope.h"
#include "xml/parse.h"
#include "xml/validate.h"

namespace sluice::pipeline {

bool Ingest::is_peer_gateway(const std::string& sender) const {
  for (const auto& p : deps_.options.peer_gateways) {
    if (p == sender) return true;
  }
  return false;
}

std::string Ingest::sender_of(const Submission& s, const std::string& claimed) {
  return s.peer.authenticated ? s.peer.sender() : claimed;
}

std::string_view to_string(RefusalKind kind) {
  switch (kind) {
    case RefusalKind::kMalformed:
      return "malformed";
    case RefusalKind::kTooLarge:
      return "too-large";
    case RefusalKind::kForbidden:
      return "forbidden";
    case RefusalKind::kNotFound:
      return "not-found";
    case RefusalKind::kInvalid:
      return "invalid";
    case RefusalKind::kBusy:
      return "busy";
    case RefusalKind::kDeadline:
      return "deadline";
    case RefusalKind::kInternal:
      return "internal";
  }
  return "unknown";
}

Rejection Ingest::reject(const Submission& s, RefusalKind kind, std::string code,
                         std::string message, xml::Problems problems, bool keep) const {
  Rejection r;
  r.kind = kind;
  r.code = std::move(code);
  r.message = mask_personal_data(message);
  r.problems = std::move(problems);
  for (auto& p : r.problems) {
    if (s.record >= 0 && p.record < 0) p.record = s.record;
    if (s.line > 0 && p.line == 0) p.line = s.line;  // a built document has no lines of its own
  }
  r.keep = keep && s.quarantine_on_failure;
  deps_.metrics->add("sluice_ingest_rejected_total", "code=\"" + r.code + "\"");
  spdlog::info("rejected input from {} via {}{}: {} ({})",
               s.peer.authenticated ? s.peer.sender() : std::string("unauthenticated"), s.source,
               s.record >= 0 ? " record " + std::to_string(s.record) : std::string(), r.message,
               xml::describe(r.problems, 3));
  return r;
}

// The place directly under the Envelope holds the gateway's signature, where receivers look
// for it, and nothing else: a sender's ds:Signature (or ds:Object, ds:Manifest, ...) there
// would be signed over by the gateway and could then be what a receiver's tool checks.
Rejection Ingest::refuse_envelope_dsig(const Submission& s, const xml::Envelope& env) const {
  xmlNode* n = env.envelope_dsig.front();
  std::string name = "ds:" + std::string(reinterpret_cast<const char*>(n->name));
  std::string message = name;
  message += " directly under Envelope is not accepted: that place holds the gateway's ";
  message += "signature alone (a sender signs its business document, with the ds:Signature ";
  message += "inside it)";
  xml::Problems problems{xml::make_problem("envelope.signature-not-allowed", name,
                                           xml::node_path(n), xmlGetLineNo(n), message)};
  return reject(s, RefusalKind::kMalformed, "envelope.signature-not-allowed", std::move(message),
                std::move(problems), true);
}

// A document a peer gateway forwards carries that gateway's signature, last under the
// Envelope. It must verify as a gateway signature of the very peer that sends it; then it is
// removed, so that only this gateway's signature stands there (the peer's is recorded).
std::optional<Rejection> Ingest::take_peer_signature(const Submission& s, xml::Envelope& env,
                                                     std::string& signer_subject) const {
  if (deps_.peer_sigs == nullptr) {
    return reject(s, RefusalKind::kInvalid, "signature.unverifiable",
                  "the forwarded document is signed but this gateway has no trust store to "
                  "verify the signature with ([signing] is off)",
                  {}, false);
  }
  auto verified = deps_.peer_sigs->verify(env.root->doc);
  if (!verified) {
    return reject(s, RefusalKind::kInvalid, "signature.invalid",
                  "the forwarding gateway's signature: " + verified.error().message, {}, true);
  }
  if (auto gateway = trust::require_gateway(verified->signer, {}); !gateway) {
    return reject(s, RefusalKind::kForbidden, "signature.not-gateway", gateway.error().message, {},
                  false);
  }
  if (verified->signer.sender() != s.peer.sender()) {
    return reject(s, RefusalKind::kForbidden, "signature.peer-mismatch",
                  "the forwarded document is signed by " + verified->signer.sender() +
                      " but was sent by " + s.peer.sender(),
                  {}, false);
  }
  xmlNode* sig = env.envelope_dsig.back();  // the verifier accepted exactly one, the last
  xmlUnlinkNode(sig);
  xmlFreeNode(sig);
  env.envelope_dsig.clear();
  signer_subject = verified->signer.subject;
  return std::nullopt;
}

// A document crosses the gate when it arrived over the ferry, or when this half routes it to
// the ferry; then the rules of its direction decide. Stopped: refused (audited) and kept in
// the quarantine with the direction and the reason.
std::optional<Rejection> Ingest::gate_stop(const Submission& s,
                                           const std::vector<std::string>& destinations,
                                           const xml::Envelope& env, std::size_t bytes) const {
  const auto gate_rules = gate_.load();
  const GateConfig& gate = *gate_rules;
  std::optional<Crossing> crossing = s.arrived;
  if (!crossing && !gate.ferry_destination.empty() &&
      std::find(destinations.begin(), destinations.end(), gate.ferry_destination) !=
          destinations.end()) {
    crossing = gate.outer ? Crossing::kInbound : Crossing::kOutbound;
  }
  if (!crossing) return std::nullopt;
  auto stop = check_gate(gate, *crossing, env.doc_type, bytes, env.body);
  if (!stop) return std::nullopt;
  return reject(s, RefusalKind::kForbidden, stop->code,
                "stopped at the gate (" + std::string(to_string(*crossing)) +
                    (s.arrived ? ", on arrival" : ", before crossing") + "): " + stop->message,
                std::move(stop->problems), true);
}

std::expected<Ingest::Prepared, Rejection> Ingest::prepare(Submission& s) const {
  const IngestOptions& opts = deps_.options;
  if (!s.document) {
    auto doc = xml::parse(s.bytes, opts.xml);
    if (!doc) {
      bool too_big = doc.error().code == "xml.too-large";
      return std::unexpected(reject(s, too_big ? RefusalKind::kTooLarge : RefusalKind::kMalformed,
                                    doc.error().code, doc.error().message, {doc.error()},
                                    !too_big));
    }
    s.document = std::move(*doc);
  }
  xmlDoc* doc = s.document.get();
  auto env = xml::read_envelope(doc);
  if (!env) {
    std::string message = "the envelope is incomplete: " + xml::describe(env.error(), 3);
    return std::unexpected(reject(s, RefusalKind::kMalformed, "envelope.invalid",
                                  std::move(message), env.error(), true));
  }
  // A peer gateway forwards documents that already carry their MessageId and Trace; the
  // envelope's Sender is the original sender, on whose behalf the peer forwards.
  const bool from_peer = s.peer.authenticated && is_peer_gateway(s.peer.sender());
  if (!env->message_id.empty() && !from_peer) {
    return std::unexpected(
        reject(s, RefusalKind::kMalformed, "envelope.message-id-assigned",
               "MessageId is assigned by the gateway; send the document without it", {}, true));
  }
  if (!env->message_id.empty() && !is_uuid(env->message_id)) {
    return std::unexpected(reject(s, RefusalKind::kMalformed, "envelope.message-id-invalid",
                                  "a forwarded MessageId must be a canonical UUID", {}, true));
  }
  const std::string claimed = env->sender.str();
  if (s.peer.authenticated && !from_peer && s.peer.sender() != claimed) {
    return std::unexpected(reject(s, RefusalKind::kForbidden, "auth.sender-mismatch",
                                  "the envelope claims sender " + claimed +
                                      " but the client certificate identifies " + s.peer.sender(),
                                  {}, false));
  }
  const std::string sender = from_peer ? claimed : sender_of(s, claimed);
  std::string peer_signature;
  if (!env->envelope_dsig.empty()) {
    auto refused = from_peer ? take_peer_signature(s, *env, peer_signature)
                             : std::optional<Rejection>(refuse_envelope_dsig(s, *env));
    if (refused) return std::unexpected(std::move(*refused));
  }
  if (deps_.authorizer != nullptr) {
    if (auto why = deps_.authorizer->check_document(sender, env->doc_type, env->receiver.str())) {
      return std::unexpected(reject(s, RefusalKind::kForbidden, "auth.forbidden", *why, {}, false));
    }
  }
  if (deps_.validator != nullptr) {
    xml::Problems problems = deps_.validator->validate(doc);
    if (!problems.empty()) {
      std::string message =
          "the document does not meet the exchange standard: " + xml::describe(problems, 3);
      return std::unexpected(reject(s, RefusalKind::kInvalid, "document.invalid",
                                    std::move(message), std::move(problems), true));
    }
  }
  std::string sender_signature;
  if (deps_.sender_sigs != nullptr && env->body != nullptr) {
    if (xmlNode* sig = trust::sender_signature_of(env->body)) {
      auto signer = deps_.sender_sigs->verify(doc, env->body, sig);
      if (!signer) {
        return std::unexpected(reject(s, RefusalKind::kInvalid, "signature.invalid",
                                      signer.error().message, {}, true));
      }
      if (signer->sender() != sender) {
        return std::unexpected(reject(
            s, RefusalKind::kForbidden, "signature.sender-mismatch",
            "the Body is signed by " + signer->sender() + " but the envelope's sender is " + sender,
            {}, false));
      }
      sender_signature = signer->subject;
    }
  }
  std::int64_t now = deps_.clock->now_ms();
  if (env->expires_ms != 0 && env->expires_ms <= now) {
    return std::unexpected(reject(s, RefusalKind::kInvalid, "envelope.expired",
                                  "the message expired at " + env->expires + " before it arrived",
                                  {}, true));
  }
  auto destinations = deps_.routes->destinations(env->doc_type, sender, env->receiver.str());
  if (destinations.empty()) {
    return std::unexpected(reject(
        s, RefusalKind::kInvalid, "route.none",
        "no route for DocType " + env->doc_type + " from " + sender + " to " + env->receiver.str(),
        {}, false));
  }
  Prepared p;
  p.accepted.doc_type = env->doc_type;
  p.accepted.sender = sender;
  p.accepted.sender_message_id = env->sender_message_id;
  if (auto original = deps_.store->find_duplicate(sender, env->sender_message_id)) {
    p.duplicate = true;
    if (auto st = deps_.store->status(*original); st) {
      if (auto it = st->attributes.find("receipt"); it != st->attributes.end()) {
        p.accepted.receipt = it->second;  // the resend gets the original receipt
      }
    }
    p.accepted.message_id = *original;
    p.accepted.duplicate = true;
    p.accepted.destinations = std::move(destinations);
    return p;
  }
  std::string id = env->message_id;
  if (id.empty()) {
    id = new_uuid_v7(*deps_.random, now);
    xml::set_message_id(*env, id);
  }
  xml::add_trace_hop(*env, opts.gateway_id, format_time_cn(now));

  std::string digest;
  if (deps_.signer != nullptr) {
    auto signed_digest = deps_.signer->sign(doc);
    if (!signed_digest) {
      return std::unexpected(reject(
          s, RefusalKind::kInternal, "signature.failed",
          "the gateway could not sign the document: " + signed_digest.error().message, {}, false));
    }
    digest = std::move(*signed_digest);
  }
  queue::NewMessage& m = p.message;
  m.message_id = id;
  m.sender = sender;
  m.sender_message_id = env->sender_message_id;
  m.doc_type = env->doc_type;
  m.ordering_key = env->ordering_key();
  m.expires_ms = env->expires_ms;
  m.destinations = destinations;
  m.payload = xml::serialize(doc);
  if (auto stop = gate_stop(s, destinations, *env, m.payload.size())) {
    return std::unexpected(std::move(*stop));
  }
  m.attributes["receiver"] = env->receiver.str();
  m.attributes["source"] = s.source;
  if (!env->correlation_id.empty()) {
    m.attributes["correlation_id"] = env->correlation_id;
  }
  if (!sender_signature.empty()) {
    m.attributes["sender_signature"] = sender_signature;
  }
  if (!peer_signature.empty()) {
    m.attributes["peer_signature"] = peer_signature;
  }
  if (deps_.signer != nullptr) {
    m.attributes["digest"] = digest;
  }
  // A document that arrived over the ferry was receipted to its sender by the half it was
  // posted to; this half's answer goes back over the link, so no receipt is signed here.
  if (deps_.signer != nullptr && !s.arrived) {
    auto receipt = deps_.signer->receipt({.message_id = id,
                                          .sender = sender,
                                          .sender_message_id = env->sender_message_id,
                                          .doc_type = env->doc_type,
                                          .digest = digest,
                                          .status = "accepted",
                                          .time_ms = now});
    if (!receipt) {
      return std::unexpected(
          reject(s, RefusalKind::kInternal, "signature.failed",
                 "the gateway could not sign the receipt: " + receipt.error().message, {}, false));
    }
    m.attributes["receipt"] = *receipt;
    p.accepted.receipt = std::move(*receipt);
  }
  p.accepted.message_id = id;
  p.accepted.destinations = std::move(destinations);
  return p;
}

void Ingest::reject_async(const Submission& s, Rejection rejection, IngestCallback done) {
  // The one place where a refusal is written down: an unauthorized input is audited, an
  // input that failed translation or validation is kept in the quarantine (a document stopped
  // at the gate is both). The answer leaves only once that is on disk.
  std::optional<ops::QuarantineEntry> entry;
  if (rejection.keep && deps_.quarantine != nullptr) {
    ops::QuarantineEntry e;
    e.sender = s.peer.authenticated ? s.peer.sender() : std::string("unauthenticated");
    e.source = s.source;
    e.kind = "document";
    e.record = s.record;
    e.line = s.line;
    e.code = rejection.code;
    e.message = rejection.message;
    e.problems = rejection.problems;
    e.raw = !s.bytes.empty() ? s.bytes
                             : (s.document ? xml::serialize(s.document.get()) : std::string());
    entry = std::move(e);
  }
  auto keep = [quarantine = deps_.quarantine, entry = std::move(entry)](
                  Rejection rejection, IngestCallback done) mutable {
    if (!entry) {
      done(std::unexpected(std::move(rejection)));
      return;
    }
    quarantine->put_async(
        std::move(*entry),
        [rejection = std::move(rejection), done = std::move(done)](Result<std::string> id) mutable {
          if (id) {
            rejection.quarantine_id = *id;
          } else {
            rejection.message += " (not kept: " + id.error().message + ")";
          }
          done(std::unexpected(std::move(rejection)));
        });
  };
  if (rejection.kind == RefusalKind::kForbidden && deps_.audit != nullptr) {
    std::string object = rejection.code + " via " + s.source;
    std::string outcome = rejection.message;
    deps_.audit->record_refusal(
        s.peer.authenticated ? s.peer.sender() : "unauthenticated", "ingest.refused", object,
        outcome,
        [keep = std::move(keep), rejection = std::move(rejection), done = std::move(done)](
            Result<void>) mutable { keep(std::move(rejection), std::move(done)); });
    return;
  }
  keep(std::move(rejection), std::move(done));
}

void Ingest::submit(Submission submission, IngestCallback done) {
  auto prepared = prepare(submission);
  if (!prepared) {
    reject_async(submission, std::move(prepared.error()), std::move(done));
    return;
  }
  if (prepared->duplicate) {
    deps_.metrics->add("sluice_ingest_duplicates_total", "");
    done(std::move(prepared->accepted));
    return;
  }
  if (std::chrono::steady_clock::now() > submission.deadline) {
    done(std::unexpected(reject(submission, RefusalKind::kDeadline, "request.deadline",
                                "the request's deadline passed before the document was stored; "
                                "nothing was stored, send it again",
                                {}, false)));
    return;
  }
  Accepted accepted = std::move(prepared->accepted);
  deps_.store->append_async(
      std::move(prepared->message), [this, accepted = std::move(accepted), done = std::move(done)](
                                        sluice::Result<queue::Appended> r) mutable {
        if (!r) {
          Rejection rej;
          const Error& e = r.error();
          if (e.is(Errc::kQueueFull) || e.is(Errc::kStoreFull) || e.is(Errc::kStoreFailed) ||
              e.is(Errc::kShuttingDown)) {
            rej.kind = RefusalKind::kBusy;
            rej.retry_after_s = e.is(Errc::kStoreFailed) ? 60 : 5;
            rej.code = e.is(Errc::kShuttingDown) ? "store.shutting-down" : "store.backpressure";
          } else {
            rej.kind = RefusalKind::kInternal;
            rej.code = "store.error";
          }
          rej.message = "not stored: " + e.message;
          deps_.metrics->add("sluice_ingest_rejected_total", "code=\"" + rej.code + "\"");
          spdlog::warn("append of {} failed: {}", accepted.message_id, e.describe());
          done(std::unexpected(std::move(rej)));
          return;
        }
        if (r->duplicate) {
          // Lost a race with a concurrent resend: answer with the original, and with the
          // original's receipt. The receipt signed for this attempt names a MessageId that was
          // never stored: a false statement under the gateway's key, never to be sent.
          accepted.message_id = r->message_id;
          accepted.duplicate = true;
          accepted.receipt.clear();
          if (auto st = deps_.store->status(r->message_id); st) {
            if (auto it = st->attributes.find("receipt"); it != st->attributes.end()) {
              accepted.receipt = it->second;
            }
          }
          deps_.metrics->add("sluice_ingest_duplicates_total", "");
        } else {
          deps_.metrics->add("sluice_ingest_accepted_total",
                             "doc_type=\"" + accepted.doc_type + "\"");
        }
        done(std::move(accepted));
      });
}

}  // namespace sluice::pipeline
