// ProgressJournal: the memo of finished units of work behind checkpoints and resume (see
// events.h). Keys are content hashes of a unit's inputs (program state, examples, options), so
// a replayed run finds exactly the units it is about to redo.
//
// Thread safety: thread safe.
#pragma once

#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/optimizer/events.h"

namespace elexirion::optimizer {

class ProgressJournal {
 public:
  // `resume_from` may be null; it is used only when its fingerprint matches. `sink` may be
  // null (nothing is saved).
  ProgressJournal(std::string fingerprint, const nlohmann::ordered_json* resume_from,
                  CheckpointSink* sink);

  std::optional<nlohmann::ordered_json> Lookup(const std::string& key) const;
  // Records a finished unit and saves the document.
  void Record(const std::string& key, nlohmann::ordered_json value);

  nlohmann::ordered_json Document() const;
  // Units taken from resume_from so far.
  int resumed_units() const;
  bool resumed() const { return resumed_; }

 private:
  const std::string fingerprint_;
  CheckpointSink* const sink_;
  bool resumed_ = false;
  absl::Mutex save_mu_;
  mutable absl::Mutex mu_;
  nlohmann::ordered_json units_ ABSL_GUARDED_BY(mu_) = nlohmann::ordered_json::object();
  mutable int hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace elexirion::optimizer
