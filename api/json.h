// JSON shapes of the HTTP API (Boost.JSON underneath): errors with their problems, message
// status, acceptance answers. Every string that could carry input text is already masked.
#pragma once

#include <string>

#include "net/http.h"
#include "pipeline/ingest.h"
#include "queue/queue.h"

namespace sluice::api {

using net::HttpResponse;
using pipeline::Accepted;
using pipeline::Rejection;

HttpResponse json_response(unsigned status, const std::string& body);
HttpResponse error_response(unsigned status, const std::string& code, const std::string& message);
HttpResponse rejection_response(const Rejection& r);
HttpResponse accepted_response(const Accepted& a);
std::string status_json(const queue::MessageStatus& s);
std::string problems_json(const xml::Problems& problems);

}  // namespace sluice::api
