// A SQLite VFS for tests that forwards every call to the platform's default VFS and fails on
// command: the job store's disk filling up, writes or syncs failing with I/O errors, reads going
// bad. Installed as the default VFS, so a JobStore opened afterwards goes through it unchanged.
//
//   FaultVfs::Install();                          // once per process; a pure forwarder until Set
//   FaultVfs::Set(FaultVfs::kDiskFull, 4096);     // 4 KiB more may be written, then SQLITE_FULL
//   ... the store's calls fail with Unavailable ...
//   FaultVfs::Set(FaultVfs::kNone);               // space again
#ifndef TRACEMARK_TESTS_SERVICE_FAULT_VFS_H_
#define TRACEMARK_TESTS_SERVICE_FAULT_VFS_H_

#include <cstdint>

namespace tracemark::service::testing {

class FaultVfs {
 public:
  enum Fault {
    kNone,        // forward everything
    kDiskFull,    // writes fail with SQLITE_FULL once `after_bytes` more bytes have been written
    kWriteError,  // writes fail with SQLITE_IOERR_WRITE (after `after_bytes`)
    kSyncError,   // fsyncs fail with SQLITE_IOERR_FSYNC
    kReadError,   // reads fail with SQLITE_IOERR_READ
  };

  // Registers the VFS as SQLite's default (idempotent, thread-safe).
  static void Install();
  // Takes effect for every open file at once.
  static void Set(Fault fault, int64_t after_bytes = 0);
  // Calls failed on purpose since the process started.
  static uint64_t Injected();
};

}  // namespace tracemark::service::testing

#endif  // TRACEMARK_TESTS_SERVICE_FAULT_VFS_H_
