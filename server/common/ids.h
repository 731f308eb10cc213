// Random identifiers.
#pragma once

#include <string>

namespace elexirion {

// A random lowercase hex id of `length` characters from a CSPRNG-seeded generator.
std::string RandomHexId(int length = 16);

}  // namespace elexirion
