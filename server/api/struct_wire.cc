#include "server/api/struct_wire.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "server/common/json_text.h"
#include "server/common/status_macros.h"

namespace elexirion::api {
namespace {

// Wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLen = 2;
constexpr int kStartGroup = 3;
constexpr int kEndGroup = 4;
constexpr int kFixed32 = 5;

absl::Status Malformed() {
  return absl::InvalidArgumentError("malformed: not a google.protobuf.Struct");
}
absl::Status TooDeep() {
  return absl::InvalidArgumentError("nested too deeply for protobuf (recursion limit 100)");
}
absl::Status NotUtf8() { return absl::InvalidArgumentError("a key or string is not UTF-8"); }

// Protobuf wire reading over one message's bytes, with protobuf's own limits.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ == end_; }

  // Up to `max_bytes` (10: a 64-bit value); bits past 64 are dropped, as protobuf does.
  bool Varint(uint64_t* value, int max_bytes = 10) {
    uint64_t result = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (p_ == end_) return false;
      const uint8_t byte = static_cast<uint8_t>(*p_++);
      result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }
  // A tag: a varint of at most 5 bytes whose value protobuf truncates to 32 bits; field
  // number above 0, a known wire type.
  bool Tag(uint32_t* field, int* wire_type) {
    uint64_t tag = 0;
    if (!Varint(&tag, 5)) return false;
    tag &= 0xffffffffu;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<int>(tag & 7);
    return *field != 0 && *wire_type <= kFixed32;
  }
  bool Fixed64(uint64_t* value) {
    if (end_ - p_ < 8) return false;
    std::memcpy(value, p_, 8);  // little-endian on every platform we build for
    p_ += 8;
    return true;
  }
  // A length: at most 5 bytes and below 2 GiB, as protobuf reads sizes.
  bool Len(std::string_view* value) {
    uint64_t size = 0;
    if (!Varint(&size, 5) || size > 0x7fffffffu - 16 ||
        size > static_cast<uint64_t>(end_ - p_)) {
      return false;
    }
    *value = std::string_view(p_, static_cast<size_t>(size));
    p_ += size;
    return true;
  }
  // Skips an unknown field whose tag was just read; a group counts as a nested message.
  bool Skip(uint32_t field, int wire_type, int budget) {
    uint64_t ignored = 0;
    std::string_view bytes;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Fixed64(&ignored);
      case kLen:
        return Len(&bytes);
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      case kStartGroup: {
        if (--budget < 0) return false;
        while (true) {
          uint32_t f = 0;
          int wt = 0;
          if (!Tag(&f, &wt)) return false;
          if (wt == kEndGroup) return f == field;
          if (!Skip(f, wt, budget)) return false;
        }
      }
      default:  // an end-group tag outside its group
        return false;
    }
  }

 private:
  const char* p_;
  const char* end_;
};

// A parsed value: strings point into the request's bytes; nothing is copied until the JSON
// text is written.
struct WireField;
struct WireValue {
  enum Kind { kNull, kNumber, kString, kBool, kStruct, kList } kind = kNull;
  double number = 0;
  bool boolean = false;
  std::string_view text;
  std::vector<WireField> fields;  // kStruct, in wire order (a later repeated key wins)
  std::vector<WireValue> items;   // kList
};
struct WireField {
  std::string_view key;
  WireValue value;
};

// Walks the fields of one message (at nesting `budget`): `take(field, wire_type, reader)`
// reads a field it knows and returns true; the others are skipped as unknown.
template <typename Take>
absl::Status ForEachField(std::string_view bytes, int budget, Take take) {
  WireReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0;
    int wire_type = 0;
    if (!reader.Tag(&field, &wire_type)) return Malformed();
    ASSIGN_OR_RETURN(const bool taken, take(field, wire_type, reader));
    if (!taken && !reader.Skip(field, wire_type, budget)) return Malformed();
  }
  return absl::OkStatus();
}

// A length-delimited message inside one at `budget`: its bytes and its own budget, which
// protobuf refuses below 0.
absl::Status ReadNested(WireReader& reader, int budget, std::string_view* bytes,
                        int* nested_budget) {
  if (!reader.Len(bytes)) return Malformed();
  *nested_budget = budget - 1;
  return *nested_budget < 0 ? TooDeep() : absl::OkStatus();
}

absl::Status ParseValue(std::string_view bytes, int budget, WireValue* out);

// Struct { map<string, Value> fields = 1; } merged into `fields`. A map entry is
// { key = 1; value = 2 }: occurrences of the value merge, a repeated key: the last wins.
absl::Status ParseStruct(std::string_view bytes, int budget, std::vector<WireField>* fields) {
  return ForEachField(bytes, budget, [&](uint32_t field, int wire_type,
                                         WireReader& reader) -> absl::StatusOr<bool> {
    if (field != 1 || wire_type != kLen) return false;
    std::string_view entry_bytes;
    int entry_budget = 0;
    RETURN_IF_ERROR(ReadNested(reader, budget, &entry_bytes, &entry_budget));
    WireField& entry = fields->emplace_back();
    RETURN_IF_ERROR(ForEachField(entry_bytes, entry_budget, [&](uint32_t f, int wt,
                                                                WireReader& entry_reader)
                                                                -> absl::StatusOr<bool> {
      if (f == 1 && wt == kLen) {
        if (!entry_reader.Len(&entry.key)) return Malformed();
        if (!IsValidUtf8(entry.key)) return NotUtf8();
        return true;
      }
      if (f == 2 && wt == kLen) {
        std::string_view value_bytes;
        int value_budget = 0;
        RETURN_IF_ERROR(ReadNested(entry_reader, entry_budget, &value_bytes, &value_budget));
        RETURN_IF_ERROR(ParseValue(value_bytes, value_budget, &entry.value));
        return true;
      }
      return false;
    }));
    return true;
  });
}

// Value { oneof kind { NullValue null_value = 1; double number_value = 2;
// string string_value = 3; bool bool_value = 4; Struct struct_value = 5;
// ListValue list_value = 6; } } merged into `out`: a scalar member replaces the value, a
// message member merges into the same member and replaces any other.
absl::Status ParseValue(std::string_view bytes, int budget, WireValue* out) {
  const auto becomes = [out](WireValue::Kind kind) {
    if (out->kind == kind) return;
    out->kind = kind;
    out->fields.clear();
    out->items.clear();
  };
  return ForEachField(bytes, budget, [&](uint32_t field, int wire_type,
                                         WireReader& reader) -> absl::StatusOr<bool> {
    if (field == 1 && wire_type == kVarint) {
      uint64_t ignored = 0;
      if (!reader.Varint(&ignored)) return Malformed();
      becomes(WireValue::kNull);
    } else if (field == 2 && wire_type == kFixed64) {
      uint64_t bits = 0;
      if (!reader.Fixed64(&bits)) return Malformed();
      becomes(WireValue::kNumber);
      std::memcpy(&out->number, &bits, sizeof(bits));
    } else if (field == 3 && wire_type == kLen) {
      std::string_view text;
      if (!reader.Len(&text)) return Malformed();
      if (!IsValidUtf8(text)) return NotUtf8();
      becomes(WireValue::kString);
      out->text = text;
    } else if (field == 4 && wire_type == kVarint) {
      uint64_t v = 0;
      if (!reader.Varint(&v)) return Malformed();
      becomes(WireValue::kBool);
      out->boolean = v != 0;
    } else if (field == 5 && wire_type == kLen) {
      std::string_view nested;
      int nested_budget = 0;
      RETURN_IF_ERROR(ReadNested(reader, budget, &nested, &nested_budget));
      becomes(WireValue::kStruct);
      RETURN_IF_ERROR(ParseStruct(nested, nested_budget, &out->fields));
    } else if (field == 6 && wire_type == kLen) {
      // ListValue { repeated Value values = 1; }
      std::string_view nested;
      int list_budget = 0;
      RETURN_IF_ERROR(ReadNested(reader, budget, &nested, &list_budget));
      becomes(WireValue::kList);
      RETURN_IF_ERROR(ForEachField(nested, list_budget, [&](uint32_t f, int wt,
                                                            WireReader& list)
                                                            -> absl::StatusOr<bool> {
        if (f != 1 || wt != kLen) return false;
        std::string_view item;
        int item_budget = 0;
        RETURN_IF_ERROR(ReadNested(list, list_budget, &item, &item_budget));
        RETURN_IF_ERROR(ParseValue(item, item_budget, &out->items.emplace_back()));
        return true;
      }));
    } else {
      return false;
    }
    return true;
  });
}

// Writing mirrors StructToJsonText (proto_json.cc): keys sorted, the same depth rule.
absl::Status AppendValue(const WireValue& value, int depth, std::string* out);

absl::Status AppendStruct(const std::vector<WireField>& fields, int depth, std::string* out) {
  // Sorted by key; among equal keys the last in wire order is the map's value.
  std::vector<const WireField*> sorted;
  sorted.reserve(fields.size());
  for (const WireField& f : fields) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const WireField* a, const WireField* b) { return a->key < b->key; });
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i + 1 < sorted.size() && sorted[i + 1]->key == sorted[i]->key) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendJsonQuoted(sorted[i]->key, out);
    out->push_back(':');
    RETURN_IF_ERROR(AppendValue(sorted[i]->value, depth + 1, out));
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status AppendValue(const WireValue& value, int depth, std::string* out) {
  if (depth > 100) return absl::InvalidArgumentError("nested deeper than 100 levels");
  switch (value.kind) {
    case WireValue::kNull:
      out->append("null");
      return absl::OkStatus();
    case WireValue::kNumber:
      if (!AppendJsonNumber(value.number, out)) {
        return absl::InvalidArgumentError("numbers must be finite");
      }
      return absl::OkStatus();
    case WireValue::kString:
      AppendJsonQuoted(value.text, out);
      return absl::OkStatus();
    case WireValue::kBool:
      out->append(value.boolean ? "true" : "false");
      return absl::OkStatus();
    case WireValue::kStruct:
      return AppendStruct(value.fields, depth, out);
    case WireValue::kList: {
      out->push_back('[');
      for (size_t i = 0; i < value.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        RETURN_IF_ERROR(AppendValue(value.items[i], depth + 1, out));
      }
      out->push_back(']');
      return absl::OkStatus();
    }
  }
  out->append("null");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> StructWireToJsonText(
    const google::protobuf::RepeatedPtrField<std::string>& pieces, int depth_budget) {
  std::vector<WireField> fields;
  for (const std::string& piece : pieces) {
    RETURN_IF_ERROR(ParseStruct(piece, depth_budget, &fields));
  }
  std::string out;
  out.reserve(256);
  RETURN_IF_ERROR(AppendStruct(fields, 0, &out));
  return out;
}

}  // namespace elexirion::api
