#include "ferry/frame.h"

#include <cstring>

#include "common/encoding.h"

namespace sluice::ferry {

namespace {

constexpr std::string_view kMagic = "SLF";
// Bounds a decoder enforces whatever the peer says.
constexpr std::size_t kMaxDocsPerMessage = 4096;
constexpr std::size_t kMaxResultsPerMessage = 65536;

class Writer {
 public:
  explicit Writer(FrameType type) {
    out_.append(kMagic);
    u8(kProtocolVersion);
    u8(static_cast<std::uint8_t>(type));
  }
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void bytes(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  // A string of at most 65535 bytes, u16 length first (longer ones are cut: codes, reasons
  // and ids are short by construction).
  void str(std::string_view s) {
    auto n = std::min<std::size_t>(s.size(), 0xFFFF);
    u16(static_cast<std::uint16_t>(n));
    out_.append(s.substr(0, n));
  }
  // A long string (a status or a receipt): u32 length first.
  void text(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(std::uint8_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 1)) return false;
    v = static_cast<std::uint8_t>(x);
    return true;
  }
  bool u16(std::uint16_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 2)) return false;
    v = static_cast<std::uint16_t>(x);
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 4)) return false;
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  bool u64(std::uint64_t& v) { return le(v, 8); }
  bool bytes(void* p, std::size_t n) {
    if (in_.size() - at_ < n) return false;
    std::memcpy(p, in_.data() + at_, n);
    at_ += n;
    return true;
  }
  bool str(std::string& s) {
    std::uint16_t n = 0;
    if (!u16(n) || in_.size() - at_ < n) return false;
    s.assign(in_.substr(at_, n));
    at_ += n;
    return true;
  }
  bool text(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || in_.size() - at_ < n) return false;
    s.assign(in_.substr(at_, n));
    at_ += n;
    return true;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  bool le(std::uint64_t& v, int n) {
    if (in_.size() - at_ < static_cast<std::size_t>(n)) return false;
    v = 0;
    for (int i = 0; i < n; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[at_ + i])) << (8 * i);
    }
    at_ += static_cast<std::size_t>(n);
    return true;
  }
  std::string_view in_;
  std::size_t at_ = 0;
};

std::unexpected<Error> malformed(const std::string& what) {
  return fail(Errc::kMalformed, "ferry frame: " + what);
}

}  // namespace

std::string_view to_string(Direction d) {
  return d == Direction::kInbound ? "inbound" : "outbound";
}

std::string_view to_string(Fate f) {
  switch (f) {
    case Fate::kStored:
      return "stored";
    case Fate::kDuplicate:
      return "duplicate";
    case Fate::kRefused:
      return "refused";
    case Fate::kRetry:
      return "retry";
  }
  return "unknown";
}

std::string encode_hello(const Hello& h) {
  Writer w(FrameType::kHello);
  w.u64(h.epoch);
  w.u32(h.credit_docs);
  w.u64(h.credit_bytes);
  w.str(h.gateway_id);
  return w.take();
}

std::string encode_docs(const std::vector<DocHeader>& docs) {
  Writer w(FrameType::kDocs);
  w.u16(static_cast<std::uint16_t>(docs.size()));
  for (const auto& d : docs) {
    w.u8(static_cast<std::uint8_t>(d.direction));
    w.u64(d.epoch);
    w.u64(d.seq);
    w.str(d.message_id);
    w.u32(d.length);
    w.bytes(d.sha256.data(), d.sha256.size());
  }
  return w.take();
}

std::string encode_results(const Results& r) {
  Writer w(FrameType::kResult);
  w.u64(r.epoch);
  w.u32(static_cast<std::uint32_t>(r.entries.size()));
  for (const auto& e : r.entries) {
    w.u64(e.seq);
    w.u8(static_cast<std::uint8_t>(e.fate));
    w.str(e.code);
    w.str(e.reason);
  }
  return w.take();
}

std::string encode_ping(FrameType type, std::uint64_t ms) {
  Writer w(type);
  w.u64(ms);
  return w.take();
}

std::string encode_query(const Query& q) {
  Writer w(FrameType::kQuery);
  w.u64(q.id);
  w.str(q.message_id);
  return w.take();
}

std::string encode_answer(const Answer& a) {
  Writer w(FrameType::kAnswer);
  w.u64(a.id);
  w.u8(a.found ? 1 : 0);
  w.text(a.status_json);
  w.text(a.receipt);
  return w.take();
}

Result<Control> decode_control(std::string_view part) {
  if (part.size() < 5 || part.substr(0, 3) != kMagic) {
    return malformed("the control part does not start with \"SLF\"");
  }
  Reader r(part.substr(3));
  std::uint8_t version = 0;
  std::uint8_t type = 0;
  r.u8(version);
  r.u8(type);
  if (version != kProtocolVersion) {
    return malformed("protocol version " + std::to_string(version) + ", this half speaks " +
                     std::to_string(kProtocolVersion));
  }
  Control c;
  c.type = static_cast<FrameType>(type);
  bool ok = true;
  switch (c.type) {
    case FrameType::kHello:
      ok = r.u64(c.hello.epoch) && r.u32(c.hello.credit_docs) && r.u64(c.hello.credit_bytes) &&
           r.str(c.hello.gateway_id);
      break;
    case FrameType::kDocs: {
      std::uint16_t n = 0;
      ok = r.u16(n);
      if (ok && (n == 0 || n > kMaxDocsPerMessage)) {
        return malformed("DOCS announces " + std::to_string(n) + " documents (1.." +
                         std::to_string(kMaxDocsPerMessage) + ")");
      }
      for (std::uint16_t i = 0; ok && i < n; ++i) {
        DocHeader d;
        std::uint8_t dir = 0;
        ok = r.u8(dir) && r.u64(d.epoch) && r.u64(d.seq) && r.str(d.message_id) &&
             r.u32(d.length) && r.bytes(d.sha256.data(), d.sha256.size());
        if (ok && dir != 1 && dir != 2) {
          return malformed("document " + std::to_string(i + 1) + ": direction " +
                           std::to_string(dir));
        }
        d.direction = static_cast<Direction>(dir);
        c.docs.push_back(std::move(d));
      }
      break;
    }
    case FrameType::kResult: {
      std::uint32_t n = 0;
      ok = r.u64(c.results.epoch) && r.u32(n);
      if (ok && n > kMaxResultsPerMessage) {
        return malformed("RESULT announces " + std::to_string(n) + " entries");
      }
      for (std::uint32_t i = 0; ok && i < n; ++i) {
        ResultEntry e;
        std::uint8_t fate = 0;
        ok = r.u64(e.seq) && r.u8(fate) && r.str(e.code) && r.str(e.reason);
        if (ok && fate > 3)
          return malformed("result " + std::to_string(i + 1) + ": fate " + std::to_string(fate));
        e.fate = static_cast<Fate>(fate);
        c.results.entries.push_back(std::move(e));
      }
      break;
    }
    case FrameType::kPing:
    case FrameType::kPong:
      ok = r.u64(c.ping_ms);
      break;
    case FrameType::kQuery:
      ok = r.u64(c.query.id) && r.str(c.query.message_id);
      break;
    case FrameType::kAnswer: {
      std::uint8_t found = 0;
      ok = r.u64(c.answer.id) && r.u8(found) && r.text(c.answer.status_json) &&
           r.text(c.answer.receipt);
      c.answer.found = found != 0;
      break;
    }
    default:
      return malformed("unknown type " + std::to_string(type));
  }
  if (!ok) return malformed("the control part ends early");
  if (!r.done()) return malformed("bytes after the end of the control part");
  return c;
}

Result<void> check_payload(const DocHeader& header, std::string_view payload) {
  if (payload.size() != header.length) {
    return fail(Errc::kMalformed, "document " + header.message_id + ": payload of " +
                                      std::to_string(payload.size()) + " bytes, header says " +
                                      std::to_string(header.length));
  }
  if (sha256(payload) != header.sha256) {
    return fail(Errc::kCrypto, "document " + header.message_id +
                                   ": the payload's SHA-256 does not match its header");
  }
  return {};
}

}  // namespace sluice::ferry
