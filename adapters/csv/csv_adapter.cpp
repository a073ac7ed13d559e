#include "adapters/csv/csv_adapter.h"

#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <unordered_map>

#include "adapters/builder.h"
#include "common/encoding.h"

namespace sluice::adapters::csv {
namespace {

constexpr std::size_t kMaxField = 64 * 1024;

class IconvHandle {
 public:
  explicit IconvHandle(const std::string& from) : cd_(iconv_open("UTF-8", from.c_str())) {}
  ~IconvHandle() {
    if (ok()) iconv_close(cd_);
  }
  IconvHandle(const IconvHandle&) = delete;
  IconvHandle& operator=(const IconvHandle&) = delete;
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  // Converts what can be converted and puts U+FFFD for each byte that cannot.
  void convert_lossy(std::string_view in, std::string& out) {
    while (!in.empty()) {
      std::size_t ok = 0;
      // Longest prefix that converts: grow one byte at a time over short runs.
      for (std::size_t n = 1; n <= std::min<std::size_t>(in.size(), 4); ++n) {
        std::string tmp;
        if (convert(in.substr(0, n), tmp)) {
          out += tmp;
          ok = n;
          break;
        }
      }
      if (ok == 0) {
        out += "\xEF\xBF\xBD";
        ok = 1;
      }
      in.remove_prefix(ok);
    }
  }

  bool convert(std::string_view in, std::string& out) {
    iconv(cd_, nullptr, nullptr, nullptr, nullptr);
    std::size_t start = out.size();
    out.resize(start + in.size() * 2 + 8);
    char* src = const_cast<char*>(in.data());
    std::size_t src_left = in.size();
    char* dst = out.data() + start;
    std::size_t dst_left = out.size() - start;
    while (src_left > 0) {
      std::size_t rc = iconv(cd_, &src, &src_left, &dst, &dst_left);
      if (rc == static_cast<std::size_t>(-1)) {
        if (errno == E2BIG) {
          std::size_t used = static_cast<std::size_t>(dst - out.data());
          out.resize(out.size() * 2);
          dst = out.data() + used;
          dst_left = out.size() - used;
          continue;
        }
        out.resize(start);
        return false;
      }
    }
    out.resize(static_cast<std::size_t>(dst - out.data()));
    return true;
  }

 private:
  iconv_t cd_;
};

class CsvRecord final : public RecordView {
 public:
  CsvRecord(const std::unordered_map<std::string, std::size_t>* columns, const Row* row,
            std::string item)
      : columns_(columns), row_(row), item_(std::move(item)) {}

  std::optional<std::string> get(std::string_view ref) const override {
    if (ref == "@") return item_;
    auto it = columns_->find(std::string(ref));
    if (it == columns_->end() || it->second >= row_->fields.size()) return std::nullopt;
    return row_->fields[it->second];
  }

  std::vector<std::unique_ptr<RecordView>> each(std::string_view ref,
                                                std::string_view separator) const override {
    std::vector<std::unique_ptr<RecordView>> out;
    auto v = get(ref);
    if (!v || v->empty()) return out;
    std::string sep = separator.empty() ? std::string(";") : std::string(separator);
    std::size_t start = 0;
    while (start <= v->size()) {
      std::size_t end = v->find(sep, start);
      std::string part =
          v->substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!part.empty()) out.push_back(std::make_unique<CsvRecord>(columns_, row_, part));
      if (end == std::string::npos) break;
      start = end + sep.size();
    }
    return out;
  }

  std::string canonical() const override { return row_->text; }

 private:
  const std::unordered_map<std::string, std::size_t>* columns_;
  const Row* row_;
  std::string item_;
};

class CsvAdapter final : public Adapter {
 public:
  explicit CsvAdapter(Mapping m) : mapping_(std::move(m)) {}
  std::string_view name() const override { return "csv"; }

  std::optional<xml::Problem> translate(std::string_view input, const Context& ctx,
                                        const Emit& emit) const override {
    std::vector<int> bad_lines;
    std::string text = to_utf8(input, mapping_.encoding, bad_lines);
    if (text.empty() && !input.empty() && bad_lines.empty()) {
      return xml::make_problem("csv.encoding", "", "", 0,
                               "cannot convert from " + mapping_.encoding + " on this system");
    }
    return run(text, bad_lines, ctx, emit);
  }

  // Quarantined rows are kept as UTF-8 (header line + the row).
  std::optional<xml::Problem> translate_record(std::string_view raw, const Context& ctx,
                                               const Emit& emit) const override {
    std::vector<int> bad_lines;
    if (!is_valid_utf8(raw)) {
      return xml::make_problem("csv.encoding", "", "", 0, "the corrected row is not UTF-8");
    }
    return run(raw, bad_lines, ctx, emit);
  }

 private:
  std::optional<xml::Problem> run(std::string_view text, const std::vector<int>& bad_lines,
                                  const Context& ctx, const Emit& emit) const {
    auto rows =
        parse_rows(text, mapping_.delimiter, mapping_.quote, bad_lines, ctx.max_records + 1);
    if (rows.size() > ctx.max_records + (mapping_.header ? 1 : 0)) {
      return xml::make_problem("csv.too-many-records", "", "", 0,
                               "more than " + std::to_string(ctx.max_records) + " rows");
    }
    std::unordered_map<std::string, std::size_t> columns;
    std::size_t first = 0;
    std::string header_text;
    if (mapping_.header) {
      if (rows.empty()) {
        return xml::make_problem("csv.empty", "", "", 1, "the input has no header row");
      }
      if (!rows[0].error.empty()) {
        return xml::make_problem("csv.header", "", "", rows[0].line,
                                 "the header row is unreadable: " + rows[0].error);
      }
      for (std::size_t i = 0; i < rows[0].fields.size(); ++i) {
        std::string name = rows[0].fields[i];
        if (i == 0 && name.starts_with("\xEF\xBB\xBF")) name = name.substr(3);  // UTF-8 BOM
        while (!name.empty() && name.back() == ' ') name.pop_back();
        columns.emplace(name, i);
      }
      header_text = rows[0].text;
      first = 1;
      for (const auto& f : mapping_.fields) {
        if (!f.from.empty() && f.from != "@" && !columns.contains(f.from) && f.required &&
            !f.constant) {
          return xml::make_problem(
              "csv.column", f.from, "", rows[0].line,
              "the header has no column " + f.from + " (needed for " + f.path + ")");
        }
      }
    } else {
      for (std::size_t i = 0; i < 256; ++i) columns.emplace(std::to_string(i + 1), i);
    }
    std::int64_t record = 0;
    for (std::size_t r = first; r < rows.size(); ++r) {
      const Row& row = rows[r];
      ++record;
      Translated t;
      t.record = record;
      t.line = row.line;
      t.raw = header_text.empty() ? row.text : header_text + "\n" + row.text;
      if (!row.error.empty()) {
        t.document = std::unexpected(xml::Problems{xml::make_problem(
            "csv.row", "", "", row.line, "line " + std::to_string(row.line) + ": " + row.error)});
      } else if (mapping_.header && row.fields.size() != columns.size()) {
        t.document = std::unexpected(xml::Problems{xml::make_problem(
            "csv.field-count", "", "", row.line,
            "line " + std::to_string(row.line) + " has " + std::to_string(row.fields.size()) +
                " fields, the header has " + std::to_string(columns.size()))});
      } else {
        CsvRecord view(&columns, &row, "");
        t.document = build_document(mapping_, view, ctx);
      }
      if (!t.document) {
        for (auto& p : t.document.error()) {
          p.record = record;
          if (p.line == 0) p.line = row.line;
        }
      }
      emit(std::move(t));
    }
    return std::nullopt;
  }

  Mapping mapping_;
};

}  // namespace

std::string to_utf8(std::string_view input, const std::string& encoding,
                    std::vector<int>& bad_lines) {
  std::string out;
  out.reserve(input.size() + input.size() / 2);
  bool utf8 = encoding == "UTF-8";
  std::optional<IconvHandle> cd;
  if (!utf8) {
    cd.emplace(encoding);
    if (!cd->ok()) return {};
  }
  int line = 1;
  std::size_t start = 0;
  while (start < input.size()) {
    std::size_t nl = input.find('\n', start);
    std::string_view part =
        input.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    bool ok;
    if (utf8) {
      ok = is_valid_utf8(part);
      if (ok) {
        out.append(part);
      } else {
        for (unsigned char c : part) {
          if (c < 0x80) {
            out.push_back(static_cast<char>(c));
          } else {
            out += "\xEF\xBF\xBD";
          }
        }
      }
    } else {
      ok = cd->convert(part, out);
      if (!ok) cd->convert_lossy(part, out);
    }
    if (!ok) bad_lines.push_back(line);  // the row still exists, and fails with this line
    if (nl == std::string_view::npos) break;
    out.push_back('\n');
    start = nl + 1;
    ++line;
  }
  return out;
}

std::vector<Row> parse_rows(std::string_view text, char delim, char quote,
                            const std::vector<int>& bad_lines, std::size_t max_rows) {
  std::vector<Row> rows;
  std::size_t i = 0;
  int line = 1;
  while (i < text.size() && rows.size() < max_rows) {
    // Skip empty lines.
    if (text[i] == '\n' || (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    Row row;
    row.line = line;
    std::size_t row_start = i;
    std::string field;
    bool in_quotes = false, field_quoted = false, done = false;
    while (!done) {
      if (i >= text.size()) {
        if (in_quotes) row.error = "a quoted field is not closed";
        row.fields.push_back(std::move(field));
        break;
      }
      char c = text[i];
      if (in_quotes) {
        if (c == quote) {
          if (i + 1 < text.size() && text[i + 1] == quote) {
            field.push_back(quote);
            i += 2;
          } else {
            in_quotes = false;
            ++i;
          }
        } else {
          if (c == '\n') ++line;
          field.push_back(c);
          ++i;
        }
      } else if (c == quote && field.empty() && !field_quoted) {
        in_quotes = true;
        field_quoted = true;
        ++i;
      } else if (c == delim) {
        row.fields.push_back(std::move(field));
        field.clear();
        field_quoted = false;
        ++i;
      } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
        row.fields.push_back(std::move(field));
        std::size_t end = i;
        i += c == '\r' ? 2 : 1;
        row.text.assign(text.substr(row_start, end - row_start));
        ++line;
        done = true;
        break;
      } else {
        if (field_quoted && row.error.empty()) {
          row.error =
              "text after a closing quote in field " + std::to_string(row.fields.size() + 1);
        }
        field.push_back(c);
        ++i;
      }
      if (field.size() > kMaxField && row.error.empty()) {
        row.error = "a field is longer than " + std::to_string(kMaxField) + " bytes";
      }
    }
    if (!done) {
      row.text.assign(text.substr(row_start));
      while (!row.text.empty() && (row.text.back() == '\n' || row.text.back() == '\r'))
        row.text.pop_back();
    }
    for (int l = row.line; l <= (done ? line - 1 : line); ++l) {
      if (std::binary_search(bad_lines.begin(), bad_lines.end(), l)) {
        row.error = "line " + std::to_string(l) + " is not valid text in the feed's encoding";
        break;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::unique_ptr<Adapter>> create(const Mapping& mapping) {
  std::vector<int> bad;
  if (mapping.encoding != "UTF-8" && to_utf8("a", mapping.encoding, bad).empty()) {
    return fail(Errc::kInvalidArgument, "mapping " + mapping.file.string() + ": encoding " +
                                            mapping.encoding + " is not available (iconv)");
  }
  return std::unique_ptr<Adapter>(new CsvAdapter(mapping));
}

}  // namespace sluice::adapters::csv
