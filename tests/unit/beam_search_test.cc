// Beam search logic on scripted scorers (no network): ordering, ties, EOT, max length, suppression, length
// normalisation, greedy == beam 1, and the row bookkeeping a KV cache relies on. Plus the logit filter's
// timestamp rules.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <vector>

#include "decode/beam_search.h"
#include "decode/logit_filter.h"

namespace earshot {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
using LogitsFn = std::function<std::vector<float>(const std::vector<int>&)>;

// Logits are a function of the generated prefix. Checks that every call's rows are the previous rows
// extended as source_rows/new_tokens say, which is what the decoder's cache reorder depends on.
class ScriptedScorer : public StepScorer {
 public:
  explicit ScriptedScorer(LogitsFn fn) : fn_(std::move(fn)), rows_{{}} {}
  Status Score(const std::vector<int>& source_rows, const std::vector<int>& new_tokens,
               const std::vector<std::vector<int>>& generated, float* logits) override {
    EXPECT_EQ(source_rows.size(), new_tokens.size());
    EXPECT_EQ(source_rows.size(), generated.size());
    std::vector<std::vector<int>> next;
    for (size_t i = 0; i < source_rows.size(); ++i) {
      EXPECT_LT(static_cast<size_t>(source_rows[i]), rows_.size());
      std::vector<int> seq = rows_[source_rows[i]];
      seq.push_back(new_tokens[i]);
      EXPECT_EQ(seq, generated[i]) << "row " << i;
      const auto l = fn_(seq);
      std::copy(l.begin(), l.end(), logits + i * l.size());
      next.push_back(std::move(seq));
    }
    rows_ = std::move(next);
    ++calls;
    return Status::Ok();
  }
  int calls = 0;

 private:
  LogitsFn fn_;
  std::vector<std::vector<int>> rows_;
};

LogitFilter NoFilter(int V, int eot) {
  LogitFilterConfig c;
  c.n_vocab = V;
  c.eot = eot;
  return LogitFilter(c);
}

Expected<BeamResult> RunSearch(const LogitsFn& fn, int V, int eot, int beam, int max_new, const LogitFilter& filter,
                         int* calls = nullptr) {
  ScriptedScorer scorer(fn);
  BeamOptions o;
  o.beam_size = beam;
  o.max_new_tokens = max_new;
  o.eot = eot;
  o.n_vocab = V;
  const auto first = fn({});
  auto r = BeamSearch(scorer, first.data(), o, filter);
  if (calls) *calls = scorer.calls;
  return r;
}

std::vector<double> LogSoftmaxD(const std::vector<float>& l) {
  double mx = -1e300, z = 0;
  for (float v : l) mx = std::max(mx, static_cast<double>(v));
  for (float v : l) z += std::exp(v - mx);
  std::vector<double> out;
  for (float v : l) out.push_back(v - mx - std::log(z));
  return out;
}

// Deterministic pseudo-random logits per prefix.
LogitsFn HashLogits(int V, uint32_t seed, float eot_bias = 0.0f, int eot = -1) {
  return [=](const std::vector<int>& prefix) {
    uint32_t h = seed * 2654435761u;
    for (int t : prefix) h = (h ^ static_cast<uint32_t>(t + 1)) * 16777619u;
    std::vector<float> l(V);
    for (int i = 0; i < V; ++i) {
      h = h * 1664525u + 1013904223u;
      l[i] = static_cast<float>(h >> 8) / 16777216.0f * 4.0f;
    }
    if (eot >= 0) l[eot] += eot_bias;
    return l;
  };
}

TEST(BeamSearch, GreedyFollowsArgmaxToEot) {
  const int V = 6, eot = 5;
  std::map<std::vector<int>, std::vector<float>> script = {
      {{}, {0, 1, 3, 0, 0, 0}}, {{2}, {0, 0, 0, 4, 0, 1}}, {{2, 3}, {1, 0, 0, 0, 0, 2}}};
  LogitsFn fn = [&](const std::vector<int>& p) { return script.at(p); };
  auto r = RunSearch(fn, V, eot, 1, 10, NoFilter(V, eot));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->best.tokens, (std::vector<int>{2, 3}));
  EXPECT_TRUE(r->best.ended_with_eot);
  const double lp0 = LogSoftmaxD(script[{}])[2], lp1 = LogSoftmaxD(script[{2}])[3],
               lp2 = LogSoftmaxD(script[{2, 3}])[5];
  ASSERT_EQ(r->best.token_logprobs.size(), 2u);
  EXPECT_NEAR(r->best.token_logprobs[0], lp0, 1e-6);
  EXPECT_NEAR(r->best.token_logprobs[1], lp1, 1e-6);
  EXPECT_NEAR(r->best.sum_logprob, lp0 + lp1 + lp2, 1e-6);  // the EOT's log-prob counts in the sum
  EXPECT_NEAR(r->best.score, (lp0 + lp1 + lp2) / 2, 1e-6);
  EXPECT_EQ(r->finished.size(), 1u);
  EXPECT_EQ(r->steps, 2);
}

TEST(BeamSearch, BeamOneEqualsPlainGreedyLoop) {
  const int V = 9, eot = 8, M = 12;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto fn = HashLogits(V, seed, 1.0f, eot);
    // Plain greedy: argmax (lowest id on ties) until EOT or M tokens.
    std::vector<int> want;
    double sum = 0;
    bool ended = false;
    while (static_cast<int>(want.size()) < M) {
      const auto lp = LogSoftmaxD(fn(want));
      int best = 0;
      for (int i = 1; i < V; ++i)
        if (lp[i] > lp[best]) best = i;
      sum += lp[best];
      if (best == eot) {
        ended = true;
        break;
      }
      want.push_back(best);
    }
    auto r = RunSearch(fn, V, eot, 1, M, NoFilter(V, eot));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->best.tokens, want) << "seed " << seed;
    EXPECT_EQ(r->best.ended_with_eot, ended);
    EXPECT_NEAR(r->best.sum_logprob, sum, 1e-5);
  }
}

TEST(BeamSearch, TiesPreferLowerTokenIdsAndEarlierHypotheses) {
  const int V = 5, eot = 4;
  // Flat logits except EOT, which is never competitive: every choice is a tie.
  LogitsFn fn = [&](const std::vector<int>&) { return std::vector<float>{0, 0, 0, 0, -50}; };
  auto r = RunSearch(fn, V, eot, 2, 2, NoFilter(V, eot));
  ASSERT_TRUE(r.ok());
  // Step 0: tokens 0, 1 survive. Step 1: hypothesis [0] proposes 0, 1, 2 first, so [0,0] and [0,1] win.
  ASSERT_EQ(r->finished.size(), 2u);
  EXPECT_EQ(r->finished[0].tokens, (std::vector<int>{0, 0}));
  EXPECT_EQ(r->finished[1].tokens, (std::vector<int>{0, 1}));
  EXPECT_EQ(r->best.tokens, (std::vector<int>{0, 0}));  // equal scores: the earlier one
}

TEST(BeamSearch, EotCandidatesFinishAndStopTheSearch) {
  const int V = 4, eot = 3;
  // Step 0: 0 and 1 live, EOT (rank 3) is walked too because the live list is not full before it.
  std::map<std::vector<int>, std::vector<float>> script = {
      {{}, {2.0f, 1.9f, -9, 1.0f}},  // candidates: 0, 1, EOT (third best); B=2 fills with 0, 1 first
      {{0}, {0, 0, 0, 3.0f}},        // [0] wants to end
      {{1}, {0, 0, 0, 3.0f}},        // [1] wants to end
  };
  LogitsFn fn = [&](const std::vector<int>& p) {
    auto it = script.find(p);
    return it != script.end() ? it->second : std::vector<float>{0, 0, 0, 0};
  };
  int calls = 0;
  auto r = RunSearch(fn, V, eot, 2, 10, NoFilter(V, eot), &calls);
  ASSERT_TRUE(r.ok());
  // Step 0: 0 and 1 fill the live list before EOT is reached, so nothing finishes yet.
  // Step 1: both hypotheses put EOT first; the two EOTs finish (B = 2) and the search stops.
  ASSERT_EQ(r->finished.size(), 2u);
  EXPECT_EQ(r->finished[0].tokens, (std::vector<int>{0}));
  EXPECT_EQ(r->finished[1].tokens, (std::vector<int>{1}));
  EXPECT_TRUE(r->finished[0].ended_with_eot);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r->steps, 1);
}

TEST(BeamSearch, EotAtFirstStepFinishesImmediately) {
  const int V = 3, eot = 2;
  LogitsFn fn = [&](const std::vector<int>&) { return std::vector<float>{0, 0, 5}; };
  int calls = 0;
  auto r = RunSearch(fn, V, eot, 1, 10, NoFilter(V, eot), &calls);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->best.tokens.empty());
  EXPECT_TRUE(r->best.ended_with_eot);
  EXPECT_EQ(r->best.score, r->best.sum_logprob);  // max(1, 0) = 1
  EXPECT_EQ(calls, 0);
}

TEST(BeamSearch, MaxLengthMovesLiveHypothesesToFinishedInOrder) {
  const int V = 6, eot = 5, M = 3;
  auto fn = HashLogits(V, 42, -100.0f, eot);  // EOT never competitive
  int calls = 0;
  auto r = RunSearch(fn, V, eot, 3, M, NoFilter(V, eot), &calls);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->finished.size(), 3u);
  for (size_t i = 0; i < r->finished.size(); ++i) {
    const Hypothesis& h = r->finished[i];
    EXPECT_EQ(h.tokens.size(), static_cast<size_t>(M));
    EXPECT_FALSE(h.ended_with_eot);
    EXPECT_NEAR(h.score, h.sum_logprob / M, 1e-9);
    double sum = 0;
    for (float lp : h.token_logprobs) sum += lp;
    EXPECT_NEAR(sum, h.sum_logprob, 1e-5);
    if (i > 0) {
      EXPECT_GE(r->finished[i - 1].sum_logprob, h.sum_logprob);  // live order = score order
    }
  }
  EXPECT_EQ(calls, M - 1);  // no decoder call after the last token
  EXPECT_EQ(r->best.tokens, r->finished[0].tokens);
}

TEST(BeamSearch, LengthNormalisationPicksBestAverage) {
  const int V = 4, eot = 3;
  // [0] can end at once with sum ~ -1.3 (score -1.3 over 1 token); [1] continues to a long confident run.
  std::map<std::vector<int>, std::vector<float>> script = {
      {{}, {1.0f, 1.0f, -20, -20}},
      {{0}, {-20, -20, -20, 5.0f}},
      {{1}, {-20, -20, 5.0f, -20}},
      {{1, 2}, {-20, -20, 5.0f, -20}},
      {{1, 2, 2}, {-20, -20, -20, 5.0f}},
  };
  LogitsFn fn = [&](const std::vector<int>& p) {
    auto it = script.find(p);
    return it != script.end() ? it->second : std::vector<float>{-20, -20, -20, 5.0f};
  };
  auto r = RunSearch(fn, V, eot, 2, 10, NoFilter(V, eot));
  ASSERT_TRUE(r.ok());
  ASSERT_GE(r->finished.size(), 2u);
  EXPECT_EQ(r->finished[0].tokens, (std::vector<int>{0}));
  // Both have sum ~ log(0.5); the longer one averages it over 3 tokens and wins.
  EXPECT_EQ(r->best.tokens, (std::vector<int>{1, 2, 2}));
  EXPECT_GT(r->best.score, r->finished[0].score);
  EXPECT_LT(r->best.sum_logprob, r->finished[0].sum_logprob + 1e-3);
}

TEST(BeamSearch, SuppressedTokensAreNeverChosen) {
  const int V = 6, eot = 5;
  LogitFilterConfig c;
  c.n_vocab = V;
  c.eot = eot;
  c.suppress_tokens = {0};
  c.begin_suppress_tokens = {1, eot};
  LogitFilter filter(c);
  // Token 0 is always the best, token 1 second; EOT third from step 1 on.
  LogitsFn fn = [&](const std::vector<int>& p) {
    return std::vector<float>{9, 8, 1, 0, 0, p.empty() ? 7.0f : 2.0f};
  };
  auto r = RunSearch(fn, V, eot, 1, 4, filter);
  ASSERT_TRUE(r.ok());
  // Step 0: 0 (always) and 1, EOT (first position) are out: 2. Then 1 is allowed again.
  EXPECT_EQ(r->best.tokens, (std::vector<int>{2, 1, 1, 1}));
  // The log-probs are those of the filtered distribution.
  const double lp0 = LogSoftmaxD({kNegInf, kNegInf, 1, 0, 0, kNegInf})[2];
  EXPECT_NEAR(r->best.token_logprobs[0], lp0, 1e-6);
}

TEST(BeamSearch, WiderBeamNeverScoresWorseOnTheseScripts) {
  // Not a law of beam search in general, but it holds for these seeds and catches gross bookkeeping bugs
  // (for example, live lists built from the wrong parent).
  const int V = 7, eot = 6;
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    auto fn = HashLogits(V, seed, 0.5f, eot);
    auto g = RunSearch(fn, V, eot, 1, 8, NoFilter(V, eot));
    auto b = RunSearch(fn, V, eot, 4, 8, NoFilter(V, eot));
    ASSERT_TRUE(g.ok() && b.ok());
    // Every finished hypothesis's sum equals the sum of its own token log-probs (+ EOT when it ended).
    for (const Hypothesis& h : b->finished) {
      double sum = 0;
      for (float lp : h.token_logprobs) sum += lp;
      if (h.ended_with_eot) {
        EXPECT_LT(h.sum_logprob, sum + 1e-6);  // plus the EOT's (negative) log-prob
      } else {
        EXPECT_NEAR(sum, h.sum_logprob, 1e-5);
      }
    }
    EXPECT_LE(b->finished.size(), 2u * 4 - 1);  // up to B-1 ended early, plus B live at the limit
  }
}

TEST(BeamSearch, RejectsBadOptionsAndNaN) {
  const int V = 3, eot = 2;
  LogitsFn fn = [&](const std::vector<int>&) { return std::vector<float>{0, std::nanf(""), 0}; };
  auto r = RunSearch(fn, V, eot, 1, 4, NoFilter(V, eot));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos);
  LogitsFn ok = [&](const std::vector<int>&) { return std::vector<float>{0, 1, 0}; };
  EXPECT_FALSE(RunSearch(ok, V, eot, 0, 4, NoFilter(V, eot)).ok());
  EXPECT_FALSE(RunSearch(ok, V, eot, 1, 0, NoFilter(V, eot)).ok());
  EXPECT_FALSE(RunSearch(ok, V, eot, 1, 4, NoFilter(V + 1, eot)).ok());
}

TEST(BeamSearch, MinTokensBeforeEotFixesTheLength) {
  // EOT is by far the likeliest token at every step: without the minimum every search ends at once.
  const int V = 9, eot = 8, M = 6;
  for (int beam : {1, 5}) {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
      auto fn = HashLogits(V, seed, 20.0f, eot);
      auto free_run = RunSearch(fn, V, eot, beam, M, NoFilter(V, eot));
      ASSERT_TRUE(free_run.ok());
      EXPECT_TRUE(free_run->best.tokens.empty());
      LogitFilterConfig c;
      c.n_vocab = V;
      c.eot = eot;
      c.min_tokens_before_eot = M;
      int calls = 0;
      auto forced = RunSearch(fn, V, eot, beam, M, LogitFilter(c), &calls);
      ASSERT_TRUE(forced.ok()) << forced.status().message();
      EXPECT_EQ(forced->finished.size(), static_cast<size_t>(beam));  // every live hypothesis reached M
      for (const Hypothesis& h : forced->finished) {
        EXPECT_EQ(h.tokens.size(), static_cast<size_t>(M));
        EXPECT_FALSE(h.ended_with_eot);
      }
      EXPECT_EQ(calls, M - 1);  // the first token comes from the prompt's logits
      EXPECT_EQ(forced->steps, M - 1);
    }
  }
}

TEST(BeamSearch, EotAllowedOnceTheMinimumIsReached) {
  const int V = 9, eot = 8;
  LogitFilterConfig c;
  c.n_vocab = V;
  c.eot = eot;
  c.min_tokens_before_eot = 3;
  auto r = RunSearch(HashLogits(V, 3, 20.0f, eot), V, eot, 1, 10, LogitFilter(c));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->best.tokens.size(), 3u);
  EXPECT_TRUE(r->best.ended_with_eot);
}

// --- logit filter -------------------------------------------------------------------------------------------
// Vocabulary of 20: text 0..9, EOT 10, no_timestamps 11, timestamps 12..19 (0.00 .. 0.14 s).
LogitFilterConfig TimestampConfig(bool timestamps) {
  LogitFilterConfig c;
  c.n_vocab = 20;
  c.eot = 10;
  c.no_timestamps = 11;
  c.timestamp_begin = 12;
  c.suppress_tokens = {7};
  c.begin_suppress_tokens = {0};
  c.timestamps = timestamps;
  c.max_initial_timestamp_index = 3;
  return c;
}

std::vector<bool> Allowed(const LogitFilter& f, const std::vector<int>& generated, std::vector<float> logits = {}) {
  if (logits.empty()) logits.assign(20, 0.0f);
  f.Apply(logits.data(), generated.data(), static_cast<int>(generated.size()));
  std::vector<bool> allowed;
  for (float v : logits) allowed.push_back(v != kNegInf);
  return allowed;
}

std::vector<int> AllowedIds(const LogitFilter& f, const std::vector<int>& generated, std::vector<float> logits = {}) {
  const auto a = Allowed(f, generated, std::move(logits));
  std::vector<int> ids;
  for (int i = 0; i < static_cast<int>(a.size()); ++i)
    if (a[i]) ids.push_back(i);
  return ids;
}

TEST(LogitFilter, TimestampsOffSuppressesTimestampsAndNoTimestamps) {
  LogitFilter f(TimestampConfig(false));
  EXPECT_EQ(AllowedIds(f, {}), (std::vector<int>{1, 2, 3, 4, 5, 6, 8, 9, 10}));
  EXPECT_EQ(AllowedIds(f, {3}), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10}));
}

TEST(LogitFilter, TimestampRules) {
  LogitFilter f(TimestampConfig(true));
  // Text tokens (and EOT) clearly likelier than the timestamps, so that the forcing rule stays out of the way.
  std::vector<float> logits(20, 0.0f);
  for (int i = 0; i < 12; ++i) logits[i] = 3.0f;
  // First token: a timestamp no later than index 3 (the initial limit).
  EXPECT_EQ(AllowedIds(f, {}, logits), (std::vector<int>{12, 13, 14, 15}));
  // After the opening timestamp: text (or EOT), no timestamp.
  EXPECT_EQ(AllowedIds(f, {12}, logits), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10}));
  // After text: text, EOT, or a timestamp later than the last one.
  EXPECT_EQ(AllowedIds(f, {12, 3}, logits),
            (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19}));
  // After a closing timestamp: another timestamp (equal or later) or EOT, no text.
  EXPECT_EQ(AllowedIds(f, {12, 3, 14}, logits), (std::vector<int>{10, 14, 15, 16, 17, 18, 19}));
  // After a pair: text or EOT.
  EXPECT_EQ(AllowedIds(f, {12, 3, 14, 14}, logits), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10}));
}

TEST(LogitFilter, LikelyTimestampsForceATimestamp) {
  LogitFilter f(TimestampConfig(true));
  const std::vector<int> only_timestamps = {13, 14, 15, 16, 17, 18, 19};
  // After text, with flat logits the seven allowed timestamps together (log 7) beat every text token (0).
  EXPECT_EQ(AllowedIds(f, {12, 3}), only_timestamps);
  std::vector<float> logits(20, 0.0f);
  for (int i = 0; i < 12; ++i) logits[i] = 1.0f;  // e^1 = 2.7 < 7: still timestamps
  EXPECT_EQ(AllowedIds(f, {12, 3}, logits), only_timestamps);
  for (int i = 0; i < 12; ++i) logits[i] = 2.0f;  // e^2 = 7.39 > 7: text stays
  EXPECT_EQ(AllowedIds(f, {12, 3}, logits).size(), 17u);
}

TEST(LogitFilter, ModelWithoutTimestampsIgnoresTheOption) {
  LogitFilterConfig c = TimestampConfig(true);
  c.timestamp_begin = -1;
  LogitFilter f(c);
  EXPECT_FALSE(f.config().timestamps);
  EXPECT_EQ(AllowedIds(f, {}).size(), 20u - 3u);  // 7, 0 (begin), 11 (no_timestamps)
}

TEST(LogitFilter, MinTokensBeforeEot) {
  LogitFilterConfig c = TimestampConfig(false);
  c.min_tokens_before_eot = 2;
  LogitFilter f(c);
  EXPECT_EQ(AllowedIds(f, {}), (std::vector<int>{1, 2, 3, 4, 5, 6, 8, 9}));
  EXPECT_EQ(AllowedIds(f, {3}), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9}));
  EXPECT_EQ(AllowedIds(f, {3, 4}), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10}));
  // With timestamps on the minimum applies after Whisper's rules.
  c.timestamps = true;
  LogitFilter ts(c);
  std::vector<float> logits(20, 0.0f);
  for (int i = 0; i < 12; ++i) logits[i] = 3.0f;
  EXPECT_EQ(AllowedIds(ts, {12, 3, 14}, logits), (std::vector<int>{10, 14, 15, 16, 17, 18, 19}));  // 3 generated
  EXPECT_EQ(AllowedIds(ts, {12}, logits), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 8, 9}));
}

TEST(LogitFilter, MinTokensNeverLeavesARowEmpty) {
  LogitFilterConfig c;
  c.n_vocab = 4;
  c.eot = 3;
  c.suppress_tokens = {0, 1, 2};
  c.min_tokens_before_eot = 5;
  LogitFilter f(c);
  std::vector<float> logits(4, 0.0f);
  f.Apply(logits.data(), nullptr, 0);
  EXPECT_EQ(logits[3], 0.0f);  // EOT is all that is left: it stays
}

}  // namespace
}  // namespace earshot
