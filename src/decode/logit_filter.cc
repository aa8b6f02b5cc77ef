#include "decode/logit_filter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ops.h"

namespace earshot {
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

LogitFilterConfig MakeLogitFilterConfig(const ModelMeta& meta, bool timestamps) {
  LogitFilterConfig c;
  c.n_vocab = meta.hparams.n_vocab;
  c.eot = meta.special.eot;
  c.no_timestamps = meta.special.no_timestamps;
  c.timestamp_begin = meta.special.timestamp_begin;
  c.suppress_tokens = meta.special.suppress_tokens;
  c.begin_suppress_tokens = meta.special.begin_suppress_tokens;
  c.timestamps = timestamps && c.timestamp_begin >= 0;
  return c;
}

LogitFilter::LogitFilter(LogitFilterConfig config) : config_(std::move(config)) {
  if (config_.timestamp_begin < 0 || config_.timestamp_begin >= config_.n_vocab) {
    config_.timestamps = false;  // nothing to generate
    config_.timestamp_begin = -1;
  }
  const int n = config_.n_vocab;
  std::vector<uint8_t> always(static_cast<size_t>(std::max(n, 0)), 0);
  for (int id : config_.suppress_tokens)
    if (id >= 0 && id < n) always[id] = 1;
  if (config_.no_timestamps >= 0 && config_.no_timestamps < n) always[config_.no_timestamps] = 1;
  if (!config_.timestamps && config_.timestamp_begin >= 0)
    for (int id = config_.timestamp_begin; id < n; ++id) always[id] = 1;
  for (int id = 0; id < n; ++id)
    if (always[id]) always_ids_.push_back(id);
}

void LogitFilter::Apply(float* logits, const int* generated, int n_generated) const {
  ApplyRules(logits, generated, n_generated);
  const int n = config_.n_vocab, eot = config_.eot;
  if (n_generated >= config_.min_tokens_before_eot || eot < 0 || eot >= n) return;
  // Only while another token remains possible: a row with nothing left would have no log-probs at all.
  for (int id = 0; id < n; ++id)
    if (id != eot && logits[id] != kNegInf) {
      logits[eot] = kNegInf;
      return;
    }
}

void LogitFilter::ApplyRules(float* logits, const int* generated, int n_generated) const {
  const int n = config_.n_vocab;
  for (int id : always_ids_) logits[id] = kNegInf;
  if (n_generated == 0)
    for (int id : config_.begin_suppress_tokens)
      if (id >= 0 && id < n) logits[id] = kNegInf;
  if (!config_.timestamps) return;

  const int ts = config_.timestamp_begin;
  const bool last_was_ts = n_generated >= 1 && generated[n_generated - 1] >= ts;
  const bool penultimate_was_ts = n_generated < 2 || generated[n_generated - 2] >= ts;
  if (last_was_ts) {
    if (penultimate_was_ts) {
      for (int id = ts; id < n; ++id) logits[id] = kNegInf;  // a pair just closed: text or EOT next
    } else {
      const int text_end = std::min(config_.eot >= 0 ? config_.eot : ts, ts);
      for (int id = 0; id < text_end; ++id) logits[id] = kNegInf;  // a lone timestamp: close the pair
    }
  }
  // Timestamps never go back: not below the last one (nor equal to it, unless it opens the pair).
  int last_ts = -1;
  for (int i = n_generated - 1; i >= 0; --i)
    if (generated[i] >= ts) {
      last_ts = generated[i];
      break;
    }
  if (last_ts >= 0) {
    const int limit = (last_was_ts && !penultimate_was_ts) ? last_ts : last_ts + 1;
    for (int id = ts; id < std::min(limit, n); ++id) logits[id] = kNegInf;
  }
  if (n_generated == 0) {
    for (int id = 0; id < ts; ++id) logits[id] = kNegInf;  // start with a timestamp
    for (int id = ts + config_.max_initial_timestamp_index + 1; id < n; ++id) logits[id] = kNegInf;
  }
  // If the timestamps together are likelier than any single text token, take a timestamp.
  thread_local std::vector<float> lp;  // Apply runs for several hypotheses at once
  lp.assign(logits, logits + n);
  LogSoftmax(lp.data(), n);
  float max_text = kNegInf;
  for (int id = 0; id < ts; ++id) max_text = std::max(max_text, lp[id]);
  float max_ts = kNegInf;
  for (int id = ts; id < n; ++id) max_ts = std::max(max_ts, lp[id]);
  if (max_ts == kNegInf) return;
  double sum = 0;
  for (int id = ts; id < n; ++id) sum += std::exp(static_cast<double>(lp[id] - max_ts));
  const double ts_logprob = max_ts + std::log(sum);
  if (ts_logprob > max_text)
    for (int id = 0; id < ts; ++id) logits[id] = kNegInf;
}

}  // namespace earshot
