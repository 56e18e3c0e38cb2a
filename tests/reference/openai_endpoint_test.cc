// The OpenAI-compatible endpoint over the real reference model, through real HTTP, and the
// white-box test on what it reports: the answers' log-probabilities, their bytes and their
// alternatives, the errors, provider mode with API keys, and WhiteBoxScorer on known cases.
#include "tracemark/reference/openai_endpoint.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "reference_fixture.h"
#include "tracemark/detect/scanner.h"
#include "tracemark/detect/verifier.h"
#include "tracemark/detect/white_box.h"
#include "tracemark/net/http_client.h"
#include "tracemark/probe/probe.h"
#include "tracemark/watermark/digest.h"
#include "tracemark/watermark/watermarker.h"

namespace tracemark::reference {
namespace {

using nlohmann::json;

class OpenAiEndpointTest : public ReferenceTest {
 protected:
  void Serve(OpenAiEndpointOptions o, const refmodel::KneserNeyModel* model = nullptr) {
    server_.reset();
    gen_ = std::make_unique<ReferenceGenerator>(model != nullptr ? model : model_, tok_);
    endpoint_ = std::make_unique<OpenAiEndpoint>(gen_.get(), tok_, std::move(o));
    server_ = *net::HttpServer::Start(
        {}, [this](const net::HttpRequest& r) { return endpoint_->Handle(r); });
    client_ = *net::HttpClient::Create();
  }
  net::HttpResult Post(const json& body, const std::string& key = "") {
    std::vector<std::string> h = {"Content-Type: application/json"};
    if (!key.empty()) h.push_back("Authorization: Bearer " + key);
    auto r = client_->Send("POST", Url("/v1/chat/completions"), h, body.dump(), 30);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }
  std::string Url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }
  static json Chat(const std::string& text, int max_tokens) {
    return {{"messages", json::array({{{"role", "user"}, {"content", text}}})},
            {"max_tokens", max_tokens}};
  }
  std::unique_ptr<ReferenceGenerator> gen_;
  std::unique_ptr<OpenAiEndpoint> endpoint_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(OpenAiEndpointTest, AnswersWithExactLogprobs) {
  Serve({});
  json req = Chat("The state of the Union", 40);
  req["logprobs"] = true;
  req["top_logprobs"] = 5;
  req["seed"] = 3;
  const net::HttpResult r = Post(req);
  ASSERT_EQ(r.status, 200) << r.body;
  const json a = json::parse(r.body);
  EXPECT_EQ(a["object"], "chat.completion");
  EXPECT_EQ(a["usage"]["completion_tokens"], 40);
  const std::string text = a["choices"][0]["message"]["content"];
  const json& content = a["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 40u);
  std::string joined;
  std::vector<int32_t> ids = *tok_->Encode("The state of the Union");
  std::vector<float> lp(static_cast<size_t>(model_->vocab_size()));
  for (const json& e : content) {
    std::string bytes;
    for (int b : e["bytes"]) bytes.push_back(static_cast<char>(b));
    joined += bytes;
    ASSERT_EQ(e["top_logprobs"].size(), 5u);
    // The reported numbers are the model's own: its argmax first, the sampled token's value.
    model_->LogProbs(ids, absl::MakeSpan(lp));
    const auto best = std::max_element(lp.begin(), lp.end()) - lp.begin();
    EXPECT_EQ(e["top_logprobs"][0]["token"], *tok_->TokenBytes(static_cast<int32_t>(best)));
    EXPECT_NEAR(e["top_logprobs"][0]["logprob"].get<double>(), lp[static_cast<size_t>(best)], 1e-5);
    for (size_t k = 1; k < 5; ++k) {
      EXPECT_LE(e["top_logprobs"][k]["logprob"].get<double>(),
                e["top_logprobs"][k - 1]["logprob"].get<double>());
    }
    int32_t id = -1;
    for (int32_t c = 0; c < tok_->vocab_size(); ++c) {
      if (*tok_->TokenBytes(c) == bytes) {
        id = c;
        break;
      }
    }
    ASSERT_GE(id, 0);
    EXPECT_NEAR(e["logprob"].get<double>(), lp[static_cast<size_t>(id)], 1e-5);
    ids.push_back(id);
  }
  EXPECT_EQ(joined, text);
  // The same seed gives the same answer; the model list names the model.
  EXPECT_EQ(json::parse(Post(req).body)["choices"][0]["message"]["content"], text);
  auto models = client_->Send("GET", Url("/v1/models"), {}, "", 10);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "tracemark-reference");
}

TEST_F(OpenAiEndpointTest, BadRequestsAreOpenAiErrors) {
  Serve({});
  auto status_of = [&](const json& body) { return Post(body).status; };
  EXPECT_EQ(Post(Chat("x", 3)).status, 200);
  json j = Chat("x", 3);
  j["model"] = "gpt-17";
  EXPECT_EQ(status_of(j), 404);
  EXPECT_EQ(status_of({{"messages", json::array()}}), 400);
  j = Chat("x", 0);
  EXPECT_EQ(status_of(j), 400);
  j = Chat("x", 3);
  j["stream"] = true;
  EXPECT_EQ(status_of(j), 400);
  j = Chat("x", 3);
  j["top_logprobs"] = 3;  // without logprobs
  EXPECT_EQ(status_of(j), 400);
  j = Chat("x", 3);
  j["logprobs"] = "yes";  // not a boolean
  EXPECT_EQ(status_of(j), 400);
  j = Chat("x", 3);
  j["stream"] = 1;
  EXPECT_EQ(status_of(j), 400);
  j = Chat("x", 3);
  j["messages"][0]["content"] = json::array({{{"type", "text"}, {"text", "The Union"}}});
  EXPECT_EQ(status_of(j), 200);
  j = Chat("x", 3);
  j["temperature"] = -1;
  EXPECT_EQ(status_of(j), 400);
  auto r = client_->Send("POST", Url("/v1/chat/completions"), {}, "{not json", 10);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(json::parse(r->body)["error"]["message"].is_string());
  EXPECT_EQ(client_->Send("GET", Url("/v1/chat/completions"), {}, "", 10)->status, 405);
  EXPECT_EQ(client_->Send("GET", Url("/v2/x"), {}, "", 10)->status, 404);
}

TEST_F(OpenAiEndpointTest, ProviderModeWatermarksEachKeysAccount) {
  watermark::Config config;
  config.vocab_size = tok_->vocab_size();
  const watermark::Key epoch = *watermark::DeriveEpochKey(Master(), 0);
  auto wm = *watermark::Watermarker::Create(epoch, config);
  OpenAiEndpointOptions o;
  o.watermarker = wm.get();
  o.api_key_accounts = {{watermark::Sha256Hex("sk-a"), 21}, {watermark::Sha256Hex("sk-b"), 22}};
  Serve(std::move(o));
  EXPECT_EQ(Post(Chat("The Congress", 5)).status, 401);
  EXPECT_EQ(Post(Chat("The Congress", 5), "sk-c").status, 401);
  json req = Chat("The Congress", 1500);
  req["seed"] = 11;  // the same answer on every run (without a seed, each request differs)
  const net::HttpResult r = Post(req, "sk-b");
  ASSERT_EQ(r.status, 200);
  const std::string text = json::parse(r.body)["choices"][0]["message"]["content"];
  std::vector<int32_t> ids = *tok_->Encode("The Congress");
  const size_t from = ids.size();
  const std::vector<int32_t> answer = *tok_->Encode(text);
  ids.insert(ids.end(), answer.begin(), answer.end());
  auto v = *detect::Verifier::Create(Master(), config, {0});
  auto d = *v->DetectIds(ids, from, {});
  EXPECT_LT(d.provider_p_value.value(), 1e-6);
  ASSERT_TRUE(d.attributed_account.has_value());
  EXPECT_EQ(*d.attributed_account, 22u);
}

TEST_F(OpenAiEndpointTest, WhiteBoxScoresTheReportedTopTokens) {
  watermark::Config config;
  config.vocab_size = tok_->vocab_size();
  auto v = *detect::Verifier::Create(Master(), config, {0});
  auto wm = *watermark::Watermarker::Create(*watermark::DeriveEpochKey(Master(), 0), config);
  auto scorer = *detect::WhiteBoxScorer::Create(*tok_);
  const ReferenceGenerator gen(model_, tok_);
  GenerateOptions o;
  o.max_tokens = 400;
  o.top_logprobs = 1;
  auto p_of = [&](const std::vector<dataset::TokenChoice>& choices,
                  const std::vector<int32_t>& prompt, uint64_t* scored = nullptr) {
    std::vector<watermark::TextStatistics> stats;
    auto n = scorer.Score(*v, choices, prompt, &stats);
    EXPECT_TRUE(n.ok()) << n.status();
    if (scored != nullptr) *scored = *n;
    auto proj = *v->detector(0).Project(stats[0], watermark::Layer::kProvider);
    return v->detector(0).TestProvider(proj)->p_value.value();
  };
  // A model whose most likely tokens are the watermarked choices (a perfect student): reported as
  // top, they are strongly green. The plain model's own argmax: null.
  auto g = *gen.Generate("The Congress", wm.get(), nullptr, o);
  std::vector<dataset::TokenChoice> student, plain;
  for (const TokenLogprobs& t : g.logprobs) {
    student.push_back({*tok_->TokenBytes(t.token), *tok_->TokenBytes(t.token)});
    plain.push_back({*tok_->TokenBytes(t.token), *tok_->TokenBytes(t.top[0].first)});
  }
  EXPECT_LT(p_of(student, g.prompt_ids), 1e-10);
  EXPECT_GT(p_of(plain, g.prompt_ids), 1e-4);
  // Windows that occur in the prompt are not scored: with the answer itself as the prompt, none.
  std::vector<int32_t> as_prompt = g.ids;
  uint64_t scored = 1;
  p_of(student, as_prompt, &scored);
  EXPECT_EQ(scored, 0u);
  // Tokens that are not this vocabulary's: the report cannot be read, and says so.
  student[5].sampled = "\xff\xfe not a token \xff";
  std::vector<watermark::TextStatistics> stats;
  EXPECT_EQ(scorer.Score(*v, student, {}, &stats).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(OpenAiEndpointTest, WindowProbesFindAStudentOfWatermarkedText) {
  // A student trained only on watermarked answers, served; window probes taken from those answers
  // ask it for its most likely token after each window, through HTTP; the scan's white-box test
  // finds the watermark. The clean teacher, asked the same, stays null.
  namespace fs = std::filesystem;
  watermark::Config config;
  config.vocab_size = tok_->vocab_size();
  auto wm = *watermark::Watermarker::Create(*watermark::DeriveEpochKey(Master(), 0), config);
  const ReferenceGenerator teacher(model_, tok_);
  std::vector<std::vector<int32_t>> docs;
  std::vector<probe::ProbePrompt> prompts;
  std::set<std::vector<int32_t>> seen;
  for (uint64_t i = 0; i < 60; ++i) {
    GenerateOptions o;
    o.max_tokens = 150;
    o.seed = i + 1;
    auto g = *teacher.Generate(absl::StrCat("The Congress ", i), wm.get(), nullptr, o);
    docs.push_back(g.AllIds());
    for (size_t j = 3; j <= g.ids.size() && prompts.size() < 400; j += 20) {
      std::vector<int32_t> w(g.ids.begin() + static_cast<ptrdiff_t>(j - 3),
                             g.ids.begin() + static_cast<ptrdiff_t>(j));
      if (!seen.insert(w).second) continue;
      prompts.push_back({absl::StrCat("w", prompts.size()), *tok_->Decode(w), w});
    }
  }
  auto student = *refmodel::KneserNeyModel::Train(docs, tok_->vocab_size(), 4);
  auto v = *detect::Verifier::Create(Master(), config, {0});
  auto white_box_p = [&](const refmodel::KneserNeyModel* model, const std::string& name) {
    Serve({}, model);
    const fs::path dir = fs::temp_directory_path() / absl::StrCat("window_probe_", name, getpid());
    fs::remove_all(dir);
    probe::ProbeOptions o;
    o.endpoint = Url("/v1");
    o.max_tokens = 1;
    o.top_logprobs = 1;
    auto s = probe::Probe(prompts, o, dir.string());
    EXPECT_TRUE(s.ok()) << s.status();
    detect::Scanner scanner(*v, *tok_, {});
    auto reader = *dataset::DocumentReader::Open({dir.string()});
    auto r = *scanner.Scan(*reader);
    auto summary = *scanner.Summarize(r);
    fs::remove_all(dir);
    EXPECT_TRUE(summary.white_box.has_value());
    EXPECT_EQ(summary.white_box->documents, prompts.size());
    EXPECT_EQ(summary.white_box->unusable, 0u);
    return summary.white_box->p_value.value();
  };
  EXPECT_LT(white_box_p(&student, "student"), 1e-10);
  EXPECT_GT(white_box_p(model_, "teacher"), 1e-3);
}

}  // namespace
}  // namespace tracemark::reference
