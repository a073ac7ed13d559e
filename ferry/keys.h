// CURVE key pairs for the ferry link (ZeroMQ CurveZMQ, Z85 text). A secret key lives in a file
// of mode 0600 or stricter (refused otherwise); a public key is a 40-character Z85 line that an
// operator copies to the other half. Made by `sluicectl ferry keygen`.
#pragma once

#include <filesystem>
#include <string>

#include "common/error.h"

namespace sluice::ferry {

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

Result<KeyPair> generate_key_pair();
// Writes <dir>/<name>.key (secret, 0600) and <dir>/<name>.pub (public, 0644); refuses to
// replace an existing key file.
Result<void> write_key_pair(const KeyPair& keys, const std::filesystem::path& dir,
                            const std::string& name);
// Reads a secret key file (mode 0600 or stricter) and derives its public key.
Result<KeyPair> load_secret_key(const std::filesystem::path& file);
// Reads a public key file: one Z85 key of 40 characters (surrounding whitespace ignored).
Result<std::string> load_public_key(const std::filesystem::path& file);
// Whether `z85` is a well-formed 40-character Z85 CURVE key.
bool is_z85_key(std::string_view z85);

}  // namespace sluice::ferry
