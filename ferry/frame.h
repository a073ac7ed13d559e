// The ferry's frames (docs/ferry.md, "Frames"): what crosses the link, as bytes. Every ZeroMQ
// message starts with a control part — magic "SLF", protocol version, type — and a DOCS
// message carries one payload part per document after it, exactly as the sender stored it.
// Decoding never trusts a length: a part that is short, long or inconsistent is refused with
// a sentence naming what is wrong.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace sluice::ferry {

inline constexpr std::uint8_t kProtocolVersion = 1;

enum class FrameType : std::uint8_t {
  kHello = 1,   // who I am, my epoch, the credit I grant
  kDocs = 2,    // one or more documents
  kResult = 3,  // the fate of documents received: stored, duplicate, refused, retry
  kPing = 4,    // liveness; answered by kPong
  kPong = 5,
  kQuery = 6,   // what became of a document this half sent: its state on the other half
  kAnswer = 7,  // the answer to a kQuery
};

// Which way a document crosses: inbound is outer → inner, outbound inner → outer.
enum class Direction : std::uint8_t { kInbound = 1, kOutbound = 2 };
std::string_view to_string(Direction d);

struct Hello {
  std::uint64_t epoch = 0;         // the sender's epoch: new each time its link starts
  std::uint32_t credit_docs = 0;   // documents the peer may have unanswered at once
  std::uint64_t credit_bytes = 0;  // payload bytes the peer may have unanswered at once
  std::string gateway_id;          // the half's gateway id (Trace hops)
};

struct DocHeader {
  Direction direction = Direction::kInbound;
  std::uint64_t epoch = 0;  // the sending half's epoch
  std::uint64_t seq = 0;    // per epoch, from 1
  std::string message_id;
  std::uint32_t length = 0;               // payload bytes
  std::array<std::uint8_t, 32> sha256{};  // of the payload
};

enum class Fate : std::uint8_t {
  kStored = 0,     // in the receiver's synced store now
  kDuplicate = 1,  // it was already there (same MessageId): stored once, acked again
  kRefused = 2,    // never: the receiver will not take this document (code, reason)
  kRetry = 3,      // not now (the receiver is busy or stopping): send it again later
};
std::string_view to_string(Fate f);

struct ResultEntry {
  std::uint64_t seq = 0;
  Fate fate = Fate::kStored;
  std::string code;    // for kRefused/kRetry, e.g. "ferry.digest-mismatch", "signature.invalid"
  std::string reason;  // one sentence, no personal data
};

struct Results {
  std::uint64_t epoch = 0;  // the epoch of the documents' sender
  std::vector<ResultEntry> entries;
};

struct Query {
  std::uint64_t id = 0;  // chosen by the asker, echoed in the answer
  std::string message_id;
};

struct Answer {
  std::uint64_t id = 0;
  bool found = false;
  std::string status_json;  // the message's state and deliveries on the answering half
  std::string receipt;      // its signed delivery receipt, once every destination confirmed
};

// The control part of a message, decoded.
struct Control {
  FrameType type = FrameType::kPing;
  Hello hello;                  // kHello
  std::vector<DocHeader> docs;  // kDocs: one per payload part that follows
  Results results;              // kResult
  std::uint64_t ping_ms = 0;    // kPing/kPong: the pinger's clock, echoed
  Query query;                  // kQuery
  Answer answer;                // kAnswer
};

std::string encode_hello(const Hello& h);
std::string encode_docs(const std::vector<DocHeader>& docs);
std::string encode_results(const Results& r);
std::string encode_ping(FrameType type, std::uint64_t ms);
std::string encode_query(const Query& q);
std::string encode_answer(const Answer& a);

// Decodes a control part; kMalformed names the field that is wrong.
Result<Control> decode_control(std::string_view part);
// Checks a payload part against its header: its length and SHA-256.
Result<void> check_payload(const DocHeader& header, std::string_view payload);

}  // namespace sluice::ferry
