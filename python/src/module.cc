// tracemark._tracemark: the Python binding (pybind11) over the C++ library. The package
// (python/tracemark/) wraps it; docs/integrations.md documents it.
//
// Logits are passed without copies: a float32 numpy array (or a CPU torch tensor's .numpy() view)
// that is C-contiguous is modified in place. Statuses become Python exceptions: ValueError for
// InvalidArgument, FileNotFoundError for NotFound, PermissionError for PermissionDenied and
// FailedPrecondition on key files, RuntimeError otherwise. Key bytes never cross into Python: a
// Key is an opaque handle with an id and a commitment.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "nlohmann/json.hpp"
#include "tracemark/base/data_dir.h"
#include "tracemark/canary/lexicon.h"
#include "tracemark/canary/processor.h"
#include "tracemark/dataset/input.h"
#include "tracemark/detect/scan_job.h"
#include "tracemark/detect/scan_result_io.h"
#include "tracemark/detect/text_detection.h"
#include "tracemark/engine/ledger_stage.h"
#include "tracemark/engine/serving_chain.h"
#include "tracemark/ledger/writer.h"
#include "tracemark/tokenizer/load.h"
#include "tracemark/watermark/keys.h"
#include "tracemark/watermark/watermarker.h"

namespace py = pybind11;

namespace tracemark::python {
namespace {

using engine::Response;
using engine::Step;
using watermark::AccountKeys;
using watermark::Key;

[[noreturn]] void Throw(const absl::Status& s) {
  const std::string m(s.message());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      throw py::value_error(m);
    case absl::StatusCode::kNotFound:
      PyErr_SetString(PyExc_FileNotFoundError, m.c_str());
      throw py::error_already_set();
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
      PyErr_SetString(PyExc_PermissionError, m.c_str());
      throw py::error_already_set();
    default:
      throw std::runtime_error(m);
  }
}

template <typename T>
T Take(absl::StatusOr<T> v) {
  if (!v.ok()) Throw(v.status());
  return *std::move(v);
}

void Check(const absl::Status& s) {
  if (!s.ok()) Throw(s);
}

// Runs `f` (which returns a Status or StatusOr and touches no Python object) with the GIL
// released, and takes its result after the GIL is held again: an exception raised while the GIL
// is released kills the interpreter, so nothing inside `f` may throw.
template <typename F>
auto WithoutGil(F&& f) {
  auto result = [&] {
    py::gil_scoped_release release;
    return f();
  }();
  if constexpr (std::is_same_v<decltype(result), absl::Status>) {
    Check(result);
  } else {
    return Take(std::move(result));
  }
}

// The data directory a call names, else the CLI's default (base/data_dir.h).
std::string DataDir(const std::optional<std::string>& given) {
  return base::DataDir(given.value_or(""));
}

// tracemark.Watermarker: the serving chain (engine/serving_chain.h) and the stages it runs, the
// canary phrasings when asked for.
struct Watermarker {
  std::unique_ptr<watermark::Watermarker> wm;
  std::shared_ptr<tokenizer::Tokenizer> tokenizer;  // canaries only
  std::unique_ptr<canary::CanaryProcessor> canary;  // null: no canaries
  std::optional<engine::ServingChain> chain;
  uint32_t epoch = 0;
  std::shared_ptr<ledger::Writer> ledger;  // null: no ledger (set_ledger)
  std::unique_ptr<engine::LedgerStage> ledger_stage;

  const watermark::Config& config() const { return wm->config(); }
};

std::unique_ptr<Watermarker> NewWatermarker(
    const Key& master, int32_t vocab_size, uint32_t epoch, const std::string& scheme,
    const std::string& params, std::shared_ptr<tokenizer::Tokenizer> canary_tokenizer) {
  auto out = std::make_unique<Watermarker>();
  out->epoch = epoch;
  const Key epoch_key = Take(watermark::DeriveEpochKey(master, epoch));
  const watermark::Config config = Take(detect::WatermarkConfig(scheme, params, vocab_size));
  out->wm = Take(watermark::Watermarker::Create(epoch_key, config));
  if (canary_tokenizer != nullptr) {
    out->tokenizer = std::move(canary_tokenizer);
    out->canary =
        Take(canary::CanaryProcessor::Create(&canary::Lexicon::BuiltIn(), *out->tokenizer));
  }
  out->chain = Take(engine::ServingChain::Create(out->wm.get(), out->canary.get()));
  return out;
}

using Int32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
// Logits: float32, C-contiguous; no forcecast, so that a wrong dtype is an error rather than a
// silently modified copy.
using FloatArray = py::array_t<float, py::array::c_style>;

FloatArray CheckedLogits(py::object logits) {
  if (!py::isinstance<py::array>(logits)) {
    throw py::type_error("logits must be a numpy array (torch: tensor.numpy() on a CPU tensor)");
  }
  py::array a = py::reinterpret_borrow<py::array>(logits);
  if (!a.dtype().is(py::dtype::of<float>())) {
    throw py::type_error("logits must be float32 (modified in place; cast it first)");
  }
  if (!(a.flags() & py::array::c_style)) throw py::value_error("logits must be C-contiguous");
  if (!a.writeable()) throw py::value_error("logits must be writeable (modified in place)");
  return py::reinterpret_borrow<FloatArray>(a);
}

std::vector<int32_t> Ids(const Int32Array& a) {
  if (a.ndim() != 1) throw py::value_error("token ids must be one-dimensional");
  return std::vector<int32_t>(a.data(), a.data() + a.size());
}

py::dict StepDict(const Step& r) {
  py::dict d;
  static const char* kLayers[] = {"none", "provider", "account_payload", "account_fingerprint"};
  d["layer"] = kLayers[static_cast<int>(r.layer)];
  d["token_chosen"] = r.token_chosen;
  d["token"] = r.token;
  d["canary_moves"] = r.canary_moves;
  return d;
}

py::object Json(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

detect::ScanJobSpec Spec(const std::string& options_json,
                         const std::optional<std::string>& data_dir, int threads) {
  const nlohmann::json options = nlohmann::json::parse(options_json, nullptr, false);
  if (options.is_discarded()) throw py::value_error("options_json is not valid JSON");
  detect::ScanJobSpec spec = Take(detect::ScanJobSpec::FromOptions(options));
  spec.data_dir = DataDir(data_dir);
  spec.threads = threads;
  return spec;
}

// Key, and key files.
void BindKeys(py::module_& m) {
  py::class_<Key>(m, "Key", "A 32-byte secret held in guarded memory; only its id leaves it.")
      .def_static(
          "from_file",
          [](const std::string& path) { return Take(watermark::ReadMasterKeyFile(path)); },
          py::arg("path"), "A master key file: exactly 32 bytes, mode 0600.")
      .def_static(
          "from_env",
          [](const std::string& var) { return Take(watermark::ReadMasterKeyFromEnv(var.c_str())); },
          py::arg("variable"), "A master key as 64 hex digits in an environment variable.")
      .def(
          "derive_epoch",
          [](const Key& k, uint32_t e) { return Take(watermark::DeriveEpochKey(k, e)); },
          py::arg("epoch"))
      .def_property_readonly("id", &Key::Id)
      .def_property_readonly("commitment", &Key::Commitment)
      .def("__repr__", [](const Key& k) { return "<tracemark.Key id " + k.Id() + ">"; });

  m.def(
      "new_key_file",
      [](const std::string& path) { return Take(watermark::WriteNewMasterKeyFile(path)); },
      py::arg("path"), "Writes a new random master key (mode 0600; never overwrites); its id.");
}

// AccountKeys, SequenceState (Response), and Watermarker: the serving chain.
void BindServing(py::module_& m) {
  py::class_<AccountKeys>(m, "AccountKeys", "One account's keys and codewords (per request).")
      .def_property_readonly("account", &AccountKeys::account);

  py::class_<Response>(m, "SequenceState",
                       "The state of one response: contexts already keyed, the canary member in "
                       "progress.")
      .def(py::init<>())
      .def("reset", &Response::Reset);
  m.attr("Response") = m.attr("SequenceState");

  py::class_<Watermarker>(m, "Watermarker")
      .def(py::init([](const Key& master, int32_t vocab_size, uint32_t epoch,
                       const std::string& scheme, const std::string& params, py::object canary,
                       const std::optional<std::string>& data_dir) {
             std::shared_ptr<tokenizer::Tokenizer> tok;
             if (py::isinstance<py::str>(canary)) {
               tok = Take(tokenizer::LoadTokenizer(canary.cast<std::string>(), DataDir(data_dir)));
             } else if (!canary.is_none()) {
               tok = canary.cast<std::shared_ptr<tokenizer::Tokenizer>>();
             }
             return NewWatermarker(master, vocab_size, epoch, scheme, params, std::move(tok));
           }),
           py::arg("master"), py::arg("vocab_size"), py::kw_only(), py::arg("epoch") = 0,
           py::arg("scheme") = "kgw", py::arg("params") = "", py::arg("canary") = py::none(),
           py::arg("data_dir") = py::none(),
           "A watermarker for one epoch of `master`, over a vocabulary of `vocab_size` ids. "
           "`canary`: the serving model's tokenizer (a tracemark.Tokenizer or its spec, e.g. "
           "'tiktoken:cl100k_base') to apply the account's canary phrasings before the watermark; "
           "None: no canaries.")
      .def_property_readonly("vocab_size",
                             [](const Watermarker& w) { return w.config().vocab_size; })
      .def_property_readonly("context_width",
                             [](const Watermarker& w) { return w.config().context_width; })
      .def_property_readonly(
          "history_width", [](const Watermarker& w) { return w.chain->history_width(); },
          "The trailing ids of the history a step reads (process_batch's context width).")
      .def_property_readonly("canary", [](const Watermarker& w) { return w.canary != nullptr; })
      .def_property_readonly("key_id", [](const Watermarker& w) { return w.wm->key_id(); })
      .def(
          "for_account", [](const Watermarker& w, uint64_t a) { return Take(w.wm->ForAccount(a)); },
          py::arg("account"))
      .def(
          "process_dense",
          [](const Watermarker& w, const AccountKeys* account, const Int32Array& context,
             py::object logits, Response* state) {
            FloatArray row = CheckedLogits(std::move(logits));
            if (row.ndim() != 1) throw py::value_error("process_dense takes one row of logits");
            const std::vector<int32_t> ctx = Ids(context);
            const absl::Span<float> span(row.mutable_data(), static_cast<size_t>(row.size()));
            return StepDict(
                WithoutGil([&] { return w.chain->ProcessDense(account, ctx, span, state); }));
          },
          py::arg("account"), py::arg("context"), py::arg("logits"), py::arg("state") = nullptr,
          "Watermarks one row of logits in place; `context`: the ids before the position.")
      .def(
          "process_sparse",
          [](const Watermarker& w, const AccountKeys* account, const Int32Array& context,
             py::object ids_in, py::object logits, Response* state) {
            FloatArray vals = CheckedLogits(std::move(logits));
            // A canary may give a candidate's slot to its keyed member's id: the ids are then
            // written back, so they must be the caller's own int32 array, not a converted copy.
            if (w.canary != nullptr &&
                !(py::isinstance<py::array>(ids_in) &&
                  py::reinterpret_borrow<py::array>(ids_in).dtype().is(py::dtype::of<int32_t>()) &&
                  (py::reinterpret_borrow<py::array>(ids_in).flags() & py::array::c_style) &&
                  py::reinterpret_borrow<py::array>(ids_in).writeable())) {
              throw py::type_error(
                  "with canaries, ids must be a writeable C-contiguous int32 numpy array (a "
                  "canary may replace an id in place)");
            }
            Int32Array ids = Int32Array::ensure(ids_in);
            if (!ids) throw py::type_error("ids must be an array of token ids");
            if (ids.ndim() != 1 || vals.ndim() != 1 || ids.size() != vals.size()) {
              throw py::value_error("ids and logits must be one-dimensional and of one length");
            }
            std::vector<watermark::Candidate> c(static_cast<size_t>(ids.size()));
            for (size_t i = 0; i < c.size(); ++i) c[i] = {ids.data()[i], vals.data()[i]};
            const std::vector<int32_t> ctx = Ids(context);
            Step r = Take(w.chain->ProcessSparse(account, ctx, absl::MakeSpan(c), state));
            float* out = vals.mutable_data();
            for (size_t i = 0; i < c.size(); ++i) out[i] = c[i].logit;
            if (w.canary != nullptr) {
              int32_t* out_ids = ids.mutable_data();
              for (size_t i = 0; i < c.size(); ++i) out_ids[i] = c[i].id;
            }
            return StepDict(r);
          },
          py::arg("account"), py::arg("context"), py::arg("ids"), py::arg("logits"),
          py::arg("state") = nullptr,
          "Watermarks a candidate list in place (logits; a canary may also replace an id).")
      .def(
          "process_batch",
          [](const Watermarker& w, const std::vector<const AccountKeys*>& accounts,
             const Int32Array& contexts, py::object logits,
             std::optional<std::vector<Response*>> states) {
            FloatArray rows = CheckedLogits(std::move(logits));
            if (rows.ndim() != 2) throw py::value_error("logits must be B x vocab_size");
            const size_t b = static_cast<size_t>(rows.shape(0));
            if (contexts.ndim() != 2 || static_cast<size_t>(contexts.shape(0)) != b) {
              throw py::value_error(
                  "contexts must be B x W, W >= history_width (each row's last W ids; -1 for "
                  "positions before the start)");
            }
            const auto width = static_cast<size_t>(contexts.shape(1));
            if (accounts.size() != b) throw py::value_error("one account (or None) per row");
            std::vector<Response*> st = states.value_or(std::vector<Response*>{});
            if (!st.empty() && st.size() != b) throw py::value_error("one state (or None) per row");
            std::vector<Step> results(b);
            const absl::Span<const int32_t> ctx(contexts.data(),
                                                static_cast<size_t>(contexts.size()));
            const absl::Span<float> span(rows.mutable_data(), static_cast<size_t>(rows.size()));
            WithoutGil([&] {
              return w.chain->ProcessBatch(accounts, ctx, width, span, st, absl::MakeSpan(results));
            });
            py::list out;
            for (const Step& r : results) out.append(StepDict(r));
            return out;
          },
          py::arg("accounts"), py::arg("contexts"), py::arg("logits"),
          py::arg("states") = py::none(),
          "Watermarks B rows in place: row b has context contexts[b] and account accounts[b].");
}

// Ledger: the serving ledger's writer, and the Watermarker's end of a response (docs/ledger.md).
void BindLedger(py::module_& m) {
  py::class_<ledger::Writer, std::shared_ptr<ledger::Writer>>(
      m, "Ledger",
      "A serving-ledger writer: one new append-only, crash-safe segment in a ledger directory. "
      "Thread-safe; open one per process. A context manager (closed on exit).")
      .def(py::init([](const std::string& directory) {
             return std::shared_ptr<ledger::Writer>(Take(ledger::Writer::Open(directory)));
           }),
           py::arg("directory"))
      .def(
          "close", [](ledger::Writer& w) { WithoutGil([&] { return w.Close(); }); },
          "Finishes the segment and flushes it to disk; further records are refused.")
      .def_property_readonly("path", &ledger::Writer::path)
      .def_property_readonly("records", [](const ledger::Writer& w) { return w.stats().records; })
      .def("__enter__", [](std::shared_ptr<ledger::Writer> w) { return w; })
      .def("__exit__", [](ledger::Writer& w, py::args) { WithoutGil([&] { return w.Close(); }); });

  auto wm = py::reinterpret_borrow<py::class_<Watermarker>>(m.attr("Watermarker"));
  wm.def(
        "set_ledger",
        [](Watermarker& w, std::shared_ptr<ledger::Writer> writer, const std::string& tokenizer) {
          std::unique_ptr<engine::LedgerStage> stage;
          if (writer != nullptr) {
            if (tokenizer.empty()) throw py::value_error("set_ledger needs the tokenizer's spec");
            stage = std::make_unique<engine::LedgerStage>(
                engine::LedgerStage{writer.get(), w.epoch, tokenizer});
          }
          w.chain = Take(engine::ServingChain::Create(w.wm.get(), w.canary.get(), stage.get()));
          w.ledger = std::move(writer);
          w.ledger_stage = std::move(stage);
        },
        py::arg("ledger"), py::arg("tokenizer") = "",
        "From now on end_response appends one record per response to `ledger` (None: no ledger), "
        "with `tokenizer` (the serving tokenizer's spec, e.g. 'hf:qwen3') recorded.")
      .def(
          "end_response",
          [](const Watermarker& w, const AccountKeys* account, const Int32Array& prompt,
             const Int32Array& response, Response* state) {
            const std::vector<int32_t> p = Ids(prompt), r = Ids(response);
            WithoutGil([&] { return w.chain->EndResponse(account, p, r, state); });
          },
          py::arg("account"), py::arg("prompt"), py::arg("response"), py::arg("state") = nullptr,
          "Ends a response: resets `state` and, with a ledger, records what `account` (None: "
          "anonymous) was served: the prompt's last history_width ids and every response id. "
          "Serve the response only once this returns.");
}

// Tokenizer: the bit-exact tokenizers.
void BindTokenizer(py::module_& m) {
  py::class_<tokenizer::Tokenizer, std::shared_ptr<tokenizer::Tokenizer>>(m, "Tokenizer")
      .def_static(
          "load",
          [](const std::string& spec, const std::optional<std::string>& data_dir) {
            return std::shared_ptr<tokenizer::Tokenizer>(
                Take(tokenizer::LoadTokenizer(spec, DataDir(data_dir))));
          },
          py::arg("spec") = "cl100k_base", py::arg("data_dir") = py::none())
      .def_property_readonly("vocab_size", &tokenizer::Tokenizer::vocab_size)
      .def("encode", [](const tokenizer::Tokenizer& t,
                        const std::string& text) { return Take(t.Encode(text)); })
      .def("decode", [](const tokenizer::Tokenizer& t, const std::vector<int32_t>& ids) {
        return py::bytes(Take(t.Decode(ids)));
      });
}

// detect_ids: the attribution rule of detect and scan on token ids.
void BindDetection(py::module_& m) {
  m.def(
      "detect_ids",
      [](const Key& master, const std::vector<int32_t>& ids, int32_t vocab_size,
         const std::string& scheme, const std::string& params, std::vector<uint32_t> epochs,
         std::optional<uint64_t> account, size_t score_from, uint64_t account_limit, double alpha,
         size_t max_candidates) {
        const watermark::Config config = Take(detect::WatermarkConfig(scheme, params, vocab_size));
        detect::DetectOptions o;
        o.epochs = std::move(epochs);
        o.account = account;
        o.account_limit = account_limit;
        if (!(alpha > 0 && alpha < 1)) throw py::value_error("alpha must be in (0, 1)");
        if (max_candidates == 0) throw py::value_error("max_candidates must be >= 1");
        o.confirm_alpha = alpha;
        o.max_candidates = max_candidates;
        const detect::TextDetection d =
            WithoutGil([&] { return detect::DetectIds(master, config, ids, score_from, o); });
        py::dict r;
        r["p_value"] = d.provider_p_value.value();
        r["log10_p_value"] = d.provider_p_value.log10();
        r["tokens"] = d.tokens;
        r["attributed_account"] = d.attributed_account.has_value()
                                      ? py::object(py::int_(*d.attributed_account))
                                      : py::none();
        // None where `tracemark detect --json` has null: no attribution, no account named.
        r["attributed_p_value"] = d.attributed_account.has_value()
                                      ? py::object(py::float_(d.attributed_p_value.value()))
                                      : py::none();
        r["account_p_value"] =
            account.has_value() ? py::object(py::float_(d.account_p_value.value())) : py::none();
        return r;
      },
      py::arg("master"), py::arg("ids"), py::arg("vocab_size"), py::kw_only(),
      py::arg("scheme") = "kgw", py::arg("params") = "",
      py::arg("epochs") = std::vector<uint32_t>{0}, py::arg("account") = py::none(),
      py::arg("score_from") = 0, py::arg("account_limit") = 0,
      py::arg("alpha") = detect::kDefaultAttributionAlpha,
      py::arg("max_candidates") = detect::kDefaultMaxCandidates,
      "Tests token ids for the provider watermark and attributes them (exact p-values), under "
      "the rule `tracemark detect` and `tracemark scan` use: attributed at corrected p <= alpha.");
}

// scan, scan_partition, scan_merge: datasets, in one process or partitioned.
void BindScans(py::module_& m) {
  m.def(
      "scan",
      [](const Key& master, const std::string& options_json,
         const std::optional<std::string>& data_dir, int threads) {
        detect::ScanJobSpec spec = Spec(options_json, data_dir, threads);
        const detect::ScanJobOutput out =
            WithoutGil([&] { return detect::RunScanJob(spec, master); });
        return Json(out.result);
      },
      py::arg("master"), py::arg("options_json"), py::arg("data_dir") = py::none(),
      py::arg("threads") = 0, "Runs `tracemark scan` in-process; the result as a dict.");

  m.def(
      "input_files",
      [](const std::vector<std::string>& inputs) {
        return Take(dataset::DocumentReader::Open(inputs))->paths();
      },
      py::arg("inputs"), "The files a scan of `inputs` reads, in its reading order.");

  m.def(
      "scan_partition",
      [](const Key& master, const std::string& options_json,
         const std::optional<std::string>& data_dir, int threads) {
        detect::ScanJobSpec spec = Spec(options_json, data_dir, threads);
        const detect::ScanPartitionOutput out =
            WithoutGil([&] { return detect::ScanPartition(spec, master); });
        const std::string bytes = detect::SerializeScanResult(out.scan);
        return py::make_tuple(py::bytes(bytes), out.input_files);
      },
      py::arg("master"), py::arg("options_json"), py::arg("data_dir") = py::none(),
      py::arg("threads") = 0,
      "Scores one partition (the options' inputs: a slice of the scan's files) without "
      "summarising it: (serialized statistics, files read), for scan_merge.");

  m.def(
      "scan_merge",
      [](const Key& master, const std::string& options_json,
         const std::vector<std::pair<py::bytes, std::vector<std::string>>>& partitions,
         const std::optional<std::string>& data_dir) {
        detect::ScanJobSpec spec = Spec(options_json, data_dir, 1);
        std::vector<std::pair<std::string, std::vector<std::string>>> raw;
        for (const auto& [bytes, files] : partitions) raw.emplace_back(std::string(bytes), files);
        std::vector<detect::ScanPartitionOutput> parts;
        for (auto& [bytes, files] : raw) {
          parts.push_back({Take(detect::ParseScanResult(bytes)), std::move(files)});
        }
        const detect::ScanJobOutput out =
            WithoutGil([&] { return detect::MergeScanPartitions(spec, master, std::move(parts)); });
        return Json(out.result);
      },
      py::arg("master"), py::arg("options_json"), py::arg("partitions"),
      py::arg("data_dir") = py::none(),
      "Merges scan_partition results, in input order, under the whole scan's options: the "
      "result scan() gives over all the inputs (wall time aside).");
}

PYBIND11_MODULE(_tracemark, m) {
  m.doc() = "tracemark: per-account watermarks in the sampling loop, and their detection";
  m.attr("__version__") = TRACEMARK_VERSION;
  BindKeys(m);
  BindServing(m);
  BindLedger(m);
  BindTokenizer(m);
  BindDetection(m);
  BindScans(m);
}

}  // namespace
}  // namespace tracemark::python
