// Byte encodings and digests used across Sluice (OpenSSL underneath).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string base64_encode(std::string_view bytes);
// Decodes standard base64; whitespace is ignored. nullopt on malformed input.
std::optional<std::string> base64_decode(std::string_view text);
std::string hex_encode(std::string_view bytes);
// True if `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates, code points
// above U+10FFFF or truncated sequences).
bool is_valid_utf8(std::string_view bytes);
// `text` without leading and trailing XML white space (space, tab, CR, LF).
std::string trim_xml_space(std::string_view text);
// Big-endian integers, so that byte-wise key order is numeric order. get_* read the first
// 4 or 8 bytes of `s`, which the caller has checked are there.
void put_u32be(std::string& out, std::uint32_t v);
void put_u64be(std::string& out, std::uint64_t v);
std::uint32_t get_u32be(std::string_view s);
std::uint64_t get_u64be(std::string_view s);
std::array<unsigned char, 32> sha256(std::string_view bytes);
std::string sha256_hex(std::string_view bytes);
// Milliseconds since the epoch as RFC 3339 with an explicit +08:00 offset (China time),
// e.g. 2026-11-23T11:24:05.123+08:00.
std::string format_time_cn(std::int64_t epoch_ms);
// Parses an xs:dateTime with an explicit offset (Z or +hh:mm); nullopt if malformed or
// without an offset.
std::optional<std::int64_t> parse_datetime_ms(std::string_view text);

}  // namespace sluice
