// The serving chain's last stage: one ledger record per response (ledger/record.h), written when
// the engine ends the response (ServingChain::EndResponse), so that the provider knows which
// account was served which windows — the input of ledger-keyed attribution (docs/ledger.md).
//
//   auto writer = ledger::Writer::Open(dir);
//   engine::LedgerStage stage{writer->get(), /*epoch=*/0, "cl100k_base"};
//   auto chain = engine::ServingChain::Create(wm.get(), canary.get(), &stage);
//   ... steps ...
//   TRACEMARK_RETURN_IF_ERROR(chain->EndResponse(&*account, prompt_ids, response_ids, &response));
#ifndef TRACEMARK_ENGINE_LEDGER_STAGE_H_
#define TRACEMARK_ENGINE_LEDGER_STAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tracemark/ledger/writer.h"

namespace tracemark::engine {

struct LedgerStage {
  ledger::Writer* writer = nullptr;  // not owned; thread-safe, so chains on many threads share it
  uint32_t epoch = 0;                // the epoch of the chain's watermarker key
  std::string tokenizer;             // the spec of the tokenizer the ids belong to
  // The prompt's trailing ids each record keeps: 0 keeps the chain's history_width() (every
  // response position's context, and no more of the prompt); SIZE_MAX keeps the whole prompt.
  size_t prompt_ids = 0;
};

}  // namespace tracemark::engine

#endif  // TRACEMARK_ENGINE_LEDGER_STAGE_H_
