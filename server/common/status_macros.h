// Status propagation macros. Abseil 20220623 ships none, so these are ours.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ELX_STATUS_CONCAT_INNER_(a, b) a##b
#define ELX_STATUS_CONCAT_(a, b) ELX_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status elx_status_ = (expr);                 \
    if (!elx_status_.ok()) return elx_status_;           \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, MakeX());` assigns the value of a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ELX_ASSIGN_OR_RETURN_IMPL_(ELX_STATUS_CONCAT_(elx_statusor_, __LINE__), lhs, expr)

#define ELX_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()
