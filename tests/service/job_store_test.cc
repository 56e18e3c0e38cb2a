#include "tracemark/service/job_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fault_vfs.h"
#include "gtest/gtest.h"

namespace tracemark::service {
namespace {

namespace fs = std::filesystem;

JobRecord NewJob(std::string owner, std::string request_id = "", std::string label = "") {
  JobRecord job;
  job.owner = std::move(owner);
  job.request_id = std::move(request_id);
  job.label = std::move(label);
  job.spec = R"({"inputs":["a.txt"]})";
  job.created_ms = 1000;
  return job;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `sql` on the SQLite database at `path` directly, bypassing JobStore.
void RawSql(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

bool IsJobId(const std::string& id) {
  if (id.size() != 21 || id.rfind("scan-", 0) != 0) return false;
  return std::all_of(id.begin() + 5, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("job_store_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "jobs.db").string();
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void Reopen() {
    store_.reset();
    auto store = JobStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  JobRecord MustCreate(JobRecord job) {
    auto created = store_->Create(std::move(job));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->job : JobRecord{};
  }

  JobRecord MustGet(const std::string& id) {
    auto job = store_->Get(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : JobRecord{};
  }

  JobRecord MustClaim(int64_t now_ms) {
    auto claimed = store_->ClaimNext(now_ms);
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    EXPECT_TRUE(claimed.ok() && claimed->has_value());
    return claimed.ok() && claimed->has_value() ? **claimed : JobRecord{};
  }

  std::vector<JobRecord> MustList(const ListQuery& query) {
    auto jobs = store_->List(query);
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *jobs : std::vector<JobRecord>{};
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

std::vector<uint64_t> Sequences(const std::vector<JobRecord>& jobs) {
  std::vector<uint64_t> out;
  for (const JobRecord& j : jobs) out.push_back(j.sequence);
  return out;
}

void ExpectSameJob(const JobRecord& a, const JobRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.report, b.report);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.started_ms, b.started_ms);
  EXPECT_EQ(a.finished_ms, b.finished_ms);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.cancel_requested, b.cancel_requested);
  EXPECT_EQ(a.sequence, b.sequence);
}

TEST(JobStateTest, NamesAndFinality) {
  EXPECT_EQ(JobStateName(JobState::kQueued), "queued");
  EXPECT_EQ(JobStateName(JobState::kRunning), "running");
  EXPECT_EQ(JobStateName(JobState::kSucceeded), "succeeded");
  EXPECT_EQ(JobStateName(JobState::kFailed), "failed");
  EXPECT_EQ(JobStateName(JobState::kCancelled), "cancelled");
  EXPECT_FALSE(IsFinal(JobState::kRunning));
  EXPECT_TRUE(IsFinal(JobState::kCancelled));
}

TEST_F(JobStoreTest, QueuedRunningSucceeded) {
  JobRecord job = NewJob("alice", "r1", "first scan");
  job.spec = std::string("binary\0spec\xff", 12);
  const JobRecord created = MustCreate(job);
  EXPECT_TRUE(IsJobId(created.id)) << created.id;
  EXPECT_EQ(created.sequence, 1u);
  EXPECT_EQ(created.state, JobState::kQueued);
  EXPECT_EQ(created.spec, job.spec);
  EXPECT_EQ(created.created_ms, 1000);
  EXPECT_EQ(created.attempts, 0u);
  ExpectSameJob(MustGet(created.id), created);

  const JobRecord running = MustClaim(2000);
  EXPECT_EQ(running.id, created.id);
  EXPECT_EQ(running.state, JobState::kRunning);
  EXPECT_EQ(running.started_ms, 2000);
  EXPECT_EQ(running.attempts, 1u);
  ExpectSameJob(MustGet(created.id), running);

  ASSERT_TRUE(
      store_->Finish(created.id, JobState::kSucceeded, {"{\"ok\":1}", "envelope", ""}, 3000).ok());
  const JobRecord done = MustGet(created.id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result, "{\"ok\":1}");
  EXPECT_EQ(done.report, "envelope");
  EXPECT_EQ(done.error, "");
  EXPECT_EQ(done.started_ms, 2000);
  EXPECT_EQ(done.finished_ms, 3000);
  EXPECT_EQ(done.attempts, 1u);
  EXPECT_EQ(done.spec, job.spec);
}

TEST_F(JobStoreTest, FailedKeepsOnlyTheError) {
  const JobRecord created = MustCreate(NewJob("alice"));
  MustClaim(2000);
  ASSERT_TRUE(
      store_->Finish(created.id, JobState::kFailed, {"ignored", "ignored", "boom"}, 3000).ok());
  const JobRecord done = MustGet(created.id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.error, "boom");
  EXPECT_EQ(done.result, "");
  EXPECT_EQ(done.report, "");
}

TEST_F(JobStoreTest, CreateIgnoresServerAssignedFields) {
  JobRecord job = NewJob("alice");
  job.id = "scan-0000000000000000";
  job.state = JobState::kSucceeded;
  job.result = "r";
  job.report = "p";
  job.error = "e";
  job.started_ms = 5;
  job.finished_ms = 6;
  job.attempts = 7;
  job.cancel_requested = true;
  job.sequence = 99;
  const JobRecord created = MustCreate(job);
  const JobRecord stored = MustGet(created.id);
  ExpectSameJob(stored, created);
  EXPECT_NE(stored.id, job.id);
  EXPECT_EQ(stored.state, JobState::kQueued);
  EXPECT_EQ(stored.result, "");
  EXPECT_EQ(stored.report, "");
  EXPECT_EQ(stored.error, "");
  EXPECT_EQ(stored.started_ms, 0);
  EXPECT_EQ(stored.finished_ms, 0);
  EXPECT_EQ(stored.attempts, 0u);
  EXPECT_FALSE(stored.cancel_requested);
  EXPECT_EQ(stored.sequence, 1u);
}

TEST_F(JobStoreTest, CancelQueuedJobEndsIt) {
  const JobRecord created = MustCreate(NewJob("alice"));
  auto cancelled = store_->RequestCancel(created.id, "by alice", 1500);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_EQ(cancelled->finished_ms, 1500);
  EXPECT_EQ(cancelled->error, "by alice");
  EXPECT_FALSE(cancelled->cancel_requested);
  ExpectSameJob(MustGet(created.id), *cancelled);

  auto next = store_->ClaimNext(2000);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());

  // A final job is left as it is.
  auto again = store_->RequestCancel(created.id, "by bob", 2500);
  ASSERT_TRUE(again.ok());
  ExpectSameJob(*again, *cancelled);
}

TEST_F(JobStoreTest, CancelRunningJobSetsTheFlag) {
  const JobRecord created = MustCreate(NewJob("alice"));
  MustClaim(2000);
  auto requested = store_->RequestCancel(created.id, "by alice", 2500);
  ASSERT_TRUE(requested.ok()) << requested.status();
  EXPECT_EQ(requested->state, JobState::kRunning);
  EXPECT_TRUE(requested->cancel_requested);
  EXPECT_EQ(requested->finished_ms, 0);
  EXPECT_TRUE(MustGet(created.id).cancel_requested);

  ASSERT_TRUE(store_->Finish(created.id, JobState::kCancelled, {"", "", "by alice"}, 3000).ok());
  const JobRecord done = MustGet(created.id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  EXPECT_EQ(done.error, "by alice");
  EXPECT_EQ(done.finished_ms, 3000);
}

TEST_F(JobStoreTest, FinishOnlyFromRunningAndChangesNothingElse) {
  const JobRecord queued = MustCreate(NewJob("alice"));
  absl::Status s = store_->Finish(queued.id, JobState::kSucceeded, {"r", "p", ""}, 3000);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("queued"), std::string::npos) << s;
  ExpectSameJob(MustGet(queued.id), queued);

  MustClaim(2000);
  ASSERT_TRUE(store_->Finish(queued.id, JobState::kFailed, {"", "", "boom"}, 3000).ok());
  const JobRecord failed = MustGet(queued.id);
  s = store_->Finish(queued.id, JobState::kSucceeded, {"r", "p", ""}, 4000);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  ExpectSameJob(MustGet(queued.id), failed);

  EXPECT_EQ(store_->Finish("scan-ffffffffffffffff", JobState::kFailed, {}, 1).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, FinishRejectsANonFinalState) {
  const JobRecord created = MustCreate(NewJob("alice"));
  const JobRecord running = MustClaim(2000);
  EXPECT_EQ(store_->Finish(created.id, JobState::kQueued, {}, 3000).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Finish(created.id, JobState::kRunning, {}, 3000).code(),
            absl::StatusCode::kInvalidArgument);
  ExpectSameJob(MustGet(created.id), running);
}

TEST_F(JobStoreTest, CreateIsIdempotentPerOwnerAndRequestId) {
  auto first = store_->Create(NewJob("alice", "req-1", "one"));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->created);

  // The retry returns the first job as it is, even when its fields differ.
  auto retry = store_->Create(NewJob("alice", "req-1", "other label"));
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->created);
  ExpectSameJob(retry->job, first->job);

  // ... and as it is now.
  MustClaim(2000);
  auto later = store_->Create(NewJob("alice", "req-1"));
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(later->created);
  EXPECT_EQ(later->job.state, JobState::kRunning);

  auto other_owner = store_->Create(NewJob("bob", "req-1"));
  ASSERT_TRUE(other_owner.ok());
  EXPECT_TRUE(other_owner->created);
  EXPECT_NE(other_owner->job.id, first->job.id);

  auto no_key_1 = store_->Create(NewJob("alice"));
  auto no_key_2 = store_->Create(NewJob("alice"));
  ASSERT_TRUE(no_key_1.ok() && no_key_2.ok());
  EXPECT_TRUE(no_key_1->created);
  EXPECT_TRUE(no_key_2->created);
  EXPECT_NE(no_key_1->job.id, no_key_2->job.id);

  auto counts = store_->CountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[static_cast<size_t>(JobState::kQueued)], 3u);
  EXPECT_EQ((*counts)[static_cast<size_t>(JobState::kRunning)], 1u);
}

TEST_F(JobStoreTest, IdempotentCreateSurvivesReopen) {
  const JobRecord first = MustCreate(NewJob("alice", "req-1"));
  Reopen();
  auto retry = store_->Create(NewJob("alice", "req-1"));
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->created);
  ExpectSameJob(retry->job, first);
}

TEST_F(JobStoreTest, ClaimNextIsFifoAndNulloptWhenEmpty) {
  auto empty = store_->ClaimNext(1);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustCreate(NewJob("alice")).id);
  ASSERT_TRUE(store_->RequestCancel(ids[1], "skip", 5).ok());
  EXPECT_EQ(MustClaim(10).id, ids[0]);
  ids.push_back(MustCreate(NewJob("bob")).id);
  EXPECT_EQ(MustClaim(11).id, ids[2]);
  EXPECT_EQ(MustClaim(12).id, ids[3]);
  EXPECT_EQ(MustClaim(13).id, ids[4]);
  EXPECT_EQ(MustClaim(14).id, ids[5]);
  auto none = store_->ClaimNext(15);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(JobStoreTest, ListPagesNewestFirstAndFilters) {
  std::vector<JobRecord> jobs;  // sequences 1..7; alice: 1, 3, 5, 7; bob: 2, 4, 6
  for (int i = 0; i < 7; ++i) jobs.push_back(MustCreate(NewJob(i % 2 == 0 ? "alice" : "bob")));
  MustClaim(10);  // 1
  MustClaim(11);  // 2
  ASSERT_TRUE(
      store_->Finish(jobs[0].id, JobState::kSucceeded, {"big result", "report", ""}, 12).ok());

  ListQuery q;
  q.limit = 3;
  EXPECT_EQ(Sequences(MustList(q)), (std::vector<uint64_t>{7, 6, 5}));
  q.before_sequence = 5;
  EXPECT_EQ(Sequences(MustList(q)), (std::vector<uint64_t>{4, 3, 2}));
  q.before_sequence = 2;
  EXPECT_EQ(Sequences(MustList(q)), (std::vector<uint64_t>{1}));
  q.before_sequence = 1;
  EXPECT_TRUE(MustList(q).empty());

  ListQuery by_owner;
  by_owner.owner = "alice";
  EXPECT_EQ(Sequences(MustList(by_owner)), (std::vector<uint64_t>{7, 5, 3, 1}));
  by_owner.before_sequence = 5;
  EXPECT_EQ(Sequences(MustList(by_owner)), (std::vector<uint64_t>{3, 1}));

  ListQuery by_state;
  by_state.state = JobState::kQueued;
  EXPECT_EQ(Sequences(MustList(by_state)), (std::vector<uint64_t>{7, 6, 5, 4, 3}));
  by_state.owner = "bob";
  EXPECT_EQ(Sequences(MustList(by_state)), (std::vector<uint64_t>{6, 4}));
  by_state.state = JobState::kRunning;
  EXPECT_EQ(Sequences(MustList(by_state)), (std::vector<uint64_t>{2}));
  by_state.owner = "carol";
  EXPECT_TRUE(MustList(by_state).empty());

  // The listing leaves out result and report but keeps the rest.
  ListQuery all;
  const std::vector<JobRecord> listed = MustList(all);
  ASSERT_EQ(listed.size(), 7u);
  const JobRecord& oldest = listed.back();
  EXPECT_EQ(oldest.id, jobs[0].id);
  EXPECT_EQ(oldest.state, JobState::kSucceeded);
  EXPECT_EQ(oldest.result, "");
  EXPECT_EQ(oldest.report, "");
  EXPECT_EQ(oldest.spec, jobs[0].spec);
  EXPECT_EQ(oldest.finished_ms, 12);
  EXPECT_EQ(MustGet(jobs[0].id).result, "big result");
  EXPECT_EQ(MustGet(jobs[0].id).report, "report");
}

TEST_F(JobStoreTest, ListLimitMustBeWithinRange) {
  MustCreate(NewJob("alice"));
  ListQuery q;
  q.limit = 0;
  EXPECT_EQ(store_->List(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.limit = 1001;
  EXPECT_EQ(store_->List(q).status().code(), absl::StatusCode::kInvalidArgument);
  q.limit = 1;
  EXPECT_EQ(MustList(q).size(), 1u);
  q.limit = 1000;
  EXPECT_EQ(MustList(q).size(), 1u);
}

TEST_F(JobStoreTest, ListPagesThroughManyJobs) {
  for (int i = 0; i < 25; ++i) MustCreate(NewJob("alice"));
  ListQuery q;
  q.limit = 10;
  std::vector<uint64_t> seen;
  for (;;) {
    const std::vector<JobRecord> page = MustList(q);
    if (page.empty()) break;
    for (const JobRecord& j : page) seen.push_back(j.sequence);
    q.before_sequence = page.back().sequence;
  }
  ASSERT_EQ(seen.size(), 25u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 25 - i);
}

TEST_F(JobStoreTest, RequeueRunningAfterReopen) {
  const JobRecord a = MustCreate(NewJob("alice"));
  const JobRecord b = MustCreate(NewJob("alice"));
  const JobRecord c = MustCreate(NewJob("alice"));
  MustClaim(10);
  MustClaim(11);
  ASSERT_TRUE(store_->RequestCancel(b.id, "by alice", 12).ok());

  Reopen();
  auto requeued = store_->RequeueRunning();
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  EXPECT_EQ(*requeued, 2);
  const JobRecord a2 = MustGet(a.id), b2 = MustGet(b.id), c2 = MustGet(c.id);
  EXPECT_EQ(a2.state, JobState::kQueued);
  EXPECT_EQ(a2.attempts, 1u);
  EXPECT_FALSE(a2.cancel_requested);
  EXPECT_EQ(b2.state, JobState::kQueued);
  EXPECT_EQ(b2.attempts, 1u);
  EXPECT_TRUE(b2.cancel_requested);
  EXPECT_EQ(c2.state, JobState::kQueued);
  EXPECT_EQ(c2.attempts, 0u);

  const JobRecord again = MustClaim(20);
  EXPECT_EQ(again.id, a.id);
  EXPECT_EQ(again.attempts, 2u);
  EXPECT_EQ(again.started_ms, 20);
  EXPECT_EQ(MustClaim(21).id, b.id);
  EXPECT_EQ(MustClaim(22).id, c.id);

  Reopen();
  auto requeued_again = store_->RequeueRunning();
  ASSERT_TRUE(requeued_again.ok());
  EXPECT_EQ(*requeued_again, 3);
  requeued_again = store_->RequeueRunning();
  ASSERT_TRUE(requeued_again.ok());
  EXPECT_EQ(*requeued_again, 0);
}

TEST_F(JobStoreTest, CountByStateIndexesByEnumValue) {
  auto empty = store_->CountByState();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, std::vector<uint64_t>(6, 0));

  std::vector<JobRecord> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(MustCreate(NewJob("alice")));
  for (int i = 0; i < 4; ++i) MustClaim(10 + i);
  ASSERT_TRUE(store_->Finish(jobs[0].id, JobState::kSucceeded, {}, 20).ok());
  ASSERT_TRUE(store_->Finish(jobs[1].id, JobState::kFailed, {}, 20).ok());
  ASSERT_TRUE(store_->RequestCancel(jobs[5].id, "x", 20).ok());
  auto counts = store_->CountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::vector<uint64_t>{0, 1, 2, 1, 1, 1}));
}

TEST_F(JobStoreTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(store_->Get("scan-0123456789abcdef").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->RequestCancel("scan-0123456789abcdef", "x", 1).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, IdsAreUniqueAndWellFormed) {
  std::set<std::string> ids;
  for (uint64_t i = 1; i <= 300; ++i) {
    const JobRecord job = MustCreate(NewJob("alice"));
    EXPECT_TRUE(IsJobId(job.id)) << job.id;
    EXPECT_EQ(job.sequence, i);
    ids.insert(job.id);
  }
  EXPECT_EQ(ids.size(), 300u);
}

TEST_F(JobStoreTest, StoredValuesAreBoundNotInterpolated) {
  const std::string evil = "x'); DROP TABLE jobs; --";
  const JobRecord job = MustCreate(NewJob(evil, evil, evil));
  EXPECT_EQ(MustGet(job.id).owner, evil);
  ListQuery q;
  q.owner = evil;
  EXPECT_EQ(MustList(q).size(), 1u);
  EXPECT_EQ(store_->Get(evil).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, OpenRejectsAFileThatIsNotSqlite) {
  const fs::path garbage = dir_ / "garbage.db";
  std::string bytes;
  for (int i = 0; i < 5000; ++i) bytes.push_back(static_cast<char>('a' + i % 26));
  std::ofstream(garbage, std::ios::binary) << bytes;
  auto store = JobStore::Open(garbage.string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(garbage.string()), std::string::npos) << store.status();
  EXPECT_EQ(ReadFile(garbage), bytes);
}

TEST_F(JobStoreTest, OpenRejectsAnotherApplicationsDatabase) {
  const fs::path other = dir_ / "other.db";
  RawSql(other, "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('hello');");
  const std::string before = ReadFile(other);
  auto store = JobStore::Open(other.string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(other.string()), std::string::npos) << store.status();
  EXPECT_EQ(ReadFile(other), before);  // not switched to WAL, not given our schema
  EXPECT_FALSE(fs::exists(other.string() + "-wal"));

  const fs::path tagged = dir_ / "tagged.db";
  RawSql(tagged, "PRAGMA application_id = 42;");
  EXPECT_EQ(JobStore::Open(tagged.string()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobStoreTest, OpenRejectsANewerSchema) {
  MustCreate(NewJob("alice"));
  store_.reset();
  RawSql(path_, "PRAGMA user_version = 2;");
  auto store = JobStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
}

TEST_F(JobStoreTest, OpenAcceptsAnEmptyFile) {
  const fs::path empty = dir_ / "empty.db";
  std::ofstream(empty, std::ios::binary).flush();
  auto store = JobStore::Open(empty.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Create(NewJob("alice")).ok());
}

TEST_F(JobStoreTest, OpenInAMissingDirectoryIsUnavailable) {
  const std::string path = (dir_ / "missing" / "jobs.db").string();
  auto store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status();
}

TEST_F(JobStoreTest, ConcurrentIdempotentCreateMakesOneJob) {
  auto second = JobStore::Open(path_);
  ASSERT_TRUE(second.ok()) << second.status();
  JobStore* stores[] = {store_.get(), second->get()};
  std::mutex mu;
  std::vector<CreatedJob> results;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto created = stores[t % 2]->Create(NewJob("alice", "same-request"));
      ASSERT_TRUE(created.ok()) << created.status();
      std::lock_guard<std::mutex> lock(mu);
      results.push_back(*created);
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(results.size(), 8u);
  int created = 0;
  for (const CreatedJob& r : results) {
    created += r.created ? 1 : 0;
    EXPECT_EQ(r.job.id, results[0].job.id);
  }
  EXPECT_EQ(created, 1);
}

TEST_F(JobStoreTest, ConcurrentCreateAndClaimClaimsEveryJobOnce) {
  // Two connections to the same file, two producer and two consumer threads on each.
  auto second = JobStore::Open(path_);
  ASSERT_TRUE(second.ok()) << second.status();
  JobStore* stores[] = {store_.get(), second->get()};
  constexpr int kProducers = 4, kConsumers = 4, kJobsEach = 40;

  std::mutex mu;
  std::vector<std::string> created_ids, claimed_ids;
  std::atomic<int> producers_left{kProducers};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kJobsEach; ++i) {
        auto created = stores[p % 2]->Create(NewJob("owner" + std::to_string(p)));
        ASSERT_TRUE(created.ok()) << created.status();
        std::lock_guard<std::mutex> lock(mu);
        created_ids.push_back(created->job.id);
      }
      --producers_left;
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      for (;;) {
        const bool producers_done = producers_left.load() == 0;
        auto claimed = stores[c % 2]->ClaimNext(1);
        ASSERT_TRUE(claimed.ok()) << claimed.status();
        if (!claimed->has_value()) {
          if (producers_done) return;
          std::this_thread::yield();
          continue;
        }
        EXPECT_EQ((*claimed)->state, JobState::kRunning);
        EXPECT_EQ((*claimed)->attempts, 1u);
        std::lock_guard<std::mutex> lock(mu);
        claimed_ids.push_back((*claimed)->id);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  ASSERT_EQ(created_ids.size(), static_cast<size_t>(kProducers * kJobsEach));
  std::sort(created_ids.begin(), created_ids.end());
  std::sort(claimed_ids.begin(), claimed_ids.end());
  EXPECT_EQ(claimed_ids, created_ids);
  auto counts = store_->CountByState();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[static_cast<size_t>(JobState::kRunning)], created_ids.size());
  EXPECT_EQ((*counts)[static_cast<size_t>(JobState::kQueued)], 0u);
}

// --- Durability across kill -9 ---

// Reads newline-terminated ids from `fd` until `count` are read or the writer is gone.
void ReadIds(int fd, size_t count, std::string& buffer, std::vector<std::string>& ids) {
  while (ids.size() < count) {
    const size_t newline = buffer.find('\n');
    if (newline != std::string::npos) {
      ids.push_back(buffer.substr(0, newline));
      buffer.erase(0, newline + 1);
      continue;
    }
    char chunk[512];
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

// The child: opens the store and creates jobs ("round-i") until it is killed, writing each id
// to `fd` once Create has returned it. Never returns.
[[noreturn]] void CreateUntilKilled(const std::string& path, int round, int fd) {
  auto store = JobStore::Open(path);
  if (!store.ok()) ::_exit(2);
  for (int i = 0; i < 1000000; ++i) {
    JobRecord job = NewJob("durable", std::to_string(round) + "-" + std::to_string(i));
    auto created = (*store)->Create(std::move(job));
    if (!created.ok() || !created->created) ::_exit(3);
    const std::string line = created->job.id + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
  }
  ::_exit(0);
}

TEST_F(JobStoreTest, JobsReportedBeforeKillNineSurviveExactlyOnce) {
  store_.reset();                     // no connection may cross fork()
  std::vector<std::string> reported;  // every id a child reported, over all rounds
  std::map<int, size_t> stored_per_round;
  const size_t kill_after[] = {1, 9, 60, 200};
  for (int round = 0; round < static_cast<int>(std::size(kill_after)); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      CreateUntilKilled(path_, round, fds[1]);
    }
    ::close(fds[1]);
    std::string buffer;
    std::vector<std::string> ids;
    ReadIds(fds[0], kill_after[static_cast<size_t>(round)], buffer, ids);
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    ReadIds(fds[0], SIZE_MAX, buffer, ids);  // what it reported before it died
    ::close(fds[0]);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
    ASSERT_GE(ids.size(), kill_after[static_cast<size_t>(round)]);
    reported.insert(reported.end(), ids.begin(), ids.end());

    Reopen();
    ASSERT_NE(store_, nullptr);
    // Every job in the store, oldest first.
    std::vector<JobRecord> stored;
    ListQuery q;
    q.limit = 1000;
    for (;;) {
      const std::vector<JobRecord> page = MustList(q);
      if (page.empty()) break;
      stored.insert(stored.end(), page.begin(), page.end());
      q.before_sequence = page.back().sequence;
    }
    std::reverse(stored.begin(), stored.end());

    std::map<std::string, int> times_stored;
    std::map<int, size_t> per_round;
    for (const JobRecord& job : stored) {
      ++times_stored[job.id];
      EXPECT_EQ(job.state, JobState::kQueued);
      const int job_round = std::stoi(job.request_id.substr(0, job.request_id.find('-')));
      // A round's jobs are its request ids 0, 1, 2, ... in creation order.
      EXPECT_EQ(job.request_id,
                std::to_string(job_round) + "-" + std::to_string(per_round[job_round]++));
    }
    for (const std::string& id : reported) EXPECT_EQ(times_stored[id], 1) << id;
    // At most one job per round was committed but not yet reported when the kill came.
    EXPECT_LE(stored.size(), reported.size() + static_cast<size_t>(round) + 1);
    stored_per_round[round] = per_round[round];
    EXPECT_GE(stored_per_round[round], ids.size());

    // A client retrying every request of this round gets the stored jobs back, not new ones.
    for (size_t i = 0; i < ids.size(); ++i) {
      auto retry =
          store_->Create(NewJob("durable", std::to_string(round) + "-" + std::to_string(i)));
      ASSERT_TRUE(retry.ok()) << retry.status();
      EXPECT_FALSE(retry->created);
      EXPECT_EQ(retry->job.id, ids[i]);
    }
    store_.reset();
  }
}

// ---- faults: the disk under the store fills up or fails (tests/service/fault_vfs.h) ----

class JobStoreFaultTest : public JobStoreTest {
 protected:
  static void SetUpTestSuite() { testing::FaultVfs::Install(); }
  void TearDown() override {
    testing::FaultVfs::Set(testing::FaultVfs::kNone);
    JobStoreTest::TearDown();
  }
};

// Every kind of write fault, at several points into a commit (nothing written yet, part of the
// WAL frames written, all but the last): the call fails with Unavailable naming the cause; every
// job acknowledged before is intact, the failed one is absent, and once the fault clears the
// same store (and a reopened one) takes new jobs.
TEST_F(JobStoreFaultTest, AFailedWriteLosesNothingAcknowledged) {
  struct Case {
    testing::FaultVfs::Fault fault;
    const char* cause;
  };
  const Case cases[] = {{testing::FaultVfs::kDiskFull, "full"},
                        {testing::FaultVfs::kWriteError, "I/O"},
                        {testing::FaultVfs::kSyncError, "I/O"}};
  std::vector<std::string> acknowledged;
  for (const Case& c : cases) {
    for (int64_t after : {0, 1000, 5000}) {
      SCOPED_TRACE(std::to_string(c.fault) + " after " + std::to_string(after));
      acknowledged.push_back(MustCreate(NewJob("alice")).id);
      testing::FaultVfs::Set(c.fault, after);
      JobRecord big = NewJob("alice");
      big.spec = std::string(8000, 's');
      auto failed = store_->Create(big);
      testing::FaultVfs::Set(testing::FaultVfs::kNone);
      ASSERT_FALSE(failed.ok());
      EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
      EXPECT_NE(failed.status().message().find(c.cause), std::string::npos) << failed.status();
      // The same connection goes on working.
      acknowledged.push_back(MustCreate(NewJob("alice")).id);
      ListQuery all;
      all.limit = 1000;
      EXPECT_EQ(MustList(all).size(), acknowledged.size());
    }
  }
  EXPECT_GT(testing::FaultVfs::Injected(), 0u);
  Reopen();
  ListQuery all;
  all.limit = 1000;
  std::vector<std::string> ids;
  for (const JobRecord& j : MustList(all)) ids.push_back(j.id);
  std::sort(ids.begin(), ids.end());
  std::sort(acknowledged.begin(), acknowledged.end());
  EXPECT_EQ(ids, acknowledged);
}

// A result the disk has no room for: Finish fails, the job stays running with nothing half
// written, and the same Finish succeeds once there is room.
TEST_F(JobStoreFaultTest, FinishOnAFullDiskLeavesTheJobRunningUntilItFits) {
  const JobRecord job = MustCreate(NewJob("alice"));
  MustClaim(2000);
  const JobOutcome outcome{std::string(100000, 'r'), std::string(50000, 'e'), ""};
  testing::FaultVfs::Set(testing::FaultVfs::kDiskFull, 20000);
  const absl::Status s = store_->Finish(job.id, JobState::kSucceeded, outcome, 3000);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  testing::FaultVfs::Set(testing::FaultVfs::kNone);
  JobRecord now = MustGet(job.id);
  EXPECT_EQ(now.state, JobState::kRunning);
  EXPECT_TRUE(now.result.empty());
  ASSERT_TRUE(store_->Finish(job.id, JobState::kSucceeded, outcome, 4000).ok());
  Reopen();
  now = MustGet(job.id);
  EXPECT_EQ(now.state, JobState::kSucceeded);
  EXPECT_EQ(now.result, outcome.result);
  EXPECT_EQ(now.report, outcome.report);
}

// Unreadable pages: a clear Unavailable, not a crash or a wrong answer; readable again after.
TEST_F(JobStoreFaultTest, ReadErrorsAreUnavailable) {
  const JobRecord job = MustCreate(NewJob("alice"));
  store_.reset();
  testing::FaultVfs::Set(testing::FaultVfs::kReadError);
  auto reopened = JobStore::Open(path_);
  testing::FaultVfs::Set(testing::FaultVfs::kNone);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kUnavailable) << reopened.status();
  Reopen();
  EXPECT_EQ(MustGet(job.id).id, job.id);
}

}  // namespace
}  // namespace tracemark::service
