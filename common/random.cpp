#include "common/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace sluice {

std::uint64_t SecureRandom::next_u64() {
  std::uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
    std::fputs("sluice: RAND_bytes failed; refusing to continue without randomness\n", stderr);
    std::abort();
  }
  return v;
}

SecureRandom& SecureRandom::instance() {
  static SecureRandom random;
  return random;
}

std::uint64_t SeededRandom::next_u64() {
  std::lock_guard lock(mutex_);
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string uuid_text(const unsigned char* b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s.push_back('-');
    }
    s.push_back(kHex[b[i] >> 4]);
    s.push_back(kHex[b[i] & 0xf]);
  }
  return s;
}

std::string new_uuid(Random& random) {
  unsigned char b[16];
  std::uint64_t hi = random.next_u64();
  std::uint64_t lo = random.next_u64();
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    b[8 + i] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid_text(b);
}

std::string new_uuid_v7(Random& random, std::int64_t unix_ms) {
  unsigned char b[16];
  std::uint64_t ms = static_cast<std::uint64_t>(unix_ms);
  for (int i = 0; i < 6; ++i) {
    b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  }
  std::uint64_t r1 = random.next_u64();
  std::uint64_t r2 = random.next_u64();
  b[6] = static_cast<unsigned char>(0x70 | ((r1 >> 56) & 0x0f));  // version 7
  b[7] = static_cast<unsigned char>(r1 >> 48);
  b[8] = static_cast<unsigned char>(0x80 | ((r1 >> 40) & 0x3f));  // RFC 9562 variant
  for (int i = 9; i < 16; ++i) {
    b[i] = static_cast<unsigned char>(r2 >> (8 * (i - 9)));
  }
  return uuid_text(b);
}

bool parse_uuid(std::string_view s, std::array<unsigned char, 16>& out) noexcept {
  if (s.size() != 36) {
    return false;
  }
  int j = 0;
  for (std::size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') {
        return false;
      }
      ++i;
      continue;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int h = nibble(s[i]);
    int l = nibble(s[i + 1]);
    if (h < 0 || l < 0) {
      return false;
    }
    out[j++] = static_cast<unsigned char>(h << 4 | l);
    i += 2;
  }
  return true;
}

bool is_uuid(std::string_view s) noexcept {
  std::array<unsigned char, 16> b;
  return parse_uuid(s, b);
}

std::array<unsigned char, 16> uuid_bytes(std::string_view canonical) {
  std::array<unsigned char, 16> b{};
  parse_uuid(canonical, b);
  return b;
}

}  // namespace sluice
