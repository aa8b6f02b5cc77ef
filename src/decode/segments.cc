#include "decode/segments.h"

namespace earshot {

std::vector<TimedText> SplitAtTimestamps(const std::vector<int>& tokens, const Detokenizer& detok,
                                         int timestamp_begin, double offset_s, double end_s) {
  std::vector<TimedText> out;
  TimedText open;
  bool has_start = false;
  for (int id : tokens) {
    if (detok.IsTimestamp(id)) {
      const double t = offset_s + (id - timestamp_begin) * kTimestampStepSeconds;
      if (has_start && !open.tokens.empty()) {
        open.end = t;
        out.push_back(std::move(open));
        open = TimedText();
        has_start = false;
      } else {
        open.start = t;  // opens a segment (a second timestamp in a row only moves the start)
        has_start = true;
      }
    } else if (detok.IsText(id)) {
      if (!has_start && open.tokens.empty()) open.start = out.empty() ? offset_s : out.back().end;
      open.tokens.push_back(id);
    }
  }
  if (!open.tokens.empty()) {
    open.end = end_s;
    out.push_back(std::move(open));
  }
  return out;
}

}  // namespace earshot
