// Segments from Whisper timestamp tokens.
#pragma once

#include <vector>

#include "decode/detokenizer.h"

namespace earshot {

struct TimedText {
  double start = 0, end = 0;
  std::vector<int> tokens;  // the text tokens between the two timestamps
};

// Splits generated tokens at timestamp tokens (<|t|> text <|t'|> ...; a timestamp after text closes the
// segment, the next one opens a new segment). Times are offset_s + (id - timestamp_begin) * 0.02. Text after
// the last timestamp becomes a segment ending at end_s. Segments without text tokens are dropped.
std::vector<TimedText> SplitAtTimestamps(const std::vector<int>& tokens, const Detokenizer& detok,
                                         int timestamp_begin, double offset_s, double end_s);

constexpr double kTimestampStepSeconds = 0.02;

}  // namespace earshot
