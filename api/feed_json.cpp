#include "api/feed_json.h"

#include "api/status.h"
#include "ingress/outcome_json.h"

namespace sluice::api {

std::pair<unsigned, std::string> feed_outcome_json(
    const std::vector<ingress::FeedOutcome>& outcomes, const std::vector<std::string>& part_names) {
  ingress::OutcomeSummary sum = ingress::summarize(outcomes);
  unsigned status = 202;
  if (sum.accepted == 0 && sum.first_fatal) {
    status = http_status(*sum.first_fatal);
  } else if (sum.accepted == 0 && sum.rejected > 0) {
    status = 422;
  } else if (sum.rejected > 0 || sum.first_fatal) {
    status = 207;
  }
  return {status, ingress::feed_outcome_json(outcomes, part_names, &http_status)};
}

}  // namespace sluice::api
