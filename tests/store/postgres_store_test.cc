// PostgreSQL store: the conformance suite on a real PostgreSQL server this test starts
// (tests/testutil/postgres_server.h), one fresh database per test.
#include "server/store/postgres_store.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/store/store_conformance.h"
#include "tests/testutil/postgres_server.h"

namespace elexirion::store {
namespace {

using storetest::StoreBackend;
using storetest::StoreFactory;
using testutil::PostgresServer;

// One server for the whole binary (initdb takes a second); databases are per test.
PostgresServer* Server() {
  static PostgresServer* server = [] {
    auto started = PostgresServer::Start();
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << started.status();
      return static_cast<PostgresServer*>(nullptr);
    }
    return started->release();
  }();
  return server;
}

class ServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { delete Server(); }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

StoreFactory OpenNewDatabase() {
  if (Server() == nullptr) return nullptr;
  absl::StatusOr<std::string> dsn = Server()->CreateDatabase();
  if (!dsn.ok()) {
    ADD_FAILURE() << dsn.status();
    return nullptr;
  }
  return [dsn = *dsn]() -> std::unique_ptr<Store> {
    PostgresStore::Options options;
    options.dsn = dsn;
    auto store = PostgresStore::Create(options);
    if (!store.ok()) {
      ADD_FAILURE() << store.status();
      return nullptr;
    }
    return *std::move(store);
  };
}

ELEXIRION_INSTANTIATE_STORE_CONFORMANCE(Postgres, (StoreBackend{"Postgres", OpenNewDatabase}));

}  // namespace
}  // namespace elexirion::store
