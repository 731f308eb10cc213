// COPRO: coordinate ascent over each predictor's instruction and last-field prefix
// (dspy/teleprompt/copro_optimizer.py). Candidates are scored on the trainset, as in DSPy.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/proposer.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

struct Candidate {
  std::string instruction;
  std::string prefix;
};

struct Evaluated {
  double score = 0;
  Program program;
  std::string instruction;
  std::string prefix;
  int depth = 0;
};

// str.strip('"').strip()
std::string Clean(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && s[b] == '"') ++b;
  while (e > b && s[e - 1] == '"') --e;
  return PyStrip(s.substr(b, e - b));
}

std::string LastField(const Predictor& p) {
  std::vector<std::string> names = p.FieldNames();
  return names.empty() ? "" : names.back();
}

Program WithCandidate(const Program& base, size_t index, const Candidate& c) {
  Program out = base;
  Predictor& p = out.predictors[index];
  p.signature.instructions = c.instruction;
  const std::string last = LastField(p);
  if (c.prefix == InferPrefix(last)) {
    p.prefix_overrides.erase(last);
  } else {
    p.prefix_overrides[last] = c.prefix;
  }
  return out;
}

bool SameInstructions(const Program& a, const Program& b) {
  for (size_t i = 0; i < a.predictors.size() && i < b.predictors.size(); ++i) {
    if (a.predictors[i].signature.instructions != b.predictors[i].signature.instructions)
      return false;
    const std::string last = LastField(a.predictors[i]);
    if (a.predictors[i].Prefix(last) != b.predictors[i].Prefix(last)) return false;
  }
  return true;
}

class Copro final : public Optimizer {
 public:
  explicit Copro(CoproOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "copro"; }

  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    const LmSettings lm = [&] {
      LmSettings l = MergeLm(ctx.prompt_lm(), options_.prompt_model);
      l.temperature = options_.init_temperature;
      return l;
    }();
    const std::vector<Example>& trainset = ctx.trainset();
    Program module = student;
    const size_t P = module.predictors.size();
    std::vector<std::vector<Candidate>> candidates(P);
    ctx.events().OnPhase("propose", "proposing initial instructions");
    for (size_t i = 0; i < P; ++i) {
      const Predictor& p = module.predictors[i];
      ojson in = ojson::object();
      in["basic_instruction"] = p.signature.instructions;
      ASSIGN_OR_RETURN(
          std::vector<ojson> outs,
          SampleCompletions(ctx, BasicGenerateInstructionSignature(), in, options_.breadth - 1, lm,
                            absl::StrCat("copro/", ctx.seed(), "/init/", i)));
      for (const ojson& o : outs) {
        candidates[i].push_back(
            {PyStr(o.at("proposed_instruction")), PyStr(o.at("proposed_prefix_for_output_field"))});
      }
      candidates[i].push_back({p.signature.instructions, p.Prefix(LastField(p))});
    }
    std::vector<std::vector<Candidate>> latest = candidates;
    std::vector<std::vector<Candidate>> all = candidates;
    // Per predictor: (instruction, prefix) -> best evaluation, in first-seen order.
    std::vector<std::vector<Evaluated>> evaluated(P);
    std::vector<std::map<std::pair<std::string, std::string>, size_t>> index(P);
    Program clone = module;
    ctx.events().OnPhase("search", "evaluating instruction candidates");
    for (int d = 0; d < options_.depth; ++d) {
      for (size_t i = 0; i < P; ++i) {
        const std::vector<Candidate>& cands = P > 1 ? all[i] : latest[i];
        std::vector<Program> programs;
        std::vector<Candidate> cleaned;
        for (const Candidate& c : cands) {
          Candidate cc{Clean(c.instruction), Clean(c.prefix)};
          programs.push_back(WithCandidate(clone, i, cc));
          cleaned.push_back(std::move(cc));
        }
        std::vector<const Program*> ptrs;
        for (const Program& p : programs) ptrs.push_back(&p);
        std::vector<int> trials;
        std::vector<ojson> params;
        for (size_t c = 0; c < cleaned.size(); ++c) {
          params.push_back(ojson{{"predictor", module.predictors[i].name},
                                 {"depth", d},
                                 {"candidate", c},
                                 {"instruction", cleaned[c].instruction},
                                 {"prefix", cleaned[c].prefix}});
          trials.push_back(ctx.StartTrial(params.back()));
        }
        std::vector<absl::StatusOr<EvaluationResult>> scores = ctx.EvaluateMany(ptrs, trainset);
        for (size_t c = 0; c < cleaned.size(); ++c) {
          if (!scores[c].ok()) return scores[c].status();
          const double score = scores[c]->score;
          ctx.FinishTrial(trials[c], params[c], score, false, static_cast<int>(trainset.size()));
          ctx.OfferBest(programs[c], score, trials[c]);
          const auto key = std::make_pair(cleaned[c].instruction, cleaned[c].prefix);
          auto it = index[i].find(key);
          if (it == index[i].end()) {
            index[i][key] = evaluated[i].size();
            evaluated[i].push_back(
                {score, programs[c], cleaned[c].instruction, cleaned[c].prefix, d});
          } else if (evaluated[i][it->second].score < score) {
            evaluated[i][it->second] = {score, programs[c], cleaned[c].instruction,
                                        cleaned[c].prefix, d};
          }
        }
        // Fix predictor i to its best candidate (first best in insertion order).
        const Evaluated* best = nullptr;
        for (const Evaluated& e : evaluated[i]) {
          if (best == nullptr || e.score > best->score) best = &e;
        }
        if (best != nullptr) clone = WithCandidate(clone, i, {best->instruction, best->prefix});
      }
      if (d == options_.depth - 1) break;
      ctx.events().OnPhase("propose", absl::StrCat("proposing instructions for depth ", d + 2));
      for (size_t i = 0; i < P; ++i) {
        std::vector<const Evaluated*> ranked;
        for (const Evaluated& e : evaluated[i]) ranked.push_back(&e);
        std::stable_sort(ranked.begin(), ranked.end(), [](const Evaluated* a, const Evaluated* b) {
          return a->score > b->score;
        });
        const size_t shortest = std::min(ranked.size(), static_cast<size_t>(options_.breadth));
        ojson attempts = ojson::array();
        for (size_t k = shortest; k-- > 0;) {
          const size_t n = shortest - k;
          attempts.push_back(absl::StrCat("Instruction #", n, ": ", ranked[k]->instruction));
          attempts.push_back(absl::StrCat("Prefix #", n, ": ", ranked[k]->prefix));
          attempts.push_back(
              absl::StrCat("Resulting Score #", n, ": ", PyFloatRepr(ranked[k]->score)));
        }
        ojson in = ojson::object();
        in["attempted_instructions"] = attempts;
        ASSIGN_OR_RETURN(std::vector<ojson> outs,
                         SampleCompletions(ctx, GenerateInstructionGivenAttemptsSignature(), in,
                                           options_.breadth, lm,
                                           absl::StrCat("copro/", ctx.seed(), "/d", d, "/", i)));
        latest[i].clear();
        for (const ojson& o : outs) {
          Candidate c{PyStr(o.at("proposed_instruction")),
                      PyStr(o.at("proposed_prefix_for_output_field"))};
          latest[i].push_back(c);
          all[i].push_back(c);
        }
      }
    }
    // All evaluated candidates, best first, duplicates (equal score and instructions) dropped.
    std::vector<Evaluated> everything;
    for (size_t i = 0; i < P; ++i) {
      for (const Evaluated& e : evaluated[i]) everything.push_back(e);
    }
    std::stable_sort(everything.begin(), everything.end(),
                     [](const Evaluated& a, const Evaluated& b) { return a.score > b.score; });
    CompileResult result;
    std::vector<const Evaluated*> batch;
    double batch_score = -1;
    for (const Evaluated& e : everything) {
      bool repeat = false;
      if (e.score == batch_score) {
        for (const Evaluated* other : batch) {
          if (SameInstructions(e.program, other->program)) repeat = true;
        }
        if (!repeat) batch.push_back(&e);
      } else {
        batch = {&e};
        batch_score = e.score;
      }
      if (!repeat) {
        result.candidates.push_back(CandidateRecord{
            e.score,
            ojson{{"instruction", e.instruction}, {"prefix", e.prefix}, {"depth", e.depth}},
            e.program});
      }
    }
    if (result.candidates.empty()) return absl::InternalError("copro: no candidate was evaluated");
    result.program = result.candidates.front().program;
    result.score = result.candidates.front().score;
    return result;
  }

 private:
  CoproOptions options_;
};

}  // namespace

std::unique_ptr<Optimizer> MakeCopro(CoproOptions options) {
  return std::make_unique<Copro>(std::move(options));
}

absl::StatusOr<CoproOptions> CoproOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.copro");
  CoproOptions o;
  ASSIGN_OR_RETURN(o.breadth, r.Int("breadth", 10, 0));
  if (o.breadth == 0) o.breadth = 10;
  if (o.breadth <= 1)
    return absl::InvalidArgumentError("optimizer.copro.breadth: must be greater than 1");
  ASSIGN_OR_RETURN(o.depth, r.Int("depth", 3, 0));
  if (o.depth == 0) o.depth = 3;
  ASSIGN_OR_RETURN(o.init_temperature, r.Double("init_temperature", 1.4));
  if (o.init_temperature == 0) o.init_temperature = 1.4;
  if (o.init_temperature < 0 || o.init_temperature > 2) {
    return absl::InvalidArgumentError("optimizer.copro.init_temperature: must be within [0, 2]");
  }
  ASSIGN_OR_RETURN(o.prompt_model, r.Lm("prompt_model"));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

}  // namespace elexirion::optimizer
