// The ferry as a destination: each leased document goes over the link to the other half and
// counts as delivered only when that half answers it stored in its synced store (or already
// there). A refusal there makes the delivery dead with the other half's reason; a link that is
// down makes the destination unreachable (it pauses without spending attempts).
#pragma once

#include <memory>

#include "common/error.h"
#include "delivery/sink.h"

namespace sluice::ferry {
class Link;
}

namespace sluice::delivery {

// `link` outlives the sink.
std::unique_ptr<Sink> make_ferry_sink(ferry::Link& link);

}  // namespace sluice::delivery
