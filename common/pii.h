// Personal data never reaches logs, metrics or error texts in clear. mask_personal_data()
// finds resident ID numbers (18 or 15 digits, last may be X) and mobile numbers (11 digits
// starting 13-19) and masks them: 440604**********1234 becomes 4406**********1234,
// 13812345678 becomes 138****5678 (also after a +86 country code). Canonical UUIDs are left
// intact.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

std::string mask_personal_data(std::string_view text);

}  // namespace sluice
