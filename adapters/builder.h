// Building standard documents from mapped records (shared by the json and csv adapters) and
// wrapping body elements in envelopes (xslt). The envelope's Sender is always the
// authenticated sender from the Context; Created is Context::now_ms.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/mapping.h"

namespace sluice::adapters {

// One record as the builder sees it.
class RecordView {
 public:
  virtual ~RecordView() = default;
  // The value a source reference names; nullopt if absent.
  virtual std::optional<std::string> get(std::string_view ref) const = 0;
  // Items of a repeated group (`separator` splits text for flat sources such as CSV cells).
  virtual std::vector<std::unique_ptr<RecordView>> each(std::string_view ref,
                                                        std::string_view separator) const = 0;
  // The record's content, canonical enough that the same record gives the same text.
  virtual std::string canonical() const = 0;
};

// Builds the envelope of one record. Problems name the field (element path) and source.
std::expected<xml::DocPtr, xml::Problems> build_document(const Mapping& mapping,
                                                         const RecordView& record,
                                                         const Context& ctx);

struct EnvelopeFields {
  std::string sender_message_id;
  std::string receiver;  // node/system
  std::string doc_type;
  std::string correlation_id;
  std::string priority;
  std::int64_t expires_hours = 0;
};

// A new envelope document holding a copy of `body` (an element of another document).
std::expected<xml::DocPtr, xml::Problems> wrap_body(xmlNode* body, const EnvelopeFields& fields,
                                                    const Context& ctx);

// Value conversion of one field: trims, applies the code map and the format. On failure,
// returns the sentence that explains it.
std::expected<std::string, std::string> convert_value(const FieldMapping& field, std::string value);

// A content-derived SenderMessageId ("h" + 40 hex characters of SHA-256), stable across
// resends of the same record through the same feed.
std::string content_id(std::string_view feed, std::string_view doc_type,
                       std::string_view canonical);

}  // namespace sluice::adapters
