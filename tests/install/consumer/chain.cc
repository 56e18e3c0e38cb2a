// Builds against an installed tracemark's engine component: one step through the serving chain.
#include <iostream>
#include <vector>

#include "tracemark/engine/serving_chain.h"
#include "tracemark/watermark/keys.h"

int main() {
  auto key = tracemark::watermark::Key::Generate();
  tracemark::watermark::Config config;
  config.vocab_size = 1000;
  auto wm = tracemark::watermark::Watermarker::Create(*key, config);
  if (!wm.ok()) return 1;
  auto chain = tracemark::engine::ServingChain::Create(wm->get());
  if (!chain.ok()) return 1;
  std::vector<tracemark::watermark::Candidate> cands = {{1, 0.5f}, {2, 0.25f}, {3, 0.0f}};
  const std::vector<int32_t> history = {7, 8, 9};
  tracemark::engine::Response response;
  auto step = chain->ProcessSparse(nullptr, history, absl::MakeSpan(cands), &response);
  if (!step.ok()) return 1;
  std::cout << "serving chain: layer " << static_cast<int>(step->layer) << "\n";
  return 0;
}
