// A real tokenizer and a Kneser-Ney model trained on part of the real corpus, shared by the
// end-to-end tests (trained once per test binary).
#ifndef TRACEMARK_TESTS_REFERENCE_REFERENCE_FIXTURE_H_
#define TRACEMARK_TESTS_REFERENCE_REFERENCE_FIXTURE_H_

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "testing/data_required.h"
#include "tracemark/reference/reference_model.h"
#include "tracemark/tokenizer/tiktoken.h"
#include "tracemark/watermark/keys.h"

namespace tracemark::reference {

class ReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = tokenizer::LoadTiktokenFromDataDir(TRACEMARK_DATA_DIR, "cl100k_base");
    auto files = CorpusFiles(TRACEMARK_DATA_DIR);
    if (!tok.ok() || !files.ok()) return;
    files->resize(40);  // a fifth of the corpus keeps the test fast
    auto model = TrainOnTextFiles(*files, **tok, 4);
    ASSERT_TRUE(model.ok()) << model.status();
    tok_ = std::move(*tok).release();
    model_ = new refmodel::KneserNeyModel(*std::move(model));
  }
  void SetUp() override {
    TRACEMARK_REQUIRE_DATA(tok_ != nullptr, "the tokenizer data or the corpus");
  }
  static watermark::Key Master() {
    std::vector<uint8_t> b(32, 9);
    return *watermark::Key::FromBytes(b);
  }
  static inline tokenizer::Tokenizer* tok_ = nullptr;
  static inline refmodel::KneserNeyModel* model_ = nullptr;
};

}  // namespace tracemark::reference

#endif  // TRACEMARK_TESTS_REFERENCE_REFERENCE_FIXTURE_H_
