#include "ingress/outcome_json.h"

#include <boost/json.hpp>

namespace sluice::ingress {

namespace json = boost::json;
using pipeline::Rejection;

namespace {

json::object rejection_object(const Rejection& r) {
  json::object o;
  o["code"] = r.code;
  o["message"] = r.message;
  json::array ps;
  for (const auto& p : r.problems) {
    json::object po;
    po["code"] = p.code;
    if (!p.field.empty()) po["field"] = p.field;
    if (!p.path.empty()) po["path"] = p.path;
    if (p.line > 0) po["line"] = p.line;
    if (p.record >= 0) po["record"] = p.record;
    po["message"] = p.message;
    ps.push_back(std::move(po));
  }
  if (!ps.empty()) o["problems"] = std::move(ps);
  if (!r.quarantine_id.empty()) o["quarantineId"] = r.quarantine_id;
  return o;
}

}  // namespace

OutcomeSummary summarize(const std::vector<FeedOutcome>& outcomes) {
  OutcomeSummary sum;
  for (const auto& o : outcomes) {
    sum.accepted += o.accepted.size();
    sum.rejected += o.rejected.size();
    if (o.fatal && !sum.first_fatal) sum.first_fatal = o.fatal->kind;
  }
  return sum;
}

std::string feed_outcome_json(const std::vector<FeedOutcome>& outcomes,
                              const std::vector<std::string>& part_names,
                              unsigned (*status_of)(pipeline::RefusalKind)) {
  json::array parts;
  std::uint64_t accepted = 0, rejected = 0, records = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    json::object p;
    p["feed"] = o.feed;
    if (i < part_names.size() && !part_names[i].empty()) p["part"] = part_names[i];
    p["records"] = o.records;
    p["accepted"] = o.accepted.size();
    p["rejected"] = o.rejected.size();
    json::array msgs;
    for (const auto& a : o.accepted) {
      json::object m{{"record", a.record}, {"messageId", a.message_id}, {"duplicate", a.duplicate}};
      if (a.line > 0) m["line"] = a.line;
      msgs.push_back(std::move(m));
    }
    p["messages"] = std::move(msgs);
    json::array errs;
    for (const auto& b : o.rejected) {
      json::object e = rejection_object(b.rejection);
      e["record"] = b.record;
      if (b.line > 0) e["line"] = b.line;
      e["kind"] = pipeline::to_string(b.rejection.kind);
      if (status_of != nullptr) e["status"] = status_of(b.rejection.kind);
      errs.push_back(std::move(e));
    }
    p["errors"] = std::move(errs);
    if (o.fatal) {
      p["error"] = rejection_object(*o.fatal);
    }
    accepted += o.accepted.size();
    rejected += o.rejected.size();
    records += o.records;
    parts.push_back(std::move(p));
  }
  json::object root;
  root["records"] = records;
  root["accepted"] = accepted;
  root["rejected"] = rejected;
  root["inputs"] = std::move(parts);
  if (outcomes.size() == 1) {
    // One input: flatten for the common case.
    json::object flat = root["inputs"].as_array()[0].as_object();
    return json::serialize(flat);
  }
  return json::serialize(root);
}

}  // namespace sluice::ingress
