#include "tracemark/service/job_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tracemark/base/status_macros.h"

namespace tracemark::service {
namespace {

// PRAGMA application_id ("TMK1") and PRAGMA user_version of the schema below.
constexpr int64_t kApplicationId = 0x544d4b31;
constexpr int64_t kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 10000;
constexpr int kMaxIdAttempts = 16;

constexpr const char* kSchema = R"sql(
CREATE TABLE jobs (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  request_id TEXT NOT NULL,
  label TEXT NOT NULL,
  state INTEGER NOT NULL,
  spec BLOB NOT NULL,
  result BLOB NOT NULL DEFAULT x'',
  report BLOB NOT NULL DEFAULT x'',
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_by_request ON jobs (owner, request_id) WHERE request_id <> '';
CREATE INDEX jobs_by_state ON jobs (state, sequence);
CREATE INDEX jobs_by_owner ON jobs (owner, sequence);
)sql";

// Column lists in the order ReadJob expects; List leaves out result and report.
constexpr const char* kJobColumns =
    "sequence, id, owner, request_id, label, state, spec, result, report, error, created_ms, "
    "started_ms, finished_ms, attempts, cancel_requested";
constexpr const char* kListColumns =
    "sequence, id, owner, request_id, label, state, spec, x'', x'', error, created_ms, "
    "started_ms, finished_ms, attempts, cancel_requested";

// Debian's Abseil has its own string_view.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  const std::string message =
      absl::StrCat(context, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(message);
    case SQLITE_NOTADB:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status Exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, sql);
  return absl::OkStatus();
}

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, absl::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, absl::StrCat("preparing ", sql));
    return Statement(db, stmt);
  }

  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  absl::Status BindText(int index, std::string_view value) {
    return Check(sqlite3_bind_text64(stmt_, index, NonNull(value), value.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8));
  }
  absl::Status BindBlob(int index, std::string_view value) {
    return Check(sqlite3_bind_blob64(stmt_, index, NonNull(value), value.size(), SQLITE_TRANSIENT));
  }
  absl::Status BindInt(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }

  // True with a row to read, false when done.
  absl::StatusOr<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }

  // Steps to the end, for a statement that returns no rows.
  absl::Status Run() {
    for (;;) {
      TRACEMARK_ASSIGN_OR_RETURN(bool row, Step());
      if (!row) return absl::OkStatus();
    }
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return std::string();
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  // A null pointer would bind SQL NULL instead of an empty string.
  static const char* NonNull(std::string_view value) {
    return value.data() != nullptr ? value.data() : "";
  }
  absl::Status Check(int rc) {
    if (rc != SQLITE_OK) return SqliteError(db_, rc, sqlite3_sql(stmt_));
    return absl::OkStatus();
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE (the write lock up front, waiting out other writers); rolled back unless
// committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  absl::Status Begin() { return Exec(db_, "BEGIN IMMEDIATE"); }
  absl::Status Commit() { return Exec(db_, "COMMIT"); }

 private:
  sqlite3* db_;
};

bool IsValidState(int64_t s) {
  return s >= static_cast<int64_t>(JobState::kQueued) &&
         s <= static_cast<int64_t>(JobState::kCancelled);
}

std::string NewJobId() {
  uint64_t bits = 0;
  randombytes_buf(&bits, sizeof(bits));
  return absl::StrCat("scan-", absl::Hex(bits, absl::kZeroPad16));
}

// Reads a row selected with kJobColumns or kListColumns.
absl::StatusOr<JobRecord> ReadJob(const Statement& stmt) {
  JobRecord job;
  job.sequence = static_cast<uint64_t>(stmt.Int(0));
  job.id = stmt.Bytes(1);
  job.owner = stmt.Bytes(2);
  job.request_id = stmt.Bytes(3);
  job.label = stmt.Bytes(4);
  const int64_t state = stmt.Int(5);
  if (!IsValidState(state)) {
    return absl::InternalError(absl::StrCat("job ", job.id, " has an invalid state ", state));
  }
  job.state = static_cast<JobState>(state);
  job.spec = stmt.Bytes(6);
  job.result = stmt.Bytes(7);
  job.report = stmt.Bytes(8);
  job.error = stmt.Bytes(9);
  job.created_ms = stmt.Int(10);
  job.started_ms = stmt.Int(11);
  job.finished_ms = stmt.Int(12);
  job.attempts = static_cast<uint32_t>(stmt.Int(13));
  job.cancel_requested = stmt.Int(14) != 0;
  return job;
}

// Steps `stmt` once: the job it selects, or nullopt when none.
absl::StatusOr<std::optional<JobRecord>> ReadOptionalJob(Statement& stmt) {
  TRACEMARK_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::nullopt;
  TRACEMARK_ASSIGN_OR_RETURN(JobRecord job, ReadJob(stmt));
  return job;
}

absl::StatusOr<std::optional<JobRecord>> FindById(sqlite3* db, std::string_view id) {
  TRACEMARK_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?1")));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(1, id));
  return ReadOptionalJob(stmt);
}

absl::StatusOr<JobRecord> GetById(sqlite3* db, std::string_view id) {
  TRACEMARK_ASSIGN_OR_RETURN(std::optional<JobRecord> job, FindById(db, id));
  if (!job.has_value()) return absl::NotFoundError(absl::StrCat("no job ", AsAbsl(id)));
  return *std::move(job);
}

absl::StatusOr<std::optional<JobRecord>> FindByRequest(sqlite3* db, std::string_view owner,
                                                       std::string_view request_id) {
  TRACEMARK_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db, absl::StrCat("SELECT ", kJobColumns,
                                          " FROM jobs WHERE owner = ?1 AND request_id = ?2 AND "
                                          "request_id <> ''")));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(1, owner));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(2, request_id));
  return ReadOptionalJob(stmt);
}

// Inserts `job` as queued under `id`; false (nothing inserted) when `id` or its
// (owner, request_id) is taken.
absl::StatusOr<bool> InsertJob(sqlite3* db, std::string_view id, const JobRecord& job) {
  TRACEMARK_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db,
                         "INSERT INTO jobs (id, owner, request_id, label, state, spec, created_ms) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(1, id));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(2, job.owner));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(3, job.request_id));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindText(4, job.label));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(5, static_cast<int64_t>(JobState::kQueued)));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindBlob(6, job.spec));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(7, job.created_ms));
  TRACEMARK_RETURN_IF_ERROR(stmt.Run());
  return sqlite3_changes(db) > 0;
}

absl::StatusOr<CreatedJob> CreateLocked(sqlite3* db, JobRecord job) {
  Transaction txn(db);
  TRACEMARK_RETURN_IF_ERROR(txn.Begin());
  for (int attempt = 0; attempt < kMaxIdAttempts; ++attempt) {
    if (!job.request_id.empty()) {
      TRACEMARK_ASSIGN_OR_RETURN(std::optional<JobRecord> existing,
                                 FindByRequest(db, job.owner, job.request_id));
      if (existing.has_value()) return CreatedJob{*std::move(existing), false};
    }
    std::string id = NewJobId();
    TRACEMARK_ASSIGN_OR_RETURN(bool inserted, InsertJob(db, id, job));
    if (!inserted) continue;  // an id collision
    CreatedJob created{JobRecord{}, true};
    created.job.id = std::move(id);
    created.job.owner = std::move(job.owner);
    created.job.request_id = std::move(job.request_id);
    created.job.label = std::move(job.label);
    created.job.spec = std::move(job.spec);
    created.job.created_ms = job.created_ms;
    created.job.sequence = static_cast<uint64_t>(sqlite3_last_insert_rowid(db));
    TRACEMARK_RETURN_IF_ERROR(txn.Commit());
    return created;
  }
  return absl::InternalError("could not draw an unused job id");
}

absl::StatusOr<std::vector<JobRecord>> ListLocked(sqlite3* db, const ListQuery& query) {
  if (query.limit < 1 || query.limit > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("list limit ", query.limit, " is outside 1..1000"));
  }
  if (query.state.has_value() && !IsValidState(static_cast<int64_t>(*query.state))) {
    return absl::InvalidArgumentError("list query names an invalid job state");
  }
  std::vector<const char*> conditions;
  if (!query.owner.empty()) conditions.push_back("owner = ?");
  if (query.state.has_value()) conditions.push_back("state = ?");
  if (query.before_sequence != 0) conditions.push_back("sequence < ?");
  std::string sql = absl::StrCat("SELECT ", kListColumns, " FROM jobs");
  if (!conditions.empty()) absl::StrAppend(&sql, " WHERE ", absl::StrJoin(conditions, " AND "));
  absl::StrAppend(&sql, " ORDER BY sequence DESC LIMIT ?");

  TRACEMARK_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db, sql));
  int param = 1;  // parameters are numbered in the order they appear
  if (!query.owner.empty()) TRACEMARK_RETURN_IF_ERROR(stmt.BindText(param++, query.owner));
  if (query.state.has_value()) {
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(param++, static_cast<int64_t>(*query.state)));
  }
  if (query.before_sequence != 0) {
    constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
    const uint64_t before = query.before_sequence < kMax ? query.before_sequence : kMax;
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(param++, static_cast<int64_t>(before)));
  }
  TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(param, static_cast<int64_t>(query.limit)));

  std::vector<JobRecord> jobs;
  for (;;) {
    TRACEMARK_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return jobs;
    TRACEMARK_ASSIGN_OR_RETURN(JobRecord job, ReadJob(stmt));
    jobs.push_back(std::move(job));
  }
}

absl::StatusOr<std::optional<JobRecord>> ClaimNextLocked(sqlite3* db, int64_t now_ms) {
  Transaction txn(db);
  TRACEMARK_RETURN_IF_ERROR(txn.Begin());
  std::optional<JobRecord> job;
  {
    TRACEMARK_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(
            db, absl::StrCat("UPDATE jobs SET state = ?1, started_ms = ?2, attempts = attempts + 1 "
                             "WHERE sequence = (SELECT sequence FROM jobs WHERE state = ?3 "
                             "ORDER BY sequence LIMIT 1) RETURNING ",
                             kJobColumns)));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(1, static_cast<int64_t>(JobState::kRunning)));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(2, now_ms));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(3, static_cast<int64_t>(JobState::kQueued)));
    // One step only: a step after SQLITE_DONE would run the UPDATE again.
    TRACEMARK_ASSIGN_OR_RETURN(job, ReadOptionalJob(stmt));
  }
  TRACEMARK_RETURN_IF_ERROR(txn.Commit());
  return job;
}

absl::Status FinishLocked(sqlite3* db, std::string_view id, JobState state,
                          const JobOutcome& outcome, int64_t now_ms) {
  if (!IsFinal(state) || !IsValidState(static_cast<int64_t>(state))) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot finish job ", AsAbsl(id), " as ", AsAbsl(JobStateName(state))));
  }
  Transaction txn(db);
  TRACEMARK_RETURN_IF_ERROR(txn.Begin());
  TRACEMARK_ASSIGN_OR_RETURN(JobRecord job, GetById(db, id));
  if (job.state != JobState::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", AsAbsl(id), " is ", AsAbsl(JobStateName(job.state)), ", not running"));
  }
  const bool succeeded = state == JobState::kSucceeded;
  {
    TRACEMARK_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db,
                           "UPDATE jobs SET state = ?1, result = ?2, report = ?3, error = ?4, "
                           "finished_ms = ?5 WHERE id = ?6"));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(1, static_cast<int64_t>(state)));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindBlob(2, succeeded ? outcome.result : ""));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindBlob(3, succeeded ? outcome.report : ""));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindText(4, outcome.error));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(5, now_ms));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindText(6, id));
    TRACEMARK_RETURN_IF_ERROR(stmt.Run());
  }
  return txn.Commit();
}

absl::StatusOr<JobRecord> RequestCancelLocked(sqlite3* db, std::string_view id,
                                              std::string_view why, int64_t now_ms) {
  Transaction txn(db);
  TRACEMARK_RETURN_IF_ERROR(txn.Begin());
  {
    TRACEMARK_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db,
                           "UPDATE jobs SET state = ?1, finished_ms = ?2, error = ?3 "
                           "WHERE id = ?4 AND state = ?5"));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(1, static_cast<int64_t>(JobState::kCancelled)));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(2, now_ms));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindText(3, why));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindText(4, id));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(5, static_cast<int64_t>(JobState::kQueued)));
    TRACEMARK_RETURN_IF_ERROR(stmt.Run());
  }
  {
    TRACEMARK_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db,
                           "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state = ?2"));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindText(1, id));
    TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(2, static_cast<int64_t>(JobState::kRunning)));
    TRACEMARK_RETURN_IF_ERROR(stmt.Run());
  }
  TRACEMARK_ASSIGN_OR_RETURN(JobRecord job, GetById(db, id));
  TRACEMARK_RETURN_IF_ERROR(txn.Commit());
  return job;
}

absl::StatusOr<int> RequeueRunningLocked(sqlite3* db) {
  TRACEMARK_ASSIGN_OR_RETURN(Statement stmt,
                             Statement::Prepare(db, "UPDATE jobs SET state = ?1 WHERE state = ?2"));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(1, static_cast<int64_t>(JobState::kQueued)));
  TRACEMARK_RETURN_IF_ERROR(stmt.BindInt(2, static_cast<int64_t>(JobState::kRunning)));
  TRACEMARK_RETURN_IF_ERROR(stmt.Run());
  return sqlite3_changes(db);
}

absl::StatusOr<std::vector<uint64_t>> CountByStateLocked(sqlite3* db) {
  TRACEMARK_ASSIGN_OR_RETURN(
      Statement stmt, Statement::Prepare(db, "SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  std::vector<uint64_t> counts(static_cast<size_t>(JobState::kCancelled) + 1, 0);
  for (;;) {
    TRACEMARK_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return counts;
    const int64_t state = stmt.Int(0);
    if (!IsValidState(state)) {
      return absl::InternalError(absl::StrCat("jobs table holds an invalid state ", state));
    }
    counts[static_cast<size_t>(state)] = static_cast<uint64_t>(stmt.Int(1));
  }
}

// --- Opening ---

absl::StatusOr<int64_t> PragmaInt(sqlite3* db, const char* sql) {
  TRACEMARK_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db, sql));
  TRACEMARK_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError(absl::StrCat(sql, " returned no row"));
  return stmt.Int(0);
}

// True for an empty database (to be given the schema), false for a current job store, and
// FailedPrecondition for anything else.
absl::StatusOr<bool> NeedsSchema(sqlite3* db) {
  absl::StatusOr<int64_t> read_id = PragmaInt(db, "PRAGMA application_id");
  if (absl::IsFailedPrecondition(read_id.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("not a SQLite database (", read_id.status().message(), ")"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(int64_t application_id, std::move(read_id));
  TRACEMARK_ASSIGN_OR_RETURN(int64_t version, PragmaInt(db, "PRAGMA user_version"));
  if (application_id == kApplicationId) {
    if (version == kSchemaVersion) return false;
    return absl::FailedPreconditionError(absl::StrCat("job store schema version ", version,
                                                      " is not supported (this build has ",
                                                      kSchemaVersion, ")"));
  }
  TRACEMARK_ASSIGN_OR_RETURN(int64_t objects, PragmaInt(db, "SELECT COUNT(*) FROM sqlite_master"));
  if (application_id == 0 && version == 0 && objects == 0) return true;
  return absl::FailedPreconditionError(
      absl::StrCat("a SQLite database of another application (application_id ", application_id,
                   "), not a tracemark job store"));
}

absl::Status CreateSchema(sqlite3* db) {
  Transaction txn(db);
  TRACEMARK_RETURN_IF_ERROR(txn.Begin());
  TRACEMARK_ASSIGN_OR_RETURN(bool needs_schema, NeedsSchema(db));  // another process may have won
  if (!needs_schema) return absl::OkStatus();
  TRACEMARK_RETURN_IF_ERROR(Exec(db, kSchema));
  TRACEMARK_RETURN_IF_ERROR(
      Exec(db, absl::StrCat("PRAGMA application_id = ", kApplicationId).c_str()));
  TRACEMARK_RETURN_IF_ERROR(
      Exec(db, absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str()));
  return txn.Commit();
}

absl::Status EnableWal(sqlite3* db) {
  TRACEMARK_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db, "PRAGMA journal_mode = WAL"));
  TRACEMARK_ASSIGN_OR_RETURN(bool row, stmt.Step());
  const std::string mode = row ? stmt.Bytes(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("the database cannot use a WAL journal (journal_mode is '", mode, "')"));
  }
  return absl::OkStatus();
}

// Makes the new database file's directory entry durable too.
absl::Status SyncParentDirectory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) {
    return absl::UnavailableError(
        absl::StrCat("cannot sync directory ", dir.string(), ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

// Checks the file before changing anything in it (journal_mode = WAL would convert another
// application's database), then sets the connection up and creates the schema if it is new.
absl::Status Prepare(sqlite3* db, const std::string& path) {
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  TRACEMARK_ASSIGN_OR_RETURN(bool needs_schema, NeedsSchema(db));
  TRACEMARK_RETURN_IF_ERROR(EnableWal(db));
  TRACEMARK_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = FULL"));
  if (!needs_schema) return absl::OkStatus();
  TRACEMARK_RETURN_IF_ERROR(CreateSchema(db));
  return SyncParentDirectory(path);
}

}  // namespace

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "invalid";
}

struct JobStore::Impl {
  explicit Impl(sqlite3* connection) : db(connection) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { sqlite3_close_v2(db); }

  std::mutex mu;
  sqlite3* const db;  // used only with mu held
};

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialize");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto impl = std::make_unique<Impl>(db);  // closes `db` on every return below
  absl::Status status = rc == SQLITE_OK ? Prepare(db, path) : SqliteError(db, rc, "cannot open");
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("job store ", path, ": ", status.message()));
  }
  return std::unique_ptr<JobStore>(new JobStore(std::move(impl)));
}

JobStore::JobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobStore::~JobStore() = default;

absl::StatusOr<CreatedJob> JobStore::Create(JobRecord job) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return CreateLocked(impl_->db, std::move(job));
}

absl::StatusOr<JobRecord> JobStore::Get(std::string_view id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return GetById(impl_->db, id);
}

absl::StatusOr<std::optional<JobRecord>> JobStore::FindRequest(std::string_view owner,
                                                               std::string_view request_id) {
  if (request_id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return FindByRequest(impl_->db, owner, request_id);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::List(const ListQuery& query) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return ListLocked(impl_->db, query);
}

absl::StatusOr<std::optional<JobRecord>> JobStore::ClaimNext(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return ClaimNextLocked(impl_->db, now_ms);
}

absl::Status JobStore::Finish(std::string_view id, JobState state, const JobOutcome& outcome,
                              int64_t now_ms) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return FinishLocked(impl_->db, id, state, outcome, now_ms);
}

absl::StatusOr<JobRecord> JobStore::RequestCancel(std::string_view id, std::string_view why,
                                                  int64_t now_ms) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return RequestCancelLocked(impl_->db, id, why, now_ms);
}

absl::StatusOr<int> JobStore::RequeueRunning() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return RequeueRunningLocked(impl_->db);
}

absl::StatusOr<std::vector<uint64_t>> JobStore::CountByState() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return CountByStateLocked(impl_->db);
}

}  // namespace tracemark::service
