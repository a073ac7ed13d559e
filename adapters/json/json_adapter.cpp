#include "adapters/json/json_adapter.h"

#include <boost/json.hpp>

#include "adapters/builder.h"

namespace sluice::adapters::json {
namespace bj = boost::json;
namespace {

constexpr std::size_t kMaxDepth = 32;

// Walks `path` (after its leading $, @ or ^) from `v`; nullptr when absent.
const bj::value* walk(const bj::value* v, std::string_view path) {
  std::size_t i = 0;
  while (v != nullptr && i < path.size()) {
    if (path[i] == '.') {
      std::size_t j = i + 1;
      while (j < path.size() && path[j] != '.' && path[j] != '[') ++j;
      std::string_view key = path.substr(i + 1, j - i - 1);
      const bj::object* o = v->if_object();
      auto it = o != nullptr ? o->find(key) : nullptr;
      v = (o != nullptr && it != o->end()) ? &it->value() : nullptr;
      i = j;
    } else if (path[i] == '[') {
      std::size_t close = path.find(']', i);
      if (close == std::string_view::npos) return nullptr;
      std::string_view inner = path.substr(i + 1, close - i - 1);
      if (inner.size() >= 2 && (inner.front() == '"' || inner.front() == '\'')) {
        std::string_view key = inner.substr(1, inner.size() - 2);
        const bj::object* o = v->if_object();
        auto it = o != nullptr ? o->find(key) : nullptr;
        v = (o != nullptr && it != o->end()) ? &it->value() : nullptr;
      } else {
        std::size_t idx = 0;
        for (char c : inner) {
          if (c < '0' || c > '9') return nullptr;
          idx = idx * 10 + static_cast<std::size_t>(c - '0');
        }
        const bj::array* a = v->if_array();
        v = (a != nullptr && idx < a->size()) ? &(*a)[idx] : nullptr;
      }
      i = close + 1;
    } else {
      return nullptr;
    }
  }
  return v;
}

std::optional<std::string> scalar(const bj::value* v) {
  if (v == nullptr) return std::nullopt;
  switch (v->kind()) {
    case bj::kind::string:
      return std::string(v->get_string());
    case bj::kind::int64:
      return std::to_string(v->get_int64());
    case bj::kind::uint64:
      return std::to_string(v->get_uint64());
    case bj::kind::double_: {
      std::string s = bj::serialize(*v);
      return s;
    }
    case bj::kind::bool_:
      return std::string(v->get_bool() ? "true" : "false");
    case bj::kind::null:
      return std::nullopt;
    default:
      return bj::serialize(*v);
  }
}

class JsonRecord final : public RecordView {
 public:
  JsonRecord(const bj::value* root, const bj::value* record, const bj::value* item)
      : root_(root), record_(record), item_(item) {}

  std::optional<std::string> get(std::string_view ref) const override {
    return scalar(resolve(ref));
  }

  std::vector<std::unique_ptr<RecordView>> each(std::string_view ref,
                                                std::string_view) const override {
    std::vector<std::unique_ptr<RecordView>> out;
    const bj::value* v = resolve(ref);
    if (v == nullptr) return out;
    if (const bj::array* a = v->if_array()) {
      for (const auto& e : *a) out.push_back(std::make_unique<JsonRecord>(root_, record_, &e));
    } else if (!v->is_null()) {
      out.push_back(std::make_unique<JsonRecord>(root_, record_, v));
    }
    return out;
  }

  std::string canonical() const override { return bj::serialize(*record_); }

 private:
  const bj::value* resolve(std::string_view ref) const {
    if (ref.empty()) return nullptr;
    const bj::value* base = ref[0] == '$'   ? record_
                            : ref[0] == '@' ? item_
                            : ref[0] == '^' ? root_
                                            : nullptr;
    if (base == nullptr) return nullptr;
    return walk(base, ref.substr(1));
  }

  const bj::value* root_;
  const bj::value* record_;
  const bj::value* item_;
};

class JsonAdapter final : public Adapter {
 public:
  explicit JsonAdapter(Mapping m) : mapping_(std::move(m)) {}

  std::string_view name() const override { return "json"; }

  std::optional<xml::Problem> translate(std::string_view input, const Context& ctx,
                                        const Emit& emit) const override {
    return run(input, ctx, emit, mapping_.records);
  }

  std::optional<xml::Problem> translate_record(std::string_view raw, const Context& ctx,
                                               const Emit& emit) const override {
    return run(raw, ctx, emit, "$");
  }

 private:
  std::optional<xml::Problem> run(std::string_view input, const Context& ctx, const Emit& emit,
                                  const std::string& records) const {
    bj::parse_options opts;
    opts.max_depth = kMaxDepth;
    boost::system::error_code ec;
    bj::value root = bj::parse(input, ec, {}, opts);
    if (ec) {
      return xml::make_problem("json.malformed", "", "", 0,
                               "the input is not valid JSON (UTF-8, depth <= " +
                                   std::to_string(kMaxDepth) + "): " + ec.message());
    }
    const bj::value* recs =
        records.empty() ? nullptr : walk(&root, std::string_view(records).substr(1));
    if (recs == nullptr) {
      return xml::make_problem("json.no-records", "", records, 0,
                               "no records at " + records + " in the input");
    }
    std::vector<const bj::value*> list;
    if (const bj::array* a = recs->if_array()) {
      for (const auto& e : *a) list.push_back(&e);
    } else {
      list.push_back(recs);
    }
    if (list.size() > ctx.max_records) {
      return xml::make_problem("json.too-many-records", "", records, 0,
                               std::to_string(list.size()) + " records, more than the limit of " +
                                   std::to_string(ctx.max_records));
    }
    std::int64_t n = 0;
    for (const bj::value* rec : list) {
      ++n;
      Translated t;
      t.record = n;
      t.raw = bj::serialize(*rec);
      if (!rec->is_object()) {
        t.document = std::unexpected(xml::Problems{
            xml::make_problem("json.not-an-object", "", records + "[" + std::to_string(n - 1) + "]",
                              0, "record " + std::to_string(n) + " is not a JSON object")});
      } else {
        JsonRecord view(&root, rec, rec);
        t.document = build_document(mapping_, view, ctx);
      }
      if (!t.document) {
        for (auto& p : t.document.error()) p.record = n;
      }
      emit(std::move(t));
    }
    return std::nullopt;
  }

  Mapping mapping_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping) {
  if (!mapping.records.starts_with("$")) {
    return fail(Errc::kInvalidArgument,
                "mapping " + mapping.file.string() + ": records must start with $");
  }
  return std::unique_ptr<Adapter>(new JsonAdapter(mapping));
}

}  // namespace sluice::adapters::json
