#include "pipeline/authz.h"

#include <algorithm>

#include "pipeline/routes.h"

namespace sluice::pipeline {

std::shared_ptr<const SenderConfig> Authorizer::find(const std::string& sender) const {
  auto senders = senders_.load();
  for (const auto& s : *senders) {
    if (s.id == sender) return {senders, &s};  // aliases the table: it stays alive
  }
  return nullptr;
}

std::optional<std::string> Authorizer::check_document(const std::string& sender,
                                                      const std::string& doc_type,
                                                      const std::string& receiver) const {
  auto s = find(sender);
  if (s == nullptr) {
    return "sender " + sender + " is not configured on this gateway";
  }
  auto any = [](const std::vector<std::string>& patterns, const std::string& v) {
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string& p) { return pattern_matches(p, v); });
  };
  if (!any(s->doc_types, doc_type)) {
    return "sender " + sender + " may not send DocType " + doc_type;
  }
  if (!any(s->receivers, receiver)) {
    return "sender " + sender + " may not send to receiver " + receiver;
  }
  return std::nullopt;
}

std::optional<std::string> Authorizer::check_feed(const std::string& sender,
                                                  const std::string& feed) const {
  auto s = find(sender);
  if (s == nullptr) {
    return "sender " + sender + " is not configured on this gateway";
  }
  if (std::find(s->feeds.begin(), s->feeds.end(), feed) == s->feeds.end()) {
    return "sender " + sender + " may not submit to feed " + feed;
  }
  return std::nullopt;
}

}  // namespace sluice::pipeline
