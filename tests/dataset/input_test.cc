#include "tracemark/dataset/input.h"

#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tracemark/dataset/byte_stream.h"
#include "tracemark/dataset/document.h"

namespace tracemark::dataset {
namespace {

namespace fs = std::filesystem;

class InputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tracemark_input_test_" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  static std::string Gzip(const std::string& s) {
    z_stream z{};
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, s.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
    z.avail_in = static_cast<uInt>(s.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  }
  static std::string Zstd(const std::string& s) {
    std::string out(ZSTD_compressBound(s.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
    return out;
  }
  static std::string ReadAll(const std::string& path) {
    auto in = OpenByteStream(path);
    EXPECT_TRUE(in.ok()) << in.status();
    std::string out;
    char buf[7];  // small reads cross every internal boundary
    for (;;) {
      auto got = (*in)->Read(buf, sizeof(buf));
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok() || *got == 0) break;
      out.append(buf, *got);
    }
    return out;
  }
  static std::vector<Document> ReadDocs(DocumentReader& r) {
    std::vector<Document> out;
    Document d;
    while (true) {
      auto more = r.Next(&d);
      EXPECT_TRUE(more.ok()) << more.status();
      if (!more.ok() || !*more) break;
      out.push_back(std::move(d));
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(InputTest, DecompressesGzipAndZstdIncludingConcatenatedMembers) {
  std::string big;
  for (int i = 0; i < 50000; ++i) big += "line " + std::to_string(i) + " \xC3\xA9\n";
  EXPECT_EQ(ReadAll(Write("a.gz", Gzip(big))), big);
  EXPECT_EQ(ReadAll(Write("b.zst", Zstd(big))), big);
  EXPECT_EQ(ReadAll(Write("c.gz", Gzip("first\n") + Gzip("second\n"))), "first\nsecond\n");
  EXPECT_EQ(ReadAll(Write("d.zst", Zstd("first\n") + Zstd("second\n"))), "first\nsecond\n");
  EXPECT_EQ(ReadAll(Write("e.txt", big)), big);
}

TEST_F(InputTest, CorruptOrTruncatedCompressedDataIsDataLoss) {
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  const std::string gz = Gzip(big), zs = Zstd(big);
  for (const std::string& path :
       {Write("t.gz", gz.substr(0, gz.size() / 2)), Write("t.zst", zs.substr(0, zs.size() / 2)),
        Write("g.gz", "this is not gzip at all")}) {
    auto in = OpenByteStream(path);
    ASSERT_TRUE(in.ok());
    absl::Status st;
    char buf[4096];
    for (;;) {
      auto got = (*in)->Read(buf, sizeof(buf));
      if (!got.ok()) {
        st = got.status();
        break;
      }
      if (*got == 0) break;
    }
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << path;
    EXPECT_NE(st.message().find(path), std::string::npos);
  }
  EXPECT_EQ(OpenByteStream((dir_ / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(InputTest, LineReaderHandlesCrlfLongLinesAndAMissingFinalNewline) {
  const std::string long_line(1000, 'z');
  auto in = OpenByteStream(Write("l.txt", "a\r\nbb\n" + long_line + "\n\nlast"));
  ASSERT_TRUE(in.ok());
  LineReader lines(*std::move(in), 100);
  std::string line;
  bool too_long = false;
  std::vector<std::pair<std::string, bool>> got;
  while (*lines.Next(&line, &too_long)) got.emplace_back(line, too_long);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], std::make_pair(std::string("a"), false));
  EXPECT_EQ(got[1], std::make_pair(std::string("bb"), false));
  EXPECT_TRUE(got[2].second);
  EXPECT_EQ(got[2].first.size(), 100u);
  EXPECT_EQ(got[3], std::make_pair(std::string(""), false));
  EXPECT_EQ(got[4], std::make_pair(std::string("last"), false));
  EXPECT_EQ(lines.line_number(), 5u);
}

TEST(ParseRecord, ReadsEveryShapeScoringOnlyModelTurns) {
  Document d;
  ASSERT_TRUE(ParseRecordText(R"({"id": 7, "messages": [
      {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"},
      {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"},
                                        {"type": "text", "text": "b"}]}]})",
                              &d)
                  .ok());
  EXPECT_EQ(d.id, "7");
  ASSERT_EQ(d.segments.size(), 2u);
  EXPECT_EQ(d.segments[0].context, "hi");
  EXPECT_EQ(d.segments[0].text, "hello");
  EXPECT_EQ(d.segments[1].context, "more");
  EXPECT_EQ(d.segments[1].text, "ab");

  Document s;
  ASSERT_TRUE(ParseRecordText(R"({"conversations": [{"from": "human", "value": "q"},
      {"from": "gpt", "value": "answer"}]})",
                              &s)
                  .ok());
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_EQ(s.segments[0].context, "q");
  EXPECT_EQ(s.segments[0].text, "answer");

  Document a;
  ASSERT_TRUE(
      ParseRecordText(R"({"instruction": "do", "input": "this", "output": "done"})", &a).ok());
  ASSERT_EQ(a.segments.size(), 1u);
  EXPECT_EQ(a.segments[0].context, "do\n\nthis");
  EXPECT_EQ(a.segments[0].text, "done");

  Document p;
  ASSERT_TRUE(ParseRecordText(R"({"prompt": "x", "completion": "y"})", &p).ok());
  EXPECT_EQ(p.segments[0].text, "y");
  Document t;
  ASSERT_TRUE(ParseRecordText(R"({"text": "plain", "id": "doc-1"})", &t).ok());
  EXPECT_EQ(t.id, "doc-1");
  EXPECT_EQ(t.segments[0].context, "");
}

TEST(ParseRecord, RejectsWithAReason) {
  Document d;
  auto reason = [&](const char* line) { return std::string(ParseRecordText(line, &d).message()); };
  EXPECT_NE(reason(R"({"messages": [ broken)").find("invalid JSON at byte"), std::string::npos);
  EXPECT_NE(reason(R"([1, 2])").find("not a JSON object"), std::string::npos);
  EXPECT_NE(reason(R"({"foo": 1})").find("unknown record shape"), std::string::npos);
  EXPECT_NE(reason(R"({"messages": [{"role": "user", "content": "only a question"}]})")
                .find("no model-written text"),
            std::string::npos);
  EXPECT_NE(reason(R"({"messages": [{"content": "x"}]})").find("messages[0] has no \"role\""),
            std::string::npos);
  EXPECT_NE(reason(R"({"messages": "x"})").find("not a list"), std::string::npos);
  EXPECT_NE(reason(R"({"instruction": "a", "output": 3})").find("\"output\" is not a string"),
            std::string::npos);
}

TEST_F(InputTest, WalksDirectoriesInOrderAndReportsBadRecordsWithTheirLine) {
  const std::string ok = R"({"messages": [{"role": "assistant", "content": "x"}]})";
  Write("d/b.jsonl", ok + "\n" + "not json\n" + "\n" + ok + "\n");
  Write("d/a.jsonl.gz", Gzip(ok + "\n"));
  Write("d/sub/c.txt", "some text\n");
  Write("d/.hidden.jsonl", ok + "\n");
  Write("d/e.json", "[" + ok + ", {\"foo\": 2}, " + ok + "]");
  auto r = DocumentReader::Open({(dir_ / "d").string()});
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<Document> docs = ReadDocs(**r);
  std::vector<std::string> sources;
  for (const Document& d : docs) sources.push_back(fs::path(d.source).filename().string());
  EXPECT_EQ(sources, (std::vector<std::string>{"a.jsonl.gz:1", "b.jsonl:1", "b.jsonl:4", "e.json#1",
                                               "e.json#3", "c.txt"}));
  for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(docs[i].index, i);
  EXPECT_NE(docs.back().more, nullptr);  // text is read by whoever scores it
  ASSERT_EQ((*r)->skipped().size(), 2u);
  EXPECT_EQ(fs::path((*r)->skipped()[0].source).filename().string(), "b.jsonl:2");
  EXPECT_NE((*r)->skipped()[0].reason.find("invalid JSON"), std::string::npos);
  EXPECT_EQ(fs::path((*r)->skipped()[1].source).filename().string(), "e.json#2");
  EXPECT_EQ((*r)->files(), 4u);
  EXPECT_GT((*r)->bytes_read(), 0u);
  EXPECT_EQ(DocumentReader::Open({(dir_ / "nope").string()}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(DocumentReader::Open({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(InputTest, TextFilesComeInBoundedPiecesThatRebuildTheFile) {
  std::string text;
  for (int i = 0; i < 3000; ++i)
    text += "Sentence number " + std::to_string(i) + " \xE2\x82\xAC.\n";
  text += std::string(5000, 'q');  // a run with no newline: cut at a UTF-8 boundary
  text += "\xF0\x9F\x98\x80 end";
  ReaderOptions opt;
  opt.text_piece_bytes = 1000;
  auto r = DocumentReader::Open({Write("big.txt.zst", Zstd(text))}, opt);
  ASSERT_TRUE(r.ok());
  std::vector<Document> docs = ReadDocs(**r);
  ASSERT_EQ(docs.size(), 1u);
  std::string rebuilt;
  Segment seg;
  int pieces = 0;
  while (*docs[0].more->Next(&seg)) {
    EXPECT_LE(seg.text.size(), 1000u);
    EXPECT_EQ(seg.continues, pieces > 0);
    rebuilt += seg.text;
    ++pieces;
  }
  EXPECT_EQ(rebuilt, text);
  EXPECT_GT(pieces, 60);

  auto bin = DocumentReader::Open({Write("x.bin", std::string("ab\0cd", 5))});
  std::vector<Document> b = ReadDocs(**bin);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NE(b[0].more->Next(&seg).status().message().find("binary"), std::string::npos);
}

}  // namespace
}  // namespace tracemark::dataset
