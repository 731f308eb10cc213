#include "server/optimizer/optimizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/optimizer/optimizers.h"

namespace elexirion::optimizer {
namespace {

const std::map<std::string, std::string>& Aliases() {
  static const auto* aliases = new std::map<std::string, std::string>{
      {"LabeledFewShot", "labeled_few_shot"},
      {"BootstrapFewShot", "bootstrap_few_shot"},
      {"BootstrapFewShotWithRandomSearch", "bootstrap_random_search"},
      {"BootstrapRS", "bootstrap_random_search"},
      {"random_search", "bootstrap_random_search"},
      {"COPRO", "copro"},
      {"MIPROv2", "miprov2"},
      {"mipro_v2", "miprov2"},
      {"GEPA", "gepa"},
      {"SIMBA", "simba"},
  };
  return *aliases;
}

}  // namespace

OptimizerRegistry& OptimizerRegistry::Global() {
  static OptimizerRegistry* registry = [] {
    auto* r = new OptimizerRegistry();
    RegisterBuiltinOptimizers(*r);
    return r;
  }();
  return *registry;
}

absl::Status OptimizerRegistry::Register(const std::string& name, OptimizerFactory factory) {
  absl::MutexLock lock(&mu_);
  if (factories_.count(name) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("optimizer \"", name, "\" is already registered"));
  }
  factories_[name] = std::move(factory);
  return absl::OkStatus();
}

std::string OptimizerRegistry::Canonical(const std::string& name) const {
  auto it = Aliases().find(name);
  return it == Aliases().end() ? name : it->second;
}

absl::StatusOr<std::unique_ptr<Optimizer>> OptimizerRegistry::Create(const std::string& name,
                                                                     const ojson& params) const {
  const std::string canonical = Canonical(name);
  OptimizerFactory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(canonical);
    if (it == factories_.end()) {
      std::vector<std::string> names;
      for (const auto& [n, f] : factories_) names.push_back(n);
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer: unknown optimizer \"", name, "\" (known: ", absl::StrJoin(names, ", "), ")"));
    }
    factory = it->second;
  }
  if (!params.is_null() && !params.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.", canonical, ": parameters must be an object"));
  }
  return factory(params.is_null() ? ojson::object() : params);
}

std::vector<std::string> OptimizerRegistry::Names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [n, f] : factories_) names.push_back(n);
  return names;
}

ParamReader::ParamReader(const ojson& params, std::string where)
    : params_(params.is_object() ? params : ojson::object()), where_(std::move(where)) {}

absl::StatusOr<int> ParamReader::Int(const char* key, int fallback, int min_value) {
  read_.push_back(key);
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() &&
      !(it->is_number_float() && it->get<double>() == static_cast<int64_t>(it->get<double>()))) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be an integer"));
  }
  const int64_t v = it->get<int64_t>();
  if (v < min_value || v > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be >= ", min_value));
  }
  return static_cast<int>(v);
}

absl::StatusOr<double> ParamReader::Double(const char* key, double fallback) {
  read_.push_back(key);
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be a number"));
  }
  return it->get<double>();
}

absl::StatusOr<std::optional<double>> ParamReader::OptionalDouble(const char* key) {
  read_.push_back(key);
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be a number"));
  }
  return std::optional<double>(it->get<double>());
}

absl::StatusOr<bool> ParamReader::Bool(const char* key, bool fallback) {
  read_.push_back(key);
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be true or false"));
  }
  return it->get<bool>();
}

absl::StatusOr<std::string> ParamReader::String(const char* key, const std::string& fallback) {
  read_.push_back(key);
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": must be a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<LmSettings> ParamReader::Lm(const char* key) {
  read_.push_back(key);
  LmSettings lm;
  auto it = params_.find(key);
  if (it == params_.end() || it->is_null()) return lm;
  const std::string at = absl::StrCat(where_, ".", key);
  if (!it->is_object()) return absl::InvalidArgumentError(absl::StrCat(at, ": must be an object"));
  for (auto f = it->begin(); f != it->end(); ++f) {
    if (f.key() == "provider" && f->is_string()) {
      lm.provider = f->get<std::string>();
    } else if (f.key() == "model" && f->is_string()) {
      lm.model = f->get<std::string>();
    } else if (f.key() == "temperature" && f->is_number()) {
      const double t = f->get<double>();
      if (t < 0 || t > 2)
        return absl::InvalidArgumentError(absl::StrCat(at, ".temperature: must be within [0, 2]"));
      lm.temperature = t;
    } else if (f.key() == "max_tokens" && f->is_number_integer()) {
      const int64_t m = f->get<int64_t>();
      if (m < 1 || m > 200000)
        return absl::InvalidArgumentError(
            absl::StrCat(at, ".max_tokens: must be within 1..200000"));
      lm.max_tokens = static_cast<int>(m);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".", f.key(), ": unknown or mistyped key"));
    }
  }
  return lm;
}

absl::Status ParamReader::Finish() const {
  for (auto it = params_.begin(); it != params_.end(); ++it) {
    if (std::find(read_.begin(), read_.end(), it.key()) == read_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where_, ".", it.key(), ": unknown parameter"));
    }
  }
  return absl::OkStatus();
}

}  // namespace elexirion::optimizer
