// The admin API's quarantine endpoints (registered on AdminApi):
//   GET  /admin/v1/quarantine?limit=N          newest first, without raw bytes
//   GET  /admin/v1/quarantine/{id}             one entry with problems and raw input
//   POST /admin/v1/quarantine/{id}/resubmit    body {} or {"content": "corrected input"}
//   POST /admin/v1/quarantine/{id}/discard     body {"reason": "..."}
// A resubmission runs the entry through the pipeline again as its original sender; on
// success the entry is removed, on failure it keeps the new problems. Every action is audited.
#pragma once

#include "api/handler.h"

namespace sluice::api {

class AdminApi;

void register_quarantine_api(AdminApi& admin, ops::Quarantine& quarantine, pipeline::Ingest& ingest,
                             ingress::FeedIngest& feeds, ops::AuditLog& audit);

}  // namespace sluice::api
