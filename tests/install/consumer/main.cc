// Builds against an installed tracemark through find_package(tracemark).
#include <iostream>

#include "tracemark/watermark/config.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/watermarker.h"

int main() {
  auto key = tracemark::watermark::Key::Generate();
  tracemark::watermark::Config config;
  config.vocab_size = 1000;
  auto wm = tracemark::watermark::Watermarker::Create(*key, config);
  if (!wm.ok()) return 1;
  std::cout << "watermarker for key " << (*wm)->key_id() << "\n";
  return 0;
}
