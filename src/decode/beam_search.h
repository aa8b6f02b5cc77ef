// Beam search over any next-token scorer (the decoder, or a scripted fake in tests). The procedure is fixed
// by the project's decoding spec so that the PyTorch reference and this engine pick the same tokens:
//   - each live hypothesis proposes its top beam_size+1 tokens (ties: lower id first);
//   - candidates, in hypothesis then rank order, are stable-sorted by cumulative log-prob, descending;
//   - walking them, EOT candidates finish (while fewer than beam_size have), others become the next live
//     list until it holds beam_size;
//   - stop when beam_size hypotheses finished, none is live, or max_new_tokens were generated (then the
//     live ones finish too, in order);
//   - the result is the finished hypothesis with the best sum_logprob / max(1, generated tokens) (ties: the
//     earlier). Greedy decoding is beam_size 1.
#pragma once

#include <vector>

#include "core/status.h"
#include "decode/logit_filter.h"

namespace earshot {

// Supplies logits for the next token of every live hypothesis.
class StepScorer {
 public:
  virtual ~StepScorer() = default;
  // Hypothesis i extends the hypothesis that was row source_rows[i] of the previous call (for the first
  // call, row 0: the prompt) with token new_tokens[i]; generated[i] is its whole generated sequence so far
  // (prompt excluded, new token included). Writes logits [rows][n_vocab], rows = source_rows.size().
  virtual Status Score(const std::vector<int>& source_rows, const std::vector<int>& new_tokens,
                       const std::vector<std::vector<int>>& generated, float* logits) = 0;
};

struct BeamOptions {
  int beam_size = 5;
  int max_new_tokens = 0;  // > 0
  int eot = -1;
  int n_vocab = 0;
};

struct Hypothesis {
  std::vector<int> tokens;           // generated tokens, EOT excluded
  std::vector<float> token_logprobs; // log-prob of each token when it was chosen
  double sum_logprob = 0;            // includes the EOT's log-prob when the hypothesis ended with EOT
  double score = 0;                  // sum_logprob / max(1, tokens.size())
  bool ended_with_eot = false;
};

struct BeamResult {
  Hypothesis best;
  std::vector<Hypothesis> finished;  // in the order they finished
  int steps = 0;                     // decoder calls made after the prompt
};

// prompt_logits: logits [n_vocab] after the last prompt token.
Expected<BeamResult> BeamSearch(StepScorer& scorer, const float* prompt_logits, const BeamOptions& options,
                                const LogitFilter& filter);

}  // namespace earshot
