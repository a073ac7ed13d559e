// Personal data never reaches logs, metrics or error texts in clear. mask_personal_data()
// masks every digit run that could hold a resident ID number (15 or more digits, the last may
// be X) or contains a mobile number (11 digits starting 13-19): 440604199001011234 becomes
// 4406**********1234, 13812345678 becomes 138****5678 (also after a +86 country code), and an
// ID with a digit too many or run together with a phone number is masked whole. Canonical
// UUIDs are left intact.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

std::string mask_personal_data(std::string_view text);

}  // namespace sluice
