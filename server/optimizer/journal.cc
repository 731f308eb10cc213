#include "server/optimizer/journal.h"

namespace elexirion::optimizer {

namespace {
constexpr char kFormat[] = "elexirion.optimizer.checkpoint/1";
}  // namespace

ProgressJournal::ProgressJournal(std::string fingerprint, const nlohmann::ordered_json* resume_from,
                                 CheckpointSink* sink)
    : fingerprint_(std::move(fingerprint)), sink_(sink) {
  if (resume_from != nullptr && resume_from->is_object() &&
      resume_from->value("format", "") == kFormat &&
      resume_from->value("fingerprint", "") == fingerprint_) {
    auto units = resume_from->find("units");
    if (units != resume_from->end() && units->is_object()) {
      absl::MutexLock lock(&mu_);
      units_ = *units;
      resumed_ = true;
    }
  }
}

std::optional<nlohmann::ordered_json> ProgressJournal::Lookup(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(key);
  if (it == units_.end()) return std::nullopt;
  ++hits_;
  return *it;
}

void ProgressJournal::Record(const std::string& key, nlohmann::ordered_json value) {
  {
    absl::MutexLock lock(&mu_);
    units_[key] = std::move(value);
  }
  if (sink_ == nullptr) return;
  // Saves are serialized so a newer document is never overwritten by an older one.
  absl::MutexLock save_lock(&save_mu_);
  sink_->Save(Document());
}

nlohmann::ordered_json ProgressJournal::Document() const {
  absl::MutexLock lock(&mu_);
  return nlohmann::ordered_json{
      {"format", kFormat}, {"fingerprint", fingerprint_}, {"units", units_}};
}

int ProgressJournal::resumed_units() const {
  absl::MutexLock lock(&mu_);
  return resumed_ ? hits_ : 0;
}

}  // namespace elexirion::optimizer
