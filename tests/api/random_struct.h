// Random google.protobuf.Struct values for the tests that compare two ways of turning one into
// JSON: strings with control characters, 2- and 4-byte UTF-8; numbers integral and not;
// nested structs and lists a few levels deep.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "google/protobuf/struct.pb.h"

namespace elexirion::api::testing {

inline std::string RandomString(std::mt19937& rng) {
  std::string s;
  const int n = static_cast<int>(rng() % 10);
  for (int i = 0; i < n; ++i) {
    switch (rng() % 5) {
      case 0:
        s.push_back(static_cast<char>(rng() % 0x20));  // control characters
        break;
      case 1:
        s += "\xc3\xa9";  // é
        break;
      case 2:
        s += "\xf0\x9f\x98\x80";  // an emoji (4 bytes)
        break;
      default:
        s.push_back(static_cast<char>(0x20 + rng() % 0x5f));
    }
  }
  return s;
}

inline void FillValue(std::mt19937& rng, google::protobuf::Value* v, int depth) {
  switch (rng() % (depth < 4 ? 7 : 5)) {
    case 0:
      v->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case 1:
      v->set_bool_value(rng() % 2 == 0);
      break;
    case 2:
      v->set_number_value(static_cast<double>(static_cast<int32_t>(rng())) /
                          (rng() % 3 == 0 ? 1.0 : 1000.0));
      break;
    case 3:
    case 4:
      v->set_string_value(RandomString(rng));
      break;
    case 5:
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
        FillValue(rng, &(*v->mutable_struct_value()->mutable_fields())[RandomString(rng)],
                  depth + 1);
      }
      break;
    default:
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
        FillValue(rng, v->mutable_list_value()->add_values(), depth + 1);
      }
  }
}

inline google::protobuf::Struct RandomStruct(std::mt19937& rng) {
  google::protobuf::Struct value;
  for (int i = static_cast<int>(rng() % 6); i > 0; --i) {
    FillValue(rng, &(*value.mutable_fields())[RandomString(rng)], 0);
  }
  return value;
}

}  // namespace elexirion::api::testing
