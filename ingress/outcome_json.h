// The JSON report of one or more feed inputs: per input its records, the MessageIds of the
// accepted ones and, for each refused record, its record and line number, the refusal's kind,
// code, message and problems. The same report answers an HTTP submission and is written
// beside a failed spool file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ingress/feeds.h"

namespace sluice::ingress {

struct OutcomeSummary {
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::optional<pipeline::RefusalKind> first_fatal;  // an input refused as a whole
};
OutcomeSummary summarize(const std::vector<FeedOutcome>& outcomes);

// `status_of`, when given, adds each refusal's protocol status ("status") beside its kind.
std::string feed_outcome_json(const std::vector<FeedOutcome>& outcomes,
                              const std::vector<std::string>& part_names,
                              unsigned (*status_of)(pipeline::RefusalKind) = nullptr);

}  // namespace sluice::ingress
