#include "common/pii.h"

#include "common/random.h"

namespace sluice {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// An 11-digit run that is a mainland mobile number (13x..19x).
bool is_mobile(std::string_view run) { return run[0] == '1' && run[1] >= '3' && run[1] <= '9'; }

// True if some 11 consecutive digits of `run` are a mobile number.
bool contains_mobile(std::string_view run) {
  for (std::size_t k = 0; k + 11 <= run.size(); ++k) {
    if (is_mobile(run.substr(k, 11))) return true;
  }
  return false;
}

// Length of a canonical UUID starting at text[i], or 0.
std::size_t uuid_at(std::string_view text, std::size_t i) {
  if (i + 36 > text.size()) {
    return 0;
  }
  std::string_view candidate = text.substr(i, 36);
  bool lower_ok = true;
  for (char c : candidate) {
    if (c >= 'A' && c <= 'F') {
      lower_ok = false;
    }
  }
  if (!lower_ok) {
    std::string lowered(candidate);
    for (char& c : lowered) {
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    }
    return is_uuid(lowered) ? 36 : 0;
  }
  return is_uuid(candidate) ? 36 : 0;
}

}  // namespace

std::string mask_personal_data(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (std::size_t n = uuid_at(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    if (!is_digit(text[i])) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && is_digit(text[j])) {
      ++j;
    }
    std::size_t digits = j - i;
    bool x_suffix = digits >= 14 && j < text.size() && (text[j] == 'X' || text[j] == 'x');
    if (x_suffix) {
      ++j;
    }
    std::size_t len = j - i;
    std::string_view run = text.substr(i, len);
    if (len >= 15) {
      // Long enough to hold an 18- or 15-character ID number anywhere inside it: an ID with
      // a digit too many, or one run together with a phone number, is masked all the same.
      out.append(run.substr(0, 4));
      out.append(len - 8, '*');
      out.append(run.substr(len - 4));
    } else if (len == 13 && run.starts_with("86") && is_mobile(run.substr(2))) {
      out.append(run.substr(0, 5));  // +86 country code, written without a separator
      out.append("****");
      out.append(run.substr(9));
    } else if (len >= 11 && contains_mobile(run)) {
      out.append(run.substr(0, 3));
      out.append(len - 7, '*');
      out.append(run.substr(len - 4));
    } else {
      out.append(run);
    }
    i = j;
  }
  return out;
}

}  // namespace sluice
