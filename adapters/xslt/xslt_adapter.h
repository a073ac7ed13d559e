// The xslt adapter: a department's own XML, parsed by the hardened parser, transformed by
// the feed's stylesheet (compiled once; libxslt with file and network access forbidden to
// it, template depth bounded). The stylesheet's output contract:
//
//   <sx:Records xmlns:sx="urn:sluice:xs:adapter:1">
//     <sx:Record doc-type="case.conclude" sender-message-id="..." receiver="440600/supervision"
//                [correlation-id="..."] [line="..."]> <case:CaseConclude>...</case:CaseConclude>
//     </sx:Record> ...
//   </sx:Records>
//
// Each Record's single body element is wrapped in an envelope whose Sender is the
// authenticated sender.
#pragma once

#include <memory>

#include "adapters/adapter.h"
#include "adapters/mapping.h"
#include "common/error.h"

namespace sluice::adapters::xslt {

inline constexpr const char* kAdapterNs = "urn:sluice:xs:adapter:1";

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping);

}  // namespace sluice::adapters::xslt
