// Randomness, injectable: message ids and retry jitter draw from a Random so tests can make
// them deterministic. SecureRandom (OpenSSL's DRBG) is the production source.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>

namespace sluice {

class Random {
 public:
  virtual ~Random() = default;
  // A uniformly random 64-bit value. Thread-safe.
  virtual std::uint64_t next_u64() = 0;
  // A uniformly random double in [0, 1).
  double next_unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
};

// OpenSSL RAND_bytes. Thread-safe. Aborts if the system DRBG fails (no safe way on).
class SecureRandom final : public Random {
 public:
  std::uint64_t next_u64() override;
  static SecureRandom& instance();
};

// SplitMix64, seeded; for tests and benchmarks only. Thread-safe.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64() override;

 private:
  std::mutex mutex_;
  std::uint64_t state_;  // Guarded by mutex_.
};

// A version-4 UUID in lowercase canonical form (36 characters).
std::string new_uuid(Random& random);
// A version-7 UUID (RFC 9562): 48-bit Unix milliseconds then random bits, so ids sort by
// creation time. Message ids use it: the store's trees then grow at their right edge
// instead of dirtying a random page per insert.
std::string new_uuid_v7(Random& random, std::int64_t unix_ms);
// True if `s` is a lowercase canonical UUID.
bool is_uuid(std::string_view s) noexcept;
// 16 raw bytes <-> canonical text. parse returns false on malformed input.
std::array<unsigned char, 16> uuid_bytes(std::string_view canonical);
bool parse_uuid(std::string_view canonical, std::array<unsigned char, 16>& out) noexcept;
std::string uuid_text(const unsigned char* bytes16);

}  // namespace sluice
