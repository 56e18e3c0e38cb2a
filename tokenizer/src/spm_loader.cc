// Opens the SentencePiece module once (spm_shim.h says why it is a module).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "spm_shim.h"

namespace tracemark::tokenizer::internal {
namespace {

// The folder of the binary or shared object this code was linked into ("" if unknown).
std::string OwnFolder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&OwnFolder), &info) == 0 || info.dli_fname == nullptr) {
    return "";
  }
  const std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

// Where the module is looked for: $TRACEMARK_SPM_MODULE, the build tree (for binaries run from
// it), beside the object holding this code (the Python package ships it there), the install
// prefix, then the loader's search path.
std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("TRACEMARK_SPM_MODULE"); env != nullptr && *env != '\0') {
    out.push_back(env);
    return out;
  }
  out.push_back(TRACEMARK_SPM_MODULE_BUILD_PATH);
  if (const std::string own = OwnFolder(); !own.empty()) {
    out.push_back(own + TRACEMARK_SPM_MODULE_NAME);
  }
  out.push_back(TRACEMARK_SPM_MODULE_INSTALL_PATH);
  out.push_back(TRACEMARK_SPM_MODULE_NAME);
  return out;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TRACEMARK_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TRACEMARK_SANITIZED 1
#endif

int OpenFlags() {
#if defined(TRACEMARK_SANITIZED)
  return RTLD_NOW | RTLD_LOCAL;  // sanitizer runtimes refuse RTLD_DEEPBIND
#else
  return RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
}

struct Module {
  SpmFactory factory = nullptr;
  std::string error;
};

const Module& Load() {
  static const Module* module = [] {
    auto* m = new Module;
#if defined(TRACEMARK_SANITIZED)
    // Without RTLD_DEEPBIND, libsentencepiece's protobuf-lite binds to a libprotobuf already in
    // the process, whose version check aborts it on load. Refuse cleanly instead.
    if (dlsym(RTLD_DEFAULT, "_ZN6google8protobuf8internal13VerifyVersionEiiPKc") != nullptr) {
      m->error =
          "SentencePiece models cannot be loaded by a sanitizer build of a program that links "
          "libprotobuf (sanitizers refuse RTLD_DEEPBIND); use a normal build";
      return m;
    }
#endif
    std::string tried;
    for (const std::string& path : Candidates()) {
      const bool explicit_path = path.find('/') != std::string::npos;
      if (explicit_path && access(path.c_str(), R_OK) != 0) {
        tried += " " + path + " (absent)";
        continue;
      }
      void* handle = dlopen(path.c_str(), OpenFlags());
      if (handle == nullptr) {
        const char* why = dlerror();
        tried += " " + path + " (" + (why != nullptr ? why : "?") + ")";
        continue;
      }
      m->factory = reinterpret_cast<SpmFactory>(dlsym(handle, kSpmFactorySymbol));
      if (m->factory != nullptr) return m;
      tried += " " + path + " (no entry point)";
      dlclose(handle);
    }
    m->error = "cannot load the SentencePiece module; tried:" + tried;
    return m;
  }();
  return *module;
}

}  // namespace

std::unique_ptr<SpmModel> SpmModel::FromSerialized(std::string_view serialized,
                                                   std::string* error) {
  const Module& m = Load();
  if (m.factory == nullptr) {
    *error = m.error;
    return nullptr;
  }
  return std::unique_ptr<SpmModel>(m.factory(serialized.data(), serialized.size(), error));
}

}  // namespace tracemark::tokenizer::internal
