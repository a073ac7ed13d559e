#include "ferry/keys.h"

#include <sys/stat.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/fs.h"

namespace sluice::ferry {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

bool is_z85_key(std::string_view z85) {
  if (z85.size() != 40) return false;
  std::array<std::uint8_t, 32> raw{};
  std::string copy(z85);
  return zmq_z85_decode(raw.data(), copy.c_str()) != nullptr;
}

Result<KeyPair> generate_key_pair() {
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    return fail(Errc::kInternal, std::string("zmq_curve_keypair failed (libzmq without CURVE?): ") +
                                     zmq_strerror(zmq_errno()));
  }
  return KeyPair{pub.data(), sec.data()};
}

Result<void> write_key_pair(const KeyPair& keys, const fs::path& dir, const std::string& name) {
  const fs::path secret = dir / (name + ".key");
  const fs::path pub = dir / (name + ".pub");
  for (const auto& p : {secret, pub}) {
    std::error_code ec;
    if (fs::exists(p, ec)) {
      return fail(Errc::kAlreadyExists, p.string() + " exists: a key is never overwritten");
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(Errc::kIo, "cannot create " + dir.string() + ": " + ec.message());
  if (auto r = write_file_durable(secret, keys.secret_key + "\n", 0600); !r) return r;
  return write_file_durable(pub, keys.public_key + "\n", 0644);
}

Result<KeyPair> load_secret_key(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return fail(Errc::kNotFound, "ferry secret key " + file.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::kInvalidArgument, "ferry secret key " + file.string() +
                                            " is readable by group or others (chmod 600 it)");
  }
  auto text = read_file(file, 4096);
  if (!text) return fail(text.error());
  std::string secret = trim(*text);
  if (!is_z85_key(secret)) {
    return fail(Errc::kInvalidArgument,
                "ferry secret key " + file.string() + " is not a 40-character Z85 CURVE key");
  }
  std::array<char, 41> pub{};
  if (zmq_curve_public(pub.data(), secret.c_str()) != 0) {
    return fail(Errc::kInvalidArgument,
                "ferry secret key " + file.string() + ": " + zmq_strerror(zmq_errno()));
  }
  return KeyPair{pub.data(), secret};
}

Result<std::string> load_public_key(const fs::path& file) {
  auto text = read_file(file, 4096);
  if (!text) return fail(text.error());
  std::string key = trim(*text);
  if (!is_z85_key(key)) {
    return fail(Errc::kInvalidArgument,
                "ferry public key " + file.string() + " is not a 40-character Z85 CURVE key");
  }
  return key;
}

}  // namespace sluice::ferry
