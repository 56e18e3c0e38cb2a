// Where the data set-up filled lives (tokenizer files, the corpus, the reference model), for the
// CLI and the Python package alike.
#ifndef TRACEMARK_BASE_DATA_DIR_H_
#define TRACEMARK_BASE_DATA_DIR_H_

#include <string>

namespace tracemark::base {

// `given` when it is not empty (--data-dir, data_dir=); else $TRACEMARK_DATA_DIR; else ./data
// when it exists (a checkout); else the data an installed tracemark has beside its program
// (BIN/../share/tracemark, as `cmake --install` lays it out); else "data".
std::string DataDir(const std::string& given = "");

}  // namespace tracemark::base

#endif  // TRACEMARK_BASE_DATA_DIR_H_
