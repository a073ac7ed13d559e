// The one table where the pipeline's refusals become HTTP status codes.
#pragma once

#include "pipeline/ingest.h"

namespace sluice::api {

// 400 malformed, 413 too large, 403 forbidden, 404 not found, 422 invalid, 503 busy,
// 504 deadline, 500 internal.
unsigned http_status(pipeline::RefusalKind kind);

}  // namespace sluice::api
