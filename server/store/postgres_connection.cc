#include "server/store/postgres_connection.h"

#include <libpq-fe.h>

#include <charconv>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/common/byte_scan.h"
#include "pqxx/tablewriter"
#include "server/common/json_text.h"
#include "server/store/records.h"

namespace elexirion::store::pg {
namespace {

// Where the password of a DSN is: [begin, end) of its text in the DSN (without quotes) and
// its value (unescaped). Empty when there is none. Key/value form: password=... or
// password='...'; URI form: the part after "user:" in the authority.
struct PasswordSpan {
  size_t begin = 0;
  size_t end = 0;
  std::string value;
};

PasswordSpan FindPassword(absl::string_view dsn) {
  const size_t lead = dsn.size() - absl::StripLeadingAsciiWhitespace(dsn).size();
  absl::string_view s = dsn.substr(lead);
  if (absl::StartsWith(s, "postgresql://") || absl::StartsWith(s, "postgres://")) {
    const size_t authority = s.find("://") + 3;
    const size_t at = s.find('@', authority);
    const size_t slash = s.find('/', authority);
    if (at == absl::string_view::npos || (slash != absl::string_view::npos && slash < at)) {
      return {};
    }
    const size_t colon = s.find(':', authority);
    if (colon == absl::string_view::npos || colon > at || colon + 1 == at) return {};
    return {lead + colon + 1, lead + at, std::string(s.substr(colon + 1, at - colon - 1))};
  }
  size_t pos = 0;
  while ((pos = dsn.find("password", pos)) != absl::string_view::npos) {
    size_t i = pos + 8;
    const bool at_key_start = pos == 0 || absl::ascii_isspace(dsn[pos - 1]);
    pos = i;
    if (!at_key_start) continue;
    while (i < dsn.size() && absl::ascii_isspace(dsn[i])) ++i;
    if (i >= dsn.size() || dsn[i] != '=') continue;
    ++i;
    while (i < dsn.size() && absl::ascii_isspace(dsn[i])) ++i;
    PasswordSpan span;
    if (i < dsn.size() && dsn[i] == '\'') {
      span.begin = ++i;
      for (; i < dsn.size() && dsn[i] != '\''; ++i) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        span.value.push_back(dsn[i]);
      }
    } else {
      span.begin = i;
      for (; i < dsn.size() && !absl::ascii_isspace(dsn[i]); ++i) span.value.push_back(dsn[i]);
    }
    span.end = i;
    return span;
  }
  return {};
}

std::string SqlState(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) return sql->sqlstate();
  return "";
}

std::string QuoteArrayElement(absl::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// The DSN with connect_timeout added unless it has one.
std::string WithConnectTimeout(const std::string& dsn, absl::Duration timeout) {
  if (absl::StrContains(dsn, "connect_timeout")) return dsn;
  const int64_t seconds = std::max<int64_t>(1, absl::ToInt64Seconds(timeout));
  absl::string_view s = absl::StripLeadingAsciiWhitespace(dsn);
  if (absl::StartsWith(s, "postgresql://") || absl::StartsWith(s, "postgres://")) {
    return absl::StrCat(dsn, absl::StrContains(dsn, "?") ? "&" : "?", "connect_timeout=", seconds);
  }
  return absl::StrCat(dsn, " connect_timeout=", seconds);
}

}  // namespace

std::string RedactPassword(absl::string_view dsn, absl::string_view text) {
  const PasswordSpan span = FindPassword(dsn);
  if (span.end == span.begin) return std::string(text);
  const absl::string_view raw = dsn.substr(span.begin, span.end - span.begin);
  std::string out = absl::StrReplaceAll(text, {{raw, "***"}});
  if (!span.value.empty()) out = absl::StrReplaceAll(out, {{span.value, "***"}});
  return out;
}

std::string RedactDsn(absl::string_view dsn) {
  const PasswordSpan span = FindPassword(dsn);
  if (span.end == span.begin) return std::string(dsn);
  return absl::StrCat(dsn.substr(0, span.begin), "***", dsn.substr(span.end));
}

bool IsConnectionError(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  const std::string state = SqlState(e);
  // 08: connection exception; 57P01..57P03: admin/crash shutdown, cannot connect now.
  return absl::StartsWith(state, "08") || absl::StartsWith(state, "57P");
}

bool IsRetryableConflict(const std::exception& e) {
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr ||
      dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
    return true;
  }
  const std::string state = SqlState(e);
  return state == "40001" || state == "40P01" || absl::StrContains(e.what(), "deadlock detected");
}

absl::Status PgErrorStatus(const std::exception& e, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ", absl::StripTrailingAsciiWhitespace(e.what()));
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(
        absl::StrCat(message, " (the connection broke during COMMIT; the outcome is unknown)"));
  }
  if (IsConnectionError(e)) return absl::UnavailableError(message);
  const std::string state = SqlState(e);
  if (state == "23505") return absl::AlreadyExistsError(message);
  if (state == "23503") return absl::FailedPreconditionError(message);
  if (IsRetryableConflict(e)) return absl::AbortedError(message);
  // 23: other integrity constraints; 22: data exceptions (bad encoding, out of range);
  // 54: program limit exceeded (e.g. a value too large for an index row).
  if (absl::StartsWith(state, "23") || absl::StartsWith(state, "22") ||
      absl::StartsWith(state, "54")) {
    return absl::InvalidArgumentError(message);
  }
  if (absl::StartsWith(state, "53")) return absl::ResourceExhaustedError(message);
  if (state == "XX001" || state == "XX002") return absl::DataLossError(message);
  if (state == "57014") return absl::CancelledError(message);
  return absl::InternalError(message);
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string TextArray(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    if (values[i].has_value()) {
      out += QuoteArrayElement(*values[i]);
    } else {
      out += "NULL";
    }
  }
  out.push_back('}');
  return out;
}

std::string Int64Array(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) absl::StrAppend(&out, i > 0 ? "," : "", values[i]);
  out.push_back('}');
  return out;
}

std::string BoolArray(const std::vector<bool>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", values[i] ? "t" : "f");
  }
  out.push_back('}');
  return out;
}

std::string DoubleText(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "0";
  std::string s(buf, end);
  // PostgreSQL spells the specials NaN / Infinity.
  if (s == "nan" || s == "-nan") return "NaN";
  if (s == "inf") return "Infinity";
  if (s == "-inf") return "-Infinity";
  return s;
}

std::string DoubleArray(const std::vector<double>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", DoubleText(values[i]));
  }
  out.push_back('}');
  return out;
}

void AppendCopyField(absl::string_view value, std::string& out) {
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    // Skip words with nothing to escape.
    while (i + 8 <= value.size()) {
      const uint64_t word = bytes::LoadWord(value.data() + i);
      if (bytes::HasByte(word, '\\') || bytes::HasByte(word, '\t') || bytes::HasByte(word, '\n') ||
          bytes::HasByte(word, '\r')) {
        break;
      }
      i += 8;
    }
    if (i >= value.size()) break;
    char escaped;
    switch (value[i]) {
      case '\\':
        escaped = '\\';
        break;
      case '\t':
        escaped = 't';
        break;
      case '\n':
        escaped = 'n';
        break;
      case '\r':
        escaped = 'r';
        break;
      default:
        continue;
    }
    out.append(value.data() + start, i - start);
    out.push_back('\\');
    out.push_back(escaped);
    start = i + 1;
  }
  out.append(value.data() + start, value.size() - start);
}

// tablewriter is deprecated in libpqxx 6; see CopyIn in the header for why it is used.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
CopyIn::CopyIn(pqxx::transaction_base& txn, const std::string& table,
               const std::vector<std::string>& columns)
    : copy_(std::make_unique<pqxx::tablewriter>(txn, table, columns.begin(), columns.end())) {}
CopyIn::~CopyIn() = default;
#pragma GCC diagnostic pop

std::string& CopyIn::NewRow() {
  constexpr size_t kChunkBytes = 1 << 20;
  if (chunk_.size() >= kChunkBytes) {
    copy_->write_raw_line(chunk_);  // adds the newline that ends the last row
    chunk_.clear();
  }
  if (!chunk_.empty()) chunk_.push_back('\n');
  return chunk_;
}

void CopyIn::Complete() {
  if (!chunk_.empty()) copy_->write_raw_line(chunk_);
  chunk_.clear();
  copy_->complete();
}

bool IsStorableText(absl::string_view s) {
  return IsValidUtf8(std::string_view(s.data(), s.size()), /*allow_nul=*/false);
}

std::string Text(const pqxx::field& f) {
  return f.is_null() ? std::string() : std::string(f.c_str(), f.size());
}

std::string Bytes(const pqxx::field& f) {
  return f.is_null() ? std::string() : pqxx::binarystring(f).str();
}

int64_t Int(const pqxx::field& f) { return f.is_null() ? 0 : f.as<int64_t>(); }

double Double(const pqxx::field& f) {
  if (f.is_null()) return 0;
  double v = 0;
  const char* begin = f.c_str();
  auto [ptr, ec] = std::from_chars(begin, begin + f.size(), v);
  if (ec == std::errc() && ptr == begin + f.size()) return v;
  return f.as<double>();  // NaN / Infinity spellings
}

bool Bool(const pqxx::field& f) { return !f.is_null() && f.c_str()[0] == 't'; }

absl::Time TimeOf(const pqxx::field& f) {
  return f.is_null() ? kUnsetTime : absl::FromUnixMicros(f.as<int64_t>());
}

// ---------------------------------------------------------------------------------------
// Connection

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& dsn,
                                                             absl::Duration connect_timeout) {
  try {
    auto conn = std::make_unique<pqxx::connection>(WithConnectTimeout(dsn, connect_timeout));
    return std::unique_ptr<Connection>(new Connection(std::move(conn)));
  } catch (const std::exception& e) {
    // libpq's messages name host and port, never the password; redact anyway in case a
    // malformed DSN is echoed back.
    absl::Status status =
        PgErrorStatus(e, absl::StrCat("cannot connect to PostgreSQL (", RedactDsn(dsn), ")"));
    if (dynamic_cast<const pqxx::broken_connection*>(&e) == nullptr && absl::IsInternal(status)) {
      // pqxx reports a malformed connection string as a plain std::exception-derived error.
      status = absl::InvalidArgumentError(status.message());
    }
    return absl::Status(status.code(), RedactPassword(dsn, status.message()));
  }
}

Connection::~Connection() {
  try {
    conn_->disconnect();
  } catch (...) {
  }
}

const std::string& Connection::Prepared(const std::string& sql) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  // A fresh name per attempt: a failed prepare must not leave a name half registered.
  std::string name = absl::StrCat("s", next_statement_++);
  conn_->prepare(name, sql);
  return prepared_.emplace(sql, std::move(name)).first->second;
}

// ---------------------------------------------------------------------------------------
// ConnectionPool

ConnectionPool::ConnectionPool(Options options)
    : options_(std::move(options)), redacted_dsn_(RedactDsn(options_.dsn)) {}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(Options options) {
  if (options.dsn.empty()) return absl::InvalidArgumentError("PostgreSQL DSN is empty");
  if (options.size < 1) return absl::InvalidArgumentError("pool size must be >= 1");
  // A malformed connection string is the caller's mistake, not an unreachable server.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? parse_error : "cannot be parsed";
    if (parse_error != nullptr) PQfreemem(parse_error);
    return absl::InvalidArgumentError(RedactPassword(
        options.dsn,
        absl::StrCat("malformed PostgreSQL connection string (", RedactDsn(options.dsn),
                     "): ", absl::StripTrailingAsciiWhitespace(why))));
  }
  PQconninfoFree(parsed);
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool(std::move(options)));
  absl::StatusOr<std::unique_ptr<Connection>> first =
      Connection::Open(pool->options_.dsn, pool->options_.connect_timeout);
  if (!first.ok()) return first.status();
  absl::MutexLock lock(&pool->mu_);
  pool->idle_.push_back(*std::move(first));
  pool->open_ = 1;
  return pool;
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.size;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&available), options_.acquire_timeout)) {
      return absl::UnavailableError(absl::StrCat("no free PostgreSQL connection within ",
                                                 absl::FormatDuration(options_.acquire_timeout),
                                                 " (pool size ", options_.size, ")"));
    }
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn), /*reused=*/true);
    }
    ++open_;
  }
  // Connect outside the lock: it takes a network round trip or a timeout.
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Open(options_.dsn, options_.connect_timeout);
  if (!conn.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return conn.status();
  }
  return Lease(this, *std::move(conn), /*reused=*/false);
}

void ConnectionPool::Return(std::unique_ptr<Connection> conn, bool discard) {
  std::vector<std::unique_ptr<Connection>> closing;
  {
    absl::MutexLock lock(&mu_);
    if (!discard) {
      idle_.push_back(std::move(conn));
      return;
    }
    closing.push_back(std::move(conn));
    for (auto& c : idle_) closing.push_back(std::move(c));
    idle_.clear();
    open_ -= static_cast<int>(closing.size());
  }
  // `closing` disconnects here, outside the lock.
}

ConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Return(std::move(conn_), discard_);
}

}  // namespace elexirion::store::pg
