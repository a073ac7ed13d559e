// An HTTP(S) endpoint as a destination: each channel is one kept-alive connection (Beast)
// that POSTs documents with X-Sluice-Message-Id, X-Sluice-Doc-Type and X-Sluice-Attempt so
// receivers can deduplicate; with `pipeline` > 1 a batch goes out as pipelined HTTP/1.1
// requests and the answers are read in order. 2xx delivers; 408, 425, 429 and 5xx retry;
// other 4xx refuse; a failed resolve, connect or handshake is "unreachable". HTTPS verifies
// the receiver's certificate and host name against the configured CA.
#pragma once

#include <memory>

#include "common/error.h"
#include "delivery/destination.h"
#include "delivery/sink.h"

namespace boost::asio {
class io_context;
}

namespace sluice::delivery {

Result<std::unique_ptr<Sink>> make_http_sink(boost::asio::io_context& io,
                                             const DestinationConfig& config);

}  // namespace sluice::delivery
