#include "server/learning/training_data.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace elexirion::learning {

std::string ExampleContentHash(const nlohmann::json& input, const nlohmann::json& expected_output) {
  return ExampleContentHashOfText(input.dump(), expected_output.dump());
}

std::string ExampleContentHashOfText(const std::string& input_json,
                                     const std::string& expected_output_json) {
  // The canonical JSON of {input, expected_output}: nlohmann::json keeps keys sorted, so this
  // is what dump() writes for that object, built without the tree.
  const std::string canonical =
      absl::StrCat("{\"expected_output\":", expected_output_json, ",\"input\":", input_json, "}");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

store::ExampleRecord HarvestedExample(const std::string& dataset, const nlohmann::json& input,
                                      const nlohmann::json& output, const HarvestSource& source) {
  return HarvestedExample(dataset, input.dump(), output.dump(), source);
}

store::ExampleRecord HarvestedExample(const std::string& dataset, const std::string& input_json,
                                      const std::string& output_json, const HarvestSource& source) {
  store::ExampleRecord example;
  example.dataset = dataset;
  example.input_json = input_json;
  example.expected_output_json = output_json;
  example.content_hash = ExampleContentHashOfText(input_json, output_json);
  nlohmann::json metadata = {
      {"source", "successful_execution"},          {"quality_score", source.quality_score},
      {"pipeline_config", source.pipeline_config}, {"pipeline_name", source.pipeline_name},
      {"program_version", source.program_version}, {"execution_id", source.execution_id},
  };
  if (!source.execution_metadata.empty()) {
    metadata["execution_metadata"] = source.execution_metadata;
  }
  example.metadata_json = metadata.dump();
  return example;
}

}  // namespace elexirion::learning
