// Sender authorization from configuration ([[sender]]): which DocTypes an authenticated
// sender may send, to which receivers, through which feeds. Default deny: a sender without
// an entry may do nothing. Returns the reason of a refusal, or nullopt when allowed. The
// senders are replaced whole at run time (replace()).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/config.h"

namespace sluice::pipeline {

class Authorizer {
 public:
  explicit Authorizer(std::vector<SenderConfig> senders) { replace(std::move(senders)); }
  void replace(std::vector<SenderConfig> senders) {
    senders_.store(std::make_shared<const std::vector<SenderConfig>>(std::move(senders)));
  }
  std::optional<std::string> check_document(const std::string& sender, const std::string& doc_type,
                                            const std::string& receiver) const;
  std::optional<std::string> check_feed(const std::string& sender, const std::string& feed) const;

 private:
  // The sender's entry, kept alive with the table it is in; null when it has none.
  std::shared_ptr<const SenderConfig> find(const std::string& sender) const;
  std::atomic<std::shared_ptr<const std::vector<SenderConfig>>> senders_;
};

}  // namespace sluice::pipeline
