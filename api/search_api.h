// The admin API's search and bulk operations on stored messages (registered on AdminApi):
//   GET  /admin/v1/messages?destination=&doc_type=&sender=&state=&case_id=&from=&to=
//                          &limit=&cursor=             one page, oldest first, and the next cursor
//   POST /admin/v1/messages/{id}/discard?destination=&reason=
//   POST /admin/v1/dead-letters/redrive?<filters>&dry_run=1
//   POST /admin/v1/dead-letters/discard?<filters>&reason=&dry_run=1
// Patterns as in routes ("case.*", "440604/*"); state is queued, delivering, delivered, dead,
// expired, partial or discarded; from and to are RFC 3339 times ("2026-12-03T08:00:00+08:00")
// or milliseconds since the epoch. The bulk operations act on every dead delivery that
// matches (to `destination` only, when given), at most `limit` (default 10,000) per request;
// a dry run counts them and changes nothing. Each redrive or discard is audited, and the bulk
// request once more with its filter and counts.
#pragma once

#include "api/handler.h"

namespace sluice::api {

class AdminApi;

void register_search_api(AdminApi& admin, queue::Store& store, ops::AuditLog* audit);

}  // namespace sluice::api
