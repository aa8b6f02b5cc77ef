#include "audio/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace earshot {
namespace {

// Filter design. The kernel is sinc(2 fc t) under a Kaiser window spanning kZeroCrossings zero crossings on
// each side. Kaiser's estimate puts the transition band at fc * 2 (A - 7.95) / (28.7 kZeroCrossings) wide
// (A = stopband attenuation in dB); kRolloff places its upper edge at the lower Nyquist frequency.
constexpr int kZeroCrossings = 48;
constexpr double kStopbandDb = 90.0;
constexpr double kKaiserBeta = 0.1102 * (kStopbandDb - 8.7);
constexpr double kTransitionOverCutoff = 2.0 * (kStopbandDb - 7.95) / (28.7 * kZeroCrossings);
constexpr double kRolloff = 1.0 / (1.0 + kTransitionOverCutoff / 2.0);

// The kernel is tabulated at this many points per zero crossing and linearly interpolated; the
// interpolation error (about 1e-6 of the peak) stays below the stopband.
constexpr int kProtoOversample = 1024;
// Polyphase tables (one row of taps per distinct output phase) are built when they fit in this many
// entries and the output is long enough to reuse them; otherwise the kernel is evaluated per output sample.
constexpr size_t kMaxTableEntries = size_t{1} << 20;

constexpr double kPi = 3.14159265358979323846;

// Modified Bessel function of the first kind, order 0, by its power series (converges fast for the
// arguments a Kaiser window uses).
double BesselI0(double x) {
  double sum = 1.0, term = 1.0;
  const double quarter_x2 = 0.25 * x * x;
  for (int k = 1; k < 200; ++k) {
    term *= quarter_x2 / (static_cast<double>(k) * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

int Gcd(int a, int b) {
  while (b != 0) {
    int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// One-sided kernel in units of zero crossings: proto[i] = kernel(i / kProtoOversample).
class KernelPrototype {
 public:
  KernelPrototype() {
    const size_t points = static_cast<size_t>(kZeroCrossings) * kProtoOversample;
    values_.assign(points + 2, 0.0f);  // the last two stay zero: the kernel ends at kZeroCrossings
    const double inverse_i0_beta = 1.0 / BesselI0(kKaiserBeta);
    for (size_t i = 0; i < points; ++i) {
      double u = static_cast<double>(i) / kProtoOversample;
      double sinc = i == 0 ? 1.0 : std::sin(kPi * u) / (kPi * u);
      double x = u / kZeroCrossings;
      double window = BesselI0(kKaiserBeta * std::sqrt(std::max(0.0, 1.0 - x * x))) * inverse_i0_beta;
      values_[i] = static_cast<float>(sinc * window);
    }
  }

  // Kernel at `u` zero crossings from the centre (u >= 0).
  float operator()(double u) const {
    double position = u * kProtoOversample;
    if (position >= static_cast<double>(values_.size() - 2)) return 0.0f;
    size_t index = static_cast<size_t>(position);
    float frac = static_cast<float>(position - static_cast<double>(index));
    return values_[index] + frac * (values_[index + 1] - values_[index]);
  }

 private:
  std::vector<float> values_;
};

// Four independent partial sums: a single running sum is bound by add latency (compilers keep float
// additions in order without -ffast-math).
float Dot(const float* a, const float* b, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

const KernelPrototype& Prototype() {
  static const KernelPrototype prototype;
  return prototype;
}

}  // namespace

Expected<std::vector<float>> Resample(const float* in, size_t n, int from_rate, int to_rate) {
  if (from_rate < 1 || from_rate > kMaxResampleRate || to_rate < 1 || to_rate > kMaxResampleRate) {
    return Status::Error("resample: rates must be in 1.." + std::to_string(kMaxResampleRate) + " Hz (got " +
                         std::to_string(from_rate) + " -> " + std::to_string(to_rate) + ")");
  }
  if (n > 0 && in == nullptr) return Status::Error("resample: null input");
  if (static_cast<uint64_t>(n) > UINT64_MAX / static_cast<uint64_t>(to_rate)) {
    return Status::Error("resample: input too long");
  }
  const uint64_t out_n = (static_cast<uint64_t>(n) * static_cast<uint64_t>(to_rate) +
                          static_cast<uint64_t>(from_rate) / 2) / static_cast<uint64_t>(from_rate);
  if (out_n > kMaxResampleOutput) {
    return Status::Error("resample: output of " + std::to_string(out_n) + " samples exceeds the limit of " +
                         std::to_string(kMaxResampleOutput));
  }
  if (from_rate == to_rate) return std::vector<float>(in, in + n);

  // Output j sits at input time j * step / phases, an exact rational.
  const int divisor = Gcd(from_rate, to_rate);
  const uint64_t phases = static_cast<uint64_t>(to_rate / divisor);
  const uint64_t step = static_cast<uint64_t>(from_rate / divisor);

  // Cutoff in cycles per input sample, below the lower Nyquist frequency.
  const double cutoff = kRolloff * 0.5 * std::min(1.0, static_cast<double>(to_rate) / from_rate);
  const double crossings_per_sample = 2.0 * cutoff;  // kernel argument per input sample of distance
  const double half_width = kZeroCrossings / crossings_per_sample;
  const int64_t reach = static_cast<int64_t>(std::ceil(half_width));
  const size_t taps = static_cast<size_t>(2 * reach + 2);  // offsets -reach .. reach+1 around floor(t)
  const KernelPrototype& kernel = Prototype();

  std::vector<float> out(static_cast<size_t>(out_n));
  const int64_t length = static_cast<int64_t>(n);

  // A table pays off when phases repeat; for short inputs with many phases direct evaluation is cheaper.
  if (phases * taps <= kMaxTableEntries && phases <= out_n) {
    // Row p holds the taps for outputs whose position has fractional part p / phases, normalised to unit
    // DC gain so that a constant signal passes unchanged.
    std::vector<float> table(static_cast<size_t>(phases) * taps);
    for (uint64_t p = 0; p < phases; ++p) {
      float* row = table.data() + p * taps;
      const double frac = static_cast<double>(p) / static_cast<double>(phases);
      double sum = 0.0;
      for (size_t k = 0; k < taps; ++k) {
        double distance = std::fabs(static_cast<double>(static_cast<int64_t>(k) - reach) - frac);
        row[k] = kernel(distance * crossings_per_sample);
        sum += row[k];
      }
      const float scale = static_cast<float>(1.0 / sum);
      for (size_t k = 0; k < taps; ++k) row[k] *= scale;
    }
    for (uint64_t j = 0; j < out_n; ++j) {
      const uint64_t position = j * step;
      const int64_t first = static_cast<int64_t>(position / phases) - reach;  // input index of tap 0
      const float* row = table.data() + (position % phases) * taps;
      const int64_t lo = std::max<int64_t>(0, first);
      const int64_t hi = std::min<int64_t>(length, first + static_cast<int64_t>(taps));
      const size_t count = static_cast<size_t>(std::max<int64_t>(0, hi - lo));
      out[static_cast<size_t>(j)] = Dot(in + lo, row + (lo - first), count);
    }
    return out;
  }

  // Large reduced ratios (e.g. 44100 -> 44101) or short inputs: evaluate the kernel for each output sample.
  for (uint64_t j = 0; j < out_n; ++j) {
    const uint64_t position = j * step;
    const int64_t base = static_cast<int64_t>(position / phases);
    const double frac = static_cast<double>(position % phases) / static_cast<double>(phases);
    double acc = 0.0, weight_sum = 0.0;
    for (int64_t k = -reach; k <= reach + 1; ++k) {
      const double distance = std::fabs(static_cast<double>(k) - frac);
      const float w = kernel(distance * crossings_per_sample);
      weight_sum += w;
      const int64_t i = base + k;
      if (i >= 0 && i < length) acc += static_cast<double>(in[i]) * w;
    }
    out[static_cast<size_t>(j)] = static_cast<float>(acc / weight_sum);
  }
  return out;
}

}  // namespace earshot
