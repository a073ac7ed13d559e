// The json adapter: a department's JSON (one object, an array, or records at a path) mapped
// field by field to standard documents (see adapters/mapping.h). References: `$` is the
// record, `@` the current item of a repeated group, `^` the whole input; `.name`,
// `["name"]` and `[index]` walk into it.
#pragma once

#include <memory>

#include "adapters/adapter.h"
#include "adapters/mapping.h"
#include "common/error.h"

namespace sluice::adapters::json {

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping);

}  // namespace sluice::adapters::json
