// The serving ledger's store, chosen by measurement (issue 16; docs/ledger.md): the same served
// responses — watermarked answers of the reference model to prompts from the corpus, each to one
// of --accounts accounts — appended one record at a time, crash-safely, to
//
//   segments-L  the ledger's segment files (ledger/writer.h), Zstandard level L, one stream
//               flushed per record;
//   sqlite      one SQLite table in WAL mode (synchronous=NORMAL), one transaction per record,
//               the record's varint encoding as a blob;
//   sqlite-zstd the same with each blob compressed alone (Zstandard level 3).
//
// For each: bytes on disk per served (response) token, the append's cost per record and per
// token, and the time to read every record back. Prints a Markdown table; --out FILE writes JSON.
//
//   build/studies/ledger_store_study --answers 2000 --tokens 300 --accounts 25000
#include <sqlite3.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_format.h"
#include "study_common.h"
#include "tracemark/ledger/reader.h"
#include "tracemark/ledger/record.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/watermark/watermarker.h"

namespace tmk = tracemark;
namespace fs = std::filesystem;
using tmk::ledger::Record;

namespace {

struct Flags {
  int answers = 2000;
  int tokens = 300;
  uint64_t accounts = 25000;
  int threads = 2;
  std::string dir = "/tmp/tracemark_ledger_store_study";
  std::string out;
  std::string data_dir = TRACEMARK_DATA_DIR;
  std::string model;  // empty: the reference model scripts/demo.sh trains
};

struct Measured {
  std::string store;
  uint64_t records = 0, response_ids = 0, bytes = 0;
  uint64_t record_bytes = 0;  // the records' own bytes as stored (compressed or not)
  double append_seconds = 0, read_seconds = 0;
};

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// The served responses: watermarked answers of the reference model, one account each.
absl::StatusOr<std::vector<Record>> Serve(const Flags& f, const tmk::study::StudyData& data) {
  tmk::watermark::Config config;
  config.vocab_size = data.tok->vocab_size();
  const tmk::watermark::Key master = tmk::study::KeyFrom(16);
  auto epoch_key = tmk::watermark::DeriveEpochKey(master, 0);
  if (!epoch_key.ok()) return epoch_key.status();
  auto wm = tmk::watermark::Watermarker::Create(*epoch_key, config);
  if (!wm.ok()) return wm.status();
  const tmk::reference::ReferenceGenerator gen(data.model.get(), data.tok.get());
  std::vector<Record> records(static_cast<size_t>(f.answers));
  std::vector<absl::Status> errors(records.size());
  tmk::study::ParallelFor(f.answers, f.threads, [&](int i) {
    const uint64_t seed = static_cast<uint64_t>(i) + 1;
    Record& r = records[static_cast<size_t>(i)];
    r.account = tmk::study::Hash(seed, 5) % f.accounts;
    auto account = (*wm)->ForAccount(*r.account);
    tmk::reference::GenerateOptions o;
    o.max_tokens = f.tokens;
    o.seed = seed;
    auto g = account.ok() ? gen.GenerateIds(data.corpus.Prompt(seed, 24), wm->get(), &*account, o)
                          : absl::StatusOr<tmk::reference::Generation>(account.status());
    if (!g.ok()) {
      errors[static_cast<size_t>(i)] = g.status();
      return;
    }
    r.epoch_key_id = (*wm)->key_id();
    r.tokenizer = "cl100k_base";
    r.time_us = 1796392800000000 + static_cast<int64_t>(i) * 1500000;
    r.prompt_ids.assign(g->prompt_ids.end() - 3, g->prompt_ids.end());
    r.response_ids = g->ids;
  });
  for (const absl::Status& e : errors) {
    if (!e.ok()) return e;
  }
  return records;
}

absl::StatusOr<Measured> Segments(const std::vector<Record>& records, const std::string& dir,
                                  int level) {
  Measured m{.store = absl::StrFormat("segments-%d", level)};
  auto start = std::chrono::steady_clock::now();
  auto writer = tmk::ledger::Writer::Open(dir, {.compression_level = level});
  if (!writer.ok()) return writer.status();
  for (const Record& r : records) {
    if (absl::Status s = (*writer)->Append(r); !s.ok()) return s;
  }
  if (absl::Status s = (*writer)->Close(); !s.ok()) return s;
  m.append_seconds = tmk::study::SecondsSince(start);
  m.bytes = DirectoryBytes(dir);
  m.record_bytes = m.bytes;  // the segment is the records' stream (and an 8-byte magic)
  start = std::chrono::steady_clock::now();
  const absl::Status read = tmk::ledger::ReadLedger(dir, [&](const Record& r) {
    ++m.records;
    m.response_ids += r.response_ids.size();
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  m.read_seconds = tmk::study::SecondsSince(start);
  return m;
}

absl::Status SqliteError(sqlite3* db, const char* what) {
  return absl::InternalError(absl::StrFormat("sqlite %s: %s", what, sqlite3_errmsg(db)));
}

std::string Compressed(const std::string& bytes) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), 3);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

absl::Status SqliteAppendAll(sqlite3* db, const std::vector<Record>& records, bool compress,
                             uint64_t* record_bytes) {
  const char* schema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE served(id INTEGER PRIMARY KEY, account INTEGER, record BLOB NOT NULL);";
  if (sqlite3_exec(db, schema, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(db, "schema");
  }
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO served(account, record) VALUES(?, ?)", -1, &insert,
                         nullptr) != SQLITE_OK) {
    return SqliteError(db, "prepare");
  }
  for (const Record& r : records) {  // autocommit: one transaction, durable in the WAL, per record
    const std::string encoded = tmk::ledger::EncodeRecord(r);
    const std::string blob = compress ? Compressed(encoded) : encoded;
    *record_bytes += blob.size();
    sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(r.account.value_or(0)));
    sqlite3_bind_blob(insert, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(insert) != SQLITE_DONE) {
      sqlite3_finalize(insert);
      return SqliteError(db, "insert");
    }
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  return absl::OkStatus();
}

absl::Status SqliteReadAll(sqlite3* db, bool compress, Measured* m) {
  sqlite3_stmt* select = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT record FROM served ORDER BY id", -1, &select, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db, "prepare");
  }
  std::string plain;
  while (sqlite3_step(select) == SQLITE_ROW) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(select, 0));
    std::string blob(p, static_cast<size_t>(sqlite3_column_bytes(select, 0)));
    if (compress) {
      plain.resize(ZSTD_getFrameContentSize(blob.data(), blob.size()));
      plain.resize(ZSTD_decompress(plain.data(), plain.size(), blob.data(), blob.size()));
      blob.swap(plain);
    }
    auto r = tmk::ledger::DecodeRecord(blob);
    if (!r.ok()) {
      sqlite3_finalize(select);
      return r.status();
    }
    ++m->records;
    m->response_ids += r->response_ids.size();
  }
  sqlite3_finalize(select);
  return absl::OkStatus();
}

absl::StatusOr<Measured> Sqlite(const std::vector<Record>& records, const std::string& dir,
                                bool compress) {
  Measured m{.store = compress ? "sqlite-zstd" : "sqlite"};
  fs::create_directories(dir);
  const std::string path = dir + "/ledger.db";
  sqlite3* db = nullptr;
  auto start = std::chrono::steady_clock::now();
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return SqliteError(db, "open");
  absl::Status s = SqliteAppendAll(db, records, compress, &m.record_bytes);
  // A checkpoint folds the WAL into the database file, so that the bytes counted are the table's.
  if (s.ok() && sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                          nullptr) != SQLITE_OK) {
    s = SqliteError(db, "checkpoint");
  }
  m.append_seconds = tmk::study::SecondsSince(start);
  if (s.ok()) {
    m.bytes = DirectoryBytes(dir);
    start = std::chrono::steady_clock::now();
    s = SqliteReadAll(db, compress, &m);
    m.read_seconds = tmk::study::SecondsSince(start);
  }
  sqlite3_close(db);
  if (!s.ok()) return s;
  return m;
}

nlohmann::json Row(const Measured& m) {
  const auto ids = static_cast<double>(m.response_ids), n = static_cast<double>(m.records);
  return {{"store", m.store},
          {"records", m.records},
          {"response_ids", m.response_ids},
          {"bytes", m.bytes},
          {"record_bytes", m.record_bytes},
          {"bytes_per_response_id", static_cast<double>(m.bytes) / ids},
          {"append_us_per_record", 1e6 * m.append_seconds / n},
          {"append_ns_per_token", 1e9 * m.append_seconds / ids},
          {"read_us_per_record", 1e6 * m.read_seconds / n}};
}

void PrintTable(const Flags& f, const std::vector<nlohmann::json>& rows) {
  std::cout << absl::StrFormat(
      "%d responses of up to %d tokens to %d accounts (the reference model, watermarked)\n\n",
      f.answers, f.tokens, f.accounts);
  std::cout << "| store | records | response ids | bytes per response id | append µs/record | "
               "append ns/token | read µs/record |\n|---|---|---|---|---|---|---|\n";
  for (const nlohmann::json& r : rows) {
    std::cout << absl::StrFormat(
        "| %s | %d | %d | %.2f | %.1f | %.1f | %.2f |\n", r["store"].get<std::string>(),
        r["records"].get<uint64_t>(), r["response_ids"].get<uint64_t>(),
        r["bytes_per_response_id"].get<double>(), r["append_us_per_record"].get<double>(),
        r["append_ns_per_token"].get<double>(), r["read_us_per_record"].get<double>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  tmk::study::StudyFlags flags;
  flags.Add("--answers", &f.answers)
      .Add("--tokens", &f.tokens)
      .Add("--accounts", &f.accounts)
      .Add("--threads", &f.threads)
      .Add("--dir", &f.dir)
      .Add("--out", &f.out)
      .Add("--data-dir", &f.data_dir)
      .Add("--model", &f.model);
  if (!flags.Parse(argc, argv)) return flags.failure_status();
  if (f.answers < 1 || f.tokens < 1 || f.accounts < 1 || f.threads < 1) {
    std::cerr << "--answers, --tokens, --accounts and --threads must be positive\n";
    return 2;
  }
  auto data = tmk::study::LoadStudyData(f.data_dir, f.model);
  if (!data.ok()) {
    std::cerr << data.status() << "\n";
    return 1;
  }
  std::cerr << "serving " << f.answers << " answers...\n";
  auto records = Serve(f, *data);
  if (!records.ok()) {
    std::cerr << records.status() << "\n";
    return 1;
  }
  fs::remove_all(f.dir);
  fs::create_directories(f.dir);
  std::vector<nlohmann::json> rows;
  for (const int level : {1, 3, 9}) {
    auto m = Segments(*records, absl::StrFormat("%s/segments-%d", f.dir, level), level);
    if (!m.ok()) {
      std::cerr << m.status() << "\n";
      return 1;
    }
    rows.push_back(Row(*m));
  }
  for (const bool compress : {false, true}) {
    auto m = Sqlite(*records, absl::StrFormat("%s/sqlite-%d", f.dir, compress), compress);
    if (!m.ok()) {
      std::cerr << m.status() << "\n";
      return 1;
    }
    rows.push_back(Row(*m));
  }
  fs::remove_all(f.dir);
  PrintTable(f, rows);
  if (!f.out.empty()) {
    std::ofstream(f.out) << nlohmann::json{{"answers", f.answers},
                                           {"tokens", f.tokens},
                                           {"accounts", f.accounts},
                                           {"stores", rows}}
                                .dump(2)
                         << "\n";
  }
  return 0;
}
