// Band-limited sample-rate conversion (Kaiser-windowed sinc) for whole buffers.
#pragma once

#include <cstddef>
#include <vector>

#include "core/status.h"

namespace earshot {

constexpr int kMaxResampleRate = 1000000;
// Output buffers larger than this are refused (2^28 samples: about 4.6 hours at 16 kHz).
constexpr size_t kMaxResampleOutput = size_t{1} << 28;

// Converts `n` samples from `from_rate` to `to_rate` (both in 1..kMaxResampleRate Hz, any ratio).
// Output length is round(n * to_rate / from_rate); output sample j sits at input time j * from / to, with
// zeros assumed outside the input. The low-pass cutoff lies below the lower of the two Nyquist
// frequencies so that the stopband (about 90 dB down) starts at that Nyquist frequency; the passband is
// flat to about 0.88 of it. Equal rates return a copy.
Expected<std::vector<float>> Resample(const float* in, size_t n, int from_rate, int to_rate);

}  // namespace earshot
