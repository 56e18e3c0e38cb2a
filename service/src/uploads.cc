#include "uploads.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tracemark/base/file_io.h"
#include "tracemark/base/status_macros.h"
#include "tracemark/watermark/digest.h"

namespace tracemark::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex(2 * bytes + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  hex.pop_back();
  return hex;
}

// A failed write of an upload, with the system's reason when there is one (a full disk is
// ResourceExhausted: the client may retry later or elsewhere).
absl::Status UploadError(const std::string& name) {
  const std::string what = absl::StrCat("cannot store upload '", name, "'");
  return errno != 0 ? base::ErrnoStatus(errno, what) : absl::UnavailableError(what);
}

// Makes a written file (or directory) durable.
absl::Status SyncPath(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", p.string()));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("cannot sync ", p.string()));
  return absl::OkStatus();
}

// A valid upload name: a plain file name, printable, no path.
bool PlainFileName(const std::string& n) {
  if (n.empty() || n.size() > 255 || n == "." || n == "..") return false;
  for (unsigned char c : n) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool LowerHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Writes a request's declared uploads to `paths` (one each), one after another as their chunks
// arrive: each upload whole, in the declared order. An empty upload is complete once its file
// exists.
class UploadWriter {
 public:
  // `req` and `paths` must outlive the writer.
  UploadWriter(const v1::ScanRequest& req, const std::vector<fs::path>& paths)
      : req_(req), paths_(paths) {}

  // Opens the file of the next upload that still needs bytes, creating the empty ones on its way.
  absl::Status OpenNext() {
    while (current_ < req_.uploads_size()) {
      errno = 0;
      out_ = std::ofstream(paths_[current_], std::ios::binary | std::ios::trunc);
      if (!out_) return UploadError(name());
      if (req_.uploads(current_).size() > 0) return absl::OkStatus();
      out_.close();  // an empty file is complete as soon as it exists
      ++current_;
    }
    return absl::OkStatus();
  }

  // Appends one chunk; InvalidArgument for a chunk of another upload than the one expected or
  // one beyond its declared size. An upload's last chunk closes it and opens the next.
  absl::Status Write(const v1::InputChunk& ch) {
    if (current_ >= req_.uploads_size() || ch.file() != static_cast<uint32_t>(current_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("a chunk for upload ", ch.file(), " arrived while upload ", current_,
                       " was expected (uploads are sent whole, in the declared order)"));
    }
    const uint64_t size = req_.uploads(current_).size();
    if (written_ + ch.data().size() > size) {
      return absl::InvalidArgumentError(
          absl::StrCat("upload '", name(), "' is longer than its declared ", size, " bytes"));
    }
    errno = 0;
    out_.write(ch.data().data(), static_cast<std::streamsize>(ch.data().size()));
    if (!out_) return UploadError(name());
    written_ += ch.data().size();
    if (written_ < size) return absl::OkStatus();
    out_.close();
    if (!out_) return UploadError(name());
    ++current_;
    written_ = 0;
    return OpenNext();
  }

  // OK when every upload has all its declared bytes; InvalidArgument naming the first that has
  // not.
  absl::Status CheckComplete() const {
    if (current_ >= req_.uploads_size()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("upload '", name(), "' ended after ", written_,
                                                   " of ", req_.uploads(current_).size(),
                                                   " bytes"));
  }

 private:
  const std::string& name() const { return req_.uploads(current_).name(); }

  const v1::ScanRequest& req_;
  const std::vector<fs::path>& paths_;
  int current_ = 0;       // the upload being written
  uint64_t written_ = 0;  // its bytes so far
  std::ofstream out_;
};

// Reads the InputChunks that follow the ScanRequest on `in` into `paths`, until the client
// closes its side. Errors as Uploads::Receive says.
absl::Status ReceiveChunks(grpc::ServerContext* ctx, const v1::ScanRequest& req,
                           grpc::ServerReader<v1::SubmitScanRequest>* in,
                           const std::vector<fs::path>& paths) {
  UploadWriter writer(req, paths);
  TRACEMARK_RETURN_IF_ERROR(writer.OpenNext());
  v1::SubmitScanRequest msg;
  while (in->Read(&msg)) {
    if (ctx->IsCancelled()) return absl::DeadlineExceededError("the call was cancelled");
    if (!msg.has_chunk()) {
      return absl::InvalidArgumentError("only InputChunks may follow the ScanRequest");
    }
    TRACEMARK_RETURN_IF_ERROR(writer.Write(msg.chunk()));
  }
  if (ctx->IsCancelled()) return absl::DeadlineExceededError("the call was cancelled");
  return writer.CheckComplete();
}

}  // namespace

Uploads::Uploads(const ServerOptions& options)
    : folder_(options.files_dir.empty() ? fs::path(options.db + ".files")
                                        : fs::path(options.files_dir)),
      inputs_roots_(options.inputs_roots),
      max_upload_bytes_(options.max_upload_bytes) {}

absl::Status Uploads::CreateFolder() const {
  std::error_code ec;
  fs::create_directories(folder_, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the uploads folder ", folder_.string()));
  }
  return absl::OkStatus();
}

std::string Uploads::NewStaging() { return absl::StrCat("u-", RandomHex(8)); }

absl::StatusOr<std::string> Uploads::ServerPath(const std::string& p) const {
  if (inputs_roots_.empty()) {
    return absl::PermissionDeniedError(
        "this server takes no server-side paths (start it with --inputs-root)");
  }
  std::error_code ec;
  const fs::path real = fs::canonical(p, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("server path '", p, "' does not exist"));
  for (const std::string& root : inputs_roots_) {
    const fs::path r = fs::canonical(root, ec);
    if (ec) continue;
    const auto mismatch = std::mismatch(r.begin(), r.end(), real.begin(), real.end());
    if (mismatch.first == r.end()) return real.string();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("server path '", p, "' is not under an inputs root of this server"));
}

absl::Status Uploads::AddServerPaths(const v1::ScanRequest& req, detect::ScanJobSpec* spec,
                                     json* files) const {
  for (const std::string& p : req.server_paths()) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string path, ServerPath(p));
    spec->inputs.push_back(path);
    files->push_back({{"name", p}, {"path", path}, {"seen_in", false}});
  }
  for (const std::string& p : req.seen_in_server_paths()) {
    TRACEMARK_ASSIGN_OR_RETURN(std::string path, ServerPath(p));
    spec->seen_in.push_back(path);
    files->push_back({{"name", p}, {"path", path}, {"seen_in", true}});
  }
  return absl::OkStatus();
}

absl::Status Uploads::CheckDeclared(const v1::ScanRequest& req) const {
  if (req.uploads_size() > 1000) return absl::InvalidArgumentError("more than 1000 uploads");
  uint64_t total = 0;
  for (const v1::UploadedFile& u : req.uploads()) {
    if (!PlainFileName(u.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("upload name '", u.name(), "' is not a plain file name"));
    }
    if (!u.sha256().empty() && !LowerHex64(u.sha256())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "upload '", u.name(), "': sha256 must be 64 lowercase hex digits, or empty"));
    }
    total += u.size();
    if (total > max_upload_bytes_ || u.size() > max_upload_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the uploads exceed the server's limit of ", max_upload_bytes_, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status Uploads::Receive(grpc::ServerContext* ctx, const v1::ScanRequest& req,
                              grpc::ServerReader<v1::SubmitScanRequest>* in,
                              const std::string& staging, detect::ScanJobSpec* spec,
                              json* files) const {
  const fs::path dir = folder_ / staging;
  if (req.uploads_size() > 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir.string()));
  }
  std::vector<fs::path> paths;
  for (int i = 0; i < req.uploads_size(); ++i) {
    paths.push_back(dir / absl::StrFormat("%04d-%s", i, req.uploads(i).name()));
  }
  TRACEMARK_RETURN_IF_ERROR(ReceiveChunks(ctx, req, in, paths));
  TRACEMARK_RETURN_IF_ERROR(Seal(req, paths, spec, files));
  if (req.uploads_size() > 0) {
    TRACEMARK_RETURN_IF_ERROR(SyncPath(dir, true));
    TRACEMARK_RETURN_IF_ERROR(SyncPath(folder_, true));
  }
  return absl::OkStatus();
}

absl::Status Uploads::Seal(const v1::ScanRequest& req, const std::vector<fs::path>& paths,
                           detect::ScanJobSpec* spec, json* files) const {
  for (int i = 0; i < req.uploads_size(); ++i) {
    const v1::UploadedFile& u = req.uploads(i);
    TRACEMARK_ASSIGN_OR_RETURN(std::string sha, watermark::Sha256HexOfFile(paths[i].string()));
    if (!u.sha256().empty() && u.sha256() != sha) {
      return absl::DataLossError(absl::StrCat("upload '", u.name(), "' has SHA-256 ", sha,
                                              ", not the declared ", u.sha256()));
    }
    TRACEMARK_RETURN_IF_ERROR(SyncPath(paths[i], false));
    (u.seen_in() ? spec->seen_in : spec->inputs).push_back(paths[i].string());
    files->push_back({{"name", u.name()},
                      {"path", paths[i].string()},
                      {"bytes", u.size()},
                      {"sha256", sha},
                      {"seen_in", u.seen_in()}});
  }
  return absl::OkStatus();
}

void Uploads::Discard(const std::string& staging) const {
  std::error_code ec;
  fs::remove_all(folder_ / staging, ec);
}

void Uploads::RemoveOrphans(JobStore* store, const ServeLog& log) const {
  std::error_code ec;
  if (!fs::is_directory(folder_, ec)) return;
  absl::flat_hash_map<std::string, bool> used;
  ListQuery q;
  q.limit = 1000;
  for (;;) {
    absl::StatusOr<std::vector<JobRecord>> page = store->List(q);
    if (!page.ok() || page->empty()) break;
    for (const JobRecord& j : *page) {
      json s = json::parse(j.spec, nullptr, false);
      if (s.is_object()) used[s.value("staging", "")] = true;
    }
    q.before_sequence = page->back().sequence;
  }
  for (const fs::directory_entry& e : fs::directory_iterator(folder_, ec)) {
    const std::string name = e.path().filename().string();
    if (absl::StartsWith(name, "u-") && !used.contains(name)) {
      fs::remove_all(e.path(), ec);
      log(absl::StrCat("removed ", name, ", an upload no scan names"));
    }
  }
}

}  // namespace tracemark::service
