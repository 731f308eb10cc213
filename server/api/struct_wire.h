// google.protobuf.Struct straight from its wire bytes to JSON text.
//
// RecordExecutions is the telemetry hot path: parsing a record's three Structs into protobuf
// maps and then walking the maps to JSON took about a third of the server's CPU per record.
// Its handler parses the request with the Struct fields left as bytes (record_wire.proto) and
// converts each here, in one pass, to the text StructToJsonText would give for the Struct
// protobuf would parse from the same bytes: the same keys (a repeated key: the last wins),
// oneof and merge rules, UTF-8 and nesting checks, number forms and escapes.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace elexirion::api {

// `pieces`: every occurrence of the Struct field in its message, in wire order (protobuf
// merges them); none is an empty object. `depth_budget`: nested messages protobuf would still
// allow below the Struct (its recursion limit 100 less the messages around it), so that what
// protobuf refuses as too deep is refused here too. INVALID_ARGUMENT for bytes protobuf would
// not parse as a Struct, strings that are not UTF-8, numbers that are not finite.
absl::StatusOr<std::string> StructWireToJsonText(
    const google::protobuf::RepeatedPtrField<std::string>& pieces, int depth_budget);

}  // namespace elexirion::api
