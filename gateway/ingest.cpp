#include "gateway/ingest.h"

#include <spdlog/spdlog.h>

#include "common/encoding.h"
#include "common/pii.h"
#include "gateway/metrics.h"
#include "gateway/routes.h"
#include "queue/queue.h"
#include "xml/envelope.h"
#include "xml/parse.h"

namespace sluice::gateway {

Rejection Ingest::reject(const Submission& s, unsigned status, std::string code,
                         std::string message, xml::Problems problems, bool keep) const {
  Rejection r;
  r.status = status;
  r.code = std::move(code);
  r.message = mask_personal_data(message);
  r.problems = std::move(problems);
  (void)keep;
  deps_.metrics->add("sluice_ingest_rejected_total", "code=\"" + r.code + "\"");
  spdlog::info("rejected input from {} via {}: {} ({})",
               s.peer.authenticated ? s.peer.sender() : std::string("unauthenticated"), s.source,
               r.message, xml::describe(r.problems, 3));
  return r;
}

std::expected<Ingest::Prepared, Rejection> Ingest::prepare(const Submission& s) const {
  const Config& cfg = *deps_.config;
  xml::ParseLimits limits = cfg.xml;
  limits.max_bytes = cfg.data.max_body_bytes;
  auto doc = xml::parse(s.bytes, limits);
  if (!doc) {
    bool too_big = doc.error().code == "xml.too-large";
    return std::unexpected(reject(s, too_big ? 413 : 400, doc.error().code, doc.error().message,
                                  {doc.error()}, !too_big));
  }
  auto env = xml::read_envelope(doc->get());
  if (!env) {
    return std::unexpected(reject(s, 400, "envelope.invalid",
                                  "the envelope is incomplete: " + xml::describe(env.error(), 3),
                                  env.error(), true));
  }
  if (!env->message_id.empty()) {
    return std::unexpected(
        reject(s, 400, "envelope.message-id-assigned",
               "MessageId is assigned by the gateway; send the document without it", {}, true));
  }
  const std::string sender = env->sender.str();
  if (s.peer.authenticated && s.peer.sender() != sender) {
    return std::unexpected(reject(s, 403, "auth.sender-mismatch",
                                  "the envelope claims sender " + sender +
                                      " but the client certificate identifies " + s.peer.sender(),
                                  {}, false));
  }
  std::int64_t now = deps_.clock->now_ms();
  if (env->expires_ms != 0 && env->expires_ms <= now) {
    return std::unexpected(reject(s, 422, "envelope.expired",
                                  "the message expired at " + env->expires + " before it arrived",
                                  {}, true));
  }
  auto destinations = deps_.routes->destinations(env->doc_type, sender, env->receiver.str());
  if (destinations.empty()) {
    return std::unexpected(reject(
        s, 422, "route.none",
        "no route for DocType " + env->doc_type + " from " + sender + " to " + env->receiver.str(),
        {}, false));
  }
  Prepared p;
  if (auto original = deps_.store->find_duplicate(sender, env->sender_message_id)) {
    p.duplicate = true;
    p.accepted.message_id = *original;
    p.accepted.duplicate = true;
    p.accepted.doc_type = env->doc_type;
    p.accepted.sender = sender;
    p.accepted.sender_message_id = env->sender_message_id;
    p.accepted.destinations = std::move(destinations);
    return p;
  }
  std::string id = new_uuid_v7(*deps_.random, now);
  xml::set_message_id(*env, id);
  xml::add_trace_hop(*env, cfg.gateway_id, format_time_cn(now));

  queue::NewMessage& m = p.message;
  m.message_id = id;
  m.sender = sender;
  m.sender_message_id = env->sender_message_id;
  m.doc_type = env->doc_type;
  m.ordering_key = env->ordering_key();
  m.expires_ms = env->expires_ms;
  m.destinations = destinations;
  m.payload = xml::serialize(doc->get());
  m.attributes["receiver"] = env->receiver.str();
  m.attributes["source"] = s.source;
  if (!env->correlation_id.empty()) {
    m.attributes["correlation_id"] = env->correlation_id;
  }
  p.accepted.message_id = id;
  p.accepted.doc_type = env->doc_type;
  p.accepted.sender = sender;
  p.accepted.sender_message_id = env->sender_message_id;
  p.accepted.destinations = std::move(destinations);
  return p;
}

void Ingest::submit(Submission submission, IngestCallback done) {
  auto prepared = prepare(submission);
  if (!prepared) {
    done(std::unexpected(std::move(prepared.error())));
    return;
  }
  if (prepared->duplicate) {
    deps_.metrics->add("sluice_ingest_duplicates_total", "");
    done(std::move(prepared->accepted));
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
            rej.status = 503;
            rej.retry_after_s = e.is(Errc::kStoreFailed) ? 60 : 5;
            rej.code = e.is(Errc::kShuttingDown) ? "store.shutting-down" : "store.backpressure";
          } else {
            rej.status = 500;
            rej.code = "store.error";
          }
          rej.message = "not stored: " + e.message;
          deps_.metrics->add("sluice_ingest_rejected_total", "code=\"" + rej.code + "\"");
          spdlog::warn("append of {} failed: {}", accepted.message_id, e.describe());
          done(std::unexpected(std::move(rej)));
          return;
        }
        if (r->duplicate) {
          // Lost a race with a concurrent resend: answer with the original.
          accepted.message_id = r->message_id;
          accepted.duplicate = true;
          deps_.metrics->add("sluice_ingest_duplicates_total", "");
        } else {
          deps_.metrics->add("sluice_ingest_accepted_total",
                             "doc_type=\"" + accepted.doc_type + "\"");
        }
        done(std::move(accepted));
      });
}

}  // namespace sluice::gateway
