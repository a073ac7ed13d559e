// sluicectl in a Catch2 test: run_sluicectl (harness.h), with what it printed kept for the
// report of the next failing check.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "tests/support/harness.h"

namespace sluice::test {

inline int ctl(const Gateway& gw, const std::string& args, std::string& said,
               const std::string& identity = "admin-netadmin") {
  const int rc = run_sluicectl(gw, args, said, identity);
  UNSCOPED_INFO("sluicectl " << args << " -> " << said);
  return rc;
}

}  // namespace sluice::test
