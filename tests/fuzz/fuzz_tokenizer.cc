// Tokenizers on arbitrary bytes: cl100k_base (tiktoken ranks, PCRE2 pre-tokeniser) and the
// SentencePiece model built at set-up. Invalid UTF-8 must be refused with a status, and every
// text that encodes must decode to itself (the contract in tokenizer.h); ids from the input are
// decoded too (out-of-range ids: a status).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tracemark/tokenizer/load.h"
#include "tracemark/tokenizer/utf8.h"

namespace {

const std::vector<std::unique_ptr<tracemark::tokenizer::Tokenizer>>& Tokenizers() {
  static auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<tracemark::tokenizer::Tokenizer>>;
    for (const char* spec : {"cl100k_base", "spm:sotu-bpe8k"}) {
      auto t = tracemark::tokenizer::LoadTokenizer(spec, TRACEMARK_DATA_DIR);
      if (t.ok()) v->push_back(*std::move(t));
    }
    if (v->empty()) std::abort();  // no data: run scripts/setup.sh
    return v;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : Tokenizers()) {
    auto ids = tok->Encode(text);
    if (ids.ok()) {
      auto back = tok->Decode(*ids);
      if (!back.ok() || *back != text) {  // the round trip is the contract
        std::fprintf(stderr, "%s: Decode(Encode(x)) != x for %zu bytes\n",
                     std::string(tok->name()).c_str(), size);
        std::abort();
      }
    }
    std::vector<int32_t> raw(size / 4);
    if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
    (void)tok->Decode(raw);
  }
  return 0;
}
