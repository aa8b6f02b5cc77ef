// Token suppression and Whisper's timestamp rules, applied to raw logits before log_softmax.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace earshot {

struct LogitFilterConfig {
  int n_vocab = 0;
  int eot = -1;
  int no_timestamps = -1;
  int timestamp_begin = -1;               // first timestamp id (<|0.00|>); -1: the model has none
  std::vector<int> suppress_tokens;       // never generated
  std::vector<int> begin_suppress_tokens; // not generated as the first token
  bool timestamps = false;                // generate timestamp tokens (needs timestamp_begin >= 0)
  int max_initial_timestamp_index = 50;   // first timestamp at most 1.0 s (50 steps of 0.02 s)
  // EOT is suppressed until this many tokens were generated. Benchmarks on random weights set it to the
  // token budget so every run decodes the same number of tokens.
  int min_tokens_before_eot = 0;
};

// The configuration a model's metadata implies.
LogitFilterConfig MakeLogitFilterConfig(const ModelMeta& meta, bool timestamps);

class LogitFilter {
 public:
  explicit LogitFilter(LogitFilterConfig config);

  // Sets the logits of tokens that may not follow `generated` (the tokens generated so far, prompt excluded)
  // to -inf. With timestamps off: suppress_tokens, begin_suppress_tokens at the first position, every
  // timestamp id and no_timestamps. With timestamps on, Whisper's rules instead of the last two:
  // no_timestamps never; timestamps come in pairs (after a lone timestamp only another timestamp or EOT,
  // after a pair no timestamp); they never decrease; the first token is a timestamp <= the initial limit;
  // when the timestamps' total probability beats every text token, a timestamp is forced. Then EOT while
  // fewer than min_tokens_before_eot were generated, unless nothing else is left. Safe to call from several
  // threads at once.
  void Apply(float* logits, const int* generated, int n_generated) const;

  const LogitFilterConfig& config() const { return config_; }

 private:
  void ApplyRules(float* logits, const int* generated, int n_generated) const;  // all but the EOT minimum

  LogitFilterConfig config_;
  std::vector<int> always_ids_;  // suppressed at every position, ascending (a few thousand of a large vocabulary)
};

}  // namespace earshot
