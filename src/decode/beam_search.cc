#include "decode/beam_search.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace earshot {
namespace {

struct Live {
  std::vector<int> tokens;
  std::vector<float> token_logprobs;
  double sum_logprob = 0;
};

struct Candidate {
  double score;
  int hypothesis;
  int token;
  float logprob;
};

// Top k (token, log-prob) pairs, higher log-prob first, ties by lower token id.
void TopK(const float* lp, int n, int k, std::vector<std::pair<int, float>>* out) {
  out->clear();
  auto better = [](const std::pair<int, float>& a, const std::pair<int, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  for (int id = 0; id < n; ++id) {
    const std::pair<int, float> c(id, lp[id]);
    if (static_cast<int>(out->size()) < k) {
      out->insert(std::upper_bound(out->begin(), out->end(), c, better), c);
    } else if (better(c, out->back())) {
      out->pop_back();
      out->insert(std::upper_bound(out->begin(), out->end(), c, better), c);
    }
  }
}

Hypothesis Finish(const Live& h, bool eot, double eot_logprob) {
  Hypothesis f;
  f.tokens = h.tokens;
  f.token_logprobs = h.token_logprobs;
  f.sum_logprob = h.sum_logprob + (eot ? eot_logprob : 0.0);
  f.score = f.sum_logprob / std::max<size_t>(1, f.tokens.size());
  f.ended_with_eot = eot;
  return f;
}

}  // namespace

Expected<BeamResult> BeamSearch(StepScorer& scorer, const float* prompt_logits, const BeamOptions& opt,
                                const LogitFilter& filter) {
  const int B = opt.beam_size, V = opt.n_vocab;
  if (B < 1 || B > 64) return Status::Error("beam size must be in 1..64");
  if (opt.max_new_tokens < 1) return Status::Error("max_new_tokens must be positive");
  if (V < 1 || filter.config().n_vocab != V) return Status::Error("beam search: vocabulary size mismatch");

  BeamResult result;
  std::vector<Live> live(1);
  std::vector<float> logits;  // [live.size()][V]
  logits.reserve(static_cast<size_t>(B) * V);  // one allocation for the whole search
  logits.assign(prompt_logits, prompt_logits + V);
  std::vector<std::vector<std::pair<int, float>>> tops;  // per live hypothesis
  std::vector<uint8_t> has_nan;
  std::vector<Candidate> candidates;
  std::vector<int> source_rows, new_tokens;
  std::vector<std::vector<int>> generated;

  for (int step = 0;; ++step) {
    // Log-probs of each live hypothesis, then its top B+1 candidates. Hypotheses are independent: with several
    // they run in parallel (one hypothesis keeps the log-softmax's own split).
    const int n_live = static_cast<int>(live.size());
    tops.resize(static_cast<size_t>(n_live));
    has_nan.assign(static_cast<size_t>(n_live), 0);
    ParallelFor(n_live, [&](int h) {
      float* lp = logits.data() + static_cast<size_t>(h) * V;
      filter.Apply(lp, live[h].tokens.data(), static_cast<int>(live[h].tokens.size()));
      bool nan = false;
      for (int i = 0; i < V; ++i) nan |= lp[i] != lp[i];  // no early exit, so the loop vectorises
      if (nan) {
        has_nan[h] = 1;
        return;
      }
      LogSoftmax(lp, V);
      TopK(lp, V, B + 1, &tops[h]);
    });
    candidates.clear();
    for (int h = 0; h < n_live; ++h) {
      if (has_nan[h]) return Status::Error("the model produced NaN logits");
      for (const auto& t : tops[h]) candidates.push_back({live[h].sum_logprob + t.second, h, t.first, t.second});
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.score > b.score; });

    std::vector<Live> next;
    source_rows.clear();
    new_tokens.clear();
    for (const Candidate& c : candidates) {
      if (static_cast<int>(next.size()) >= B) break;
      const Live& parent = live[c.hypothesis];
      if (c.token == opt.eot) {
        if (static_cast<int>(result.finished.size()) < B) result.finished.push_back(Finish(parent, true, c.logprob));
        continue;
      }
      Live child = parent;
      child.tokens.push_back(c.token);
      child.token_logprobs.push_back(c.logprob);
      child.sum_logprob = c.score;
      next.push_back(std::move(child));
      source_rows.push_back(c.hypothesis);
      new_tokens.push_back(c.token);
    }
    live = std::move(next);

    if (static_cast<int>(result.finished.size()) >= B || live.empty()) break;
    if (step + 1 >= opt.max_new_tokens) {
      for (const Live& h : live) result.finished.push_back(Finish(h, false, 0.0));
      break;
    }
    generated.clear();
    for (const Live& h : live) generated.push_back(h.tokens);
    logits.resize(live.size() * static_cast<size_t>(V));
    EARSHOT_RETURN_IF_ERROR(scorer.Score(source_rows, new_tokens, generated, logits.data()));
    ++result.steps;
  }

  if (result.finished.empty()) return Status::Error("beam search finished no hypothesis");
  size_t best = 0;
  for (size_t i = 1; i < result.finished.size(); ++i)
    if (result.finished[i].score > result.finished[best].score) best = i;
  result.best = result.finished[best];
  return result;
}

}  // namespace earshot
