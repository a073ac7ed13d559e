// The xml adapter: standard exchange envelopes as they are (one per input), parsed by the
// hardened parser. Validation happens in the ingest pipeline like for every other input.
#pragma once

#include <memory>

#include "adapters/adapter.h"
#include "adapters/mapping.h"
#include "common/error.h"

namespace sluice::adapters::standard_xml {

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping);

}  // namespace sluice::adapters::standard_xml
