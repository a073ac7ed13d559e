// Adapters turn one input in a department's own format into standard documents (complete
// exchange envelopes, not yet validated) or into per-record problems. Each adapter lives in
// adapters/<name>/, in its own namespace, and is built by name from a mapping file through
// the Registry (registry.h). Adapters never see HTTP, the store or the network.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "xml/envelope.h"
#include "xml/parse.h"
#include "xml/problem.h"

namespace sluice::adapters {

struct Context {
  xml::NodeAddress sender;      // the authenticated sender: the envelope's Sender is always this
  std::string feed;             // feed name, for messages
  std::int64_t now_ms = 0;      // Created of the documents
  xml::ParseLimits xml_limits;  // for adapters that parse XML input
  std::size_t max_records = 1'000'000;
};

// One record of the input, translated or not.
struct Translated {
  std::int64_t record = 0;  // 1-based record number (CSV: data row; JSON: array index + 1)
  int line = 0;             // 1-based line of the input where the record starts, 0 if n/a
  std::expected<xml::DocPtr, xml::Problems> document;
  std::string raw;  // the record as received (UTF-8), for the quarantine
};

using Emit = std::function<void(Translated&&)>;

class Adapter {
 public:
  virtual ~Adapter() = default;
  // Translates `input`, calling `emit` once per record in input order. Returns a problem only
  // when the input as a whole is unusable (not JSON, bad encoding, too many records); records
  // emitted before that still count.
  virtual std::optional<xml::Problem> translate(std::string_view input, const Context& ctx,
                                                const Emit& emit) const = 0;
  // The adapter that re-reads one record's `raw` text (as kept in the quarantine).
  virtual std::optional<xml::Problem> translate_record(std::string_view raw, const Context& ctx,
                                                       const Emit& emit) const {
    return translate(raw, ctx, emit);
  }
  virtual std::string_view name() const = 0;
};

}  // namespace sluice::adapters
