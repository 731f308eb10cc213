// Conformance suite for Store implementations: every backend (SQLite, later PostgreSQL) runs these
// same tests. A backend's test file only instantiates it:
//
//   StoreBackend MyBackend() {
//     return {"Postgres", [] { /* create an empty database */ return StoreFactory(...); }};
//   }
//   ELEXIRION_INSTANTIATE_STORE_CONFORMANCE(Postgres, MyBackend());
//
// and links `elexirion_store_conformance`.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/store/store.h"

namespace elexirion::store::storetest {

// Opens a new Store on one database. Every call opens another Store on the SAME database: tests
// close and reopen (durability) or run two stores side by side (several replicas or processes).
// Returns nullptr (after an ADD_FAILURE) when opening fails.
using StoreFactory = std::function<std::unique_ptr<Store>()>;

struct StoreBackend {
  // Test name suffix: letters, digits and '_'.
  std::string name;
  // Creates a fresh, empty database and returns the factory that opens it. Called once per test;
  // the backend cleans its databases up (e.g. in its test environment).
  std::function<StoreFactory()> new_database;
};

class StoreConformanceTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store &store() { return *store_; }
  // Closes the current store and opens a new one on the same database.
  void Reopen();

  StoreFactory open_;
  std::unique_ptr<Store> store_;
};

// Referencing this pulls the suite's object file out of the static library into the test binary
// (otherwise the linker drops it, with all its TEST_Ps).
bool StoreConformanceSuiteLinked();

}  // namespace elexirion::store::storetest

// gtest pastes the suite name into identifiers, so it must be unqualified here.
#define ELEXIRION_INSTANTIATE_STORE_CONFORMANCE(prefix, backend)                               \
  using ::elexirion::store::storetest::StoreConformanceTest;                                   \
  INSTANTIATE_TEST_SUITE_P(                                                                    \
      prefix, StoreConformanceTest, ::testing::Values(backend),                                \
      [](const ::testing::TestParamInfo< ::elexirion::store::storetest::StoreBackend> &info) { \
        return info.param.name;                                                                \
      });                                                                                      \
  [[maybe_unused]] static const bool elx_store_conformance_linked_##prefix =                   \
      ::elexirion::store::storetest::StoreConformanceSuiteLinked()
