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

// Where the module is looked for: $TRACEMARK_SPM_MODULE, the build tree (for binaries run from
// it), the install prefix, then the loader's search path.
std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("TRACEMARK_SPM_MODULE"); env != nullptr && *env != '\0') {
    out.push_back(env);
    return out;
  }
  out.push_back(TRACEMARK_SPM_MODULE_BUILD_PATH);
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
