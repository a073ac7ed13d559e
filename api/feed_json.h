// The JSON answer for one or more feed inputs, and the HTTP status it deserves (202 all
// accepted, 207 some refused, 422 none accepted, or the status of the input's refusal).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ingress/feeds.h"

namespace sluice::api {

std::pair<unsigned, std::string> feed_outcome_json(
    const std::vector<ingress::FeedOutcome>& outcomes, const std::vector<std::string>& part_names);

}  // namespace sluice::api
