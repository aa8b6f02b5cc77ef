#include "audio/mel.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace earshot {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 384000;
constexpr int kMinFft = 2;
constexpr int kMaxFft = 1 << 14;
constexpr int kMaxMels = 512;
constexpr float kLogFloor = 1e-10f;
constexpr float kDynamicRange = 8.0f;  // log10 units: 80 dB

// Slaney's auditory-toolbox mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
constexpr double kLinearHzPerMel = 200.0 / 3.0;
constexpr double kBreakHz = 1000.0;
constexpr double kBreakMel = kBreakHz / kLinearHzPerMel;  // 15
const double kLogStep = std::log(6.4) / 27.0;

double HzToMel(double hz) {
  return hz < kBreakHz ? hz / kLinearHzPerMel : kBreakMel + std::log(hz / kBreakHz) / kLogStep;
}

double MelToHz(double mel) {
  return mel < kBreakMel ? mel * kLinearHzPerMel : kBreakHz * std::exp(kLogStep * (mel - kBreakMel));
}

// Reflect-padded input index: mirrors around the first and last sample without repeating them.
size_t ReflectIndex(int64_t i, int64_t length) {
  if (i < 0) return static_cast<size_t>(-i);
  if (i >= length) return static_cast<size_t>(2 * (length - 1) - i);
  return static_cast<size_t>(i);
}

}  // namespace

std::vector<float> SlaneyMelFilters(int sample_rate, int n_fft, int n_mels) {
  const int bins = n_fft / 2 + 1;
  std::vector<double> bin_hz(bins);
  for (int k = 0; k < bins; ++k) bin_hz[k] = static_cast<double>(k) * sample_rate / n_fft;

  // n_mels + 2 edges, evenly spaced in mel from 0 Hz to Nyquist.
  std::vector<double> edge_hz(n_mels + 2);
  const double max_mel = HzToMel(sample_rate / 2.0);
  for (int i = 0; i < n_mels + 2; ++i) edge_hz[i] = MelToHz(max_mel * i / (n_mels + 1));

  std::vector<float> filters(static_cast<size_t>(n_mels) * bins, 0.0f);
  for (int m = 0; m < n_mels; ++m) {
    const double lower_width = edge_hz[m + 1] - edge_hz[m];
    const double upper_width = edge_hz[m + 2] - edge_hz[m + 1];
    // Area normalisation: each triangle integrates to 1 over frequency in Hz.
    const double area_norm = 2.0 / (edge_hz[m + 2] - edge_hz[m]);
    for (int k = 0; k < bins; ++k) {
      const double rising = (bin_hz[k] - edge_hz[m]) / lower_width;
      const double falling = (edge_hz[m + 2] - bin_hz[k]) / upper_width;
      const double triangle = std::max(0.0, std::min(rising, falling));
      // librosa stores the triangle as float32 before scaling; rounding the same way reproduces its
      // tables (and Whisper's mel_filters.npz) bit for bit.
      filters[static_cast<size_t>(m) * bins + k] =
          static_cast<float>(static_cast<double>(static_cast<float>(triangle)) * area_norm);
    }
  }
  return filters;
}

Expected<MelFrontEnd> MelFrontEnd::Create(const MelSettings& settings) {
  if (settings.sample_rate < kMinSampleRate || settings.sample_rate > kMaxSampleRate) {
    return Status::Error("mel: sample rate " + std::to_string(settings.sample_rate) + " Hz is outside " +
                         std::to_string(kMinSampleRate) + ".." + std::to_string(kMaxSampleRate));
  }
  if (settings.n_fft < kMinFft || settings.n_fft > kMaxFft) {
    return Status::Error("mel: n_fft " + std::to_string(settings.n_fft) + " is outside " +
                         std::to_string(kMinFft) + ".." + std::to_string(kMaxFft));
  }
  // A hop longer than the window would skip audio between frames.
  if (settings.hop_length < 1 || settings.hop_length > settings.n_fft) {
    return Status::Error("mel: hop_length " + std::to_string(settings.hop_length) + " is outside 1..n_fft (" +
                         std::to_string(settings.n_fft) + ")");
  }
  if (settings.n_mels < 1 || settings.n_mels > kMaxMels) {
    return Status::Error("mel: n_mels " + std::to_string(settings.n_mels) + " is outside 1.." +
                         std::to_string(kMaxMels));
  }

  MelFrontEnd front;
  front.settings_ = settings;
  EARSHOT_ASSIGN_OR_RETURN(front.fft_, RealFft::Create(static_cast<size_t>(settings.n_fft)));

  const size_t bins = static_cast<size_t>(settings.n_fft / 2 + 1);
  const size_t n_mels = static_cast<size_t>(settings.n_mels);
  if (!settings.filters.empty()) {
    if (settings.filters.size() != n_mels * bins) {
      return Status::Error("mel: filter bank has " + std::to_string(settings.filters.size()) +
                           " values; expected n_mels x (n_fft/2+1) = " + std::to_string(n_mels * bins));
    }
    for (float w : settings.filters) {
      if (!std::isfinite(w)) return Status::Error("mel: filter bank contains a non-finite value");
    }
    front.filters_ = settings.filters;
  } else {
    front.filters_ = SlaneyMelFilters(settings.sample_rate, settings.n_fft, settings.n_mels);
  }

  // Each filter touches a short run of bins: keep only that run.
  front.bands_.resize(n_mels);
  for (size_t m = 0; m < n_mels; ++m) {
    const float* row = front.filters_.data() + m * bins;
    size_t first = 0;
    while (first < bins && row[first] == 0.0f) ++first;
    size_t last = bins;
    while (last > first && row[last - 1] == 0.0f) --last;
    front.bands_[m].first_bin = static_cast<int>(first);
    front.bands_[m].weights.assign(row + first, row + last);
  }

  // Periodic Hann (torch.hann_window's default), the window Whisper uses.
  front.window_.resize(static_cast<size_t>(settings.n_fft));
  for (int i = 0; i < settings.n_fft; ++i) {
    front.window_[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * kPi * i / settings.n_fft));
  }
  return front;
}

size_t MelFrontEnd::FrameCount(size_t n, size_t pad_to_samples) const {
  if (n == 0 || settings_.hop_length < 1) return 0;
  const size_t half = static_cast<size_t>(settings_.n_fft / 2);
  const size_t length = std::max({n, pad_to_samples, half + 1});
  if (length > kMaxInputSamples) return 0;
  return (length + 2 * half - static_cast<size_t>(settings_.n_fft)) / static_cast<size_t>(settings_.hop_length);
}

Expected<LogMel> MelFrontEnd::Compute(const float* pcm, size_t n, size_t pad_to_samples) const {
  if (n == 0) return Status::Error("mel: no audio samples");
  if (pcm == nullptr) return Status::Error("mel: null audio buffer");
  if (window_.empty()) return Status::Error("mel: front end not initialised (use MelFrontEnd::Create)");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(pcm[i])) {
      return Status::Error("mel: sample " + std::to_string(i) + " is " + (std::isnan(pcm[i]) ? "NaN" : "infinite"));
    }
    if (std::fabs(pcm[i]) > kMaxSampleMagnitude) {
      return Status::Error("mel: sample " + std::to_string(i) + " has magnitude " + std::to_string(pcm[i]) +
                           "; audio is expected in about [-1, 1]");
    }
  }

  const size_t n_fft = static_cast<size_t>(settings_.n_fft);
  const size_t hop = static_cast<size_t>(settings_.hop_length);
  const size_t half = n_fft / 2;
  const size_t n_mels = static_cast<size_t>(settings_.n_mels);
  const size_t bins = n_fft / 2 + 1;
  const size_t length = std::max({n, pad_to_samples, half + 1});
  if (length > kMaxInputSamples) {
    return Status::Error("mel: padded input of " + std::to_string(length) + " samples exceeds the limit of " +
                         std::to_string(kMaxInputSamples));
  }
  const size_t frames = FrameCount(n, pad_to_samples);
  if (frames == 0) {
    return Status::Error("mel: " + std::to_string(n) + " samples are too few for one frame (hop " +
                         std::to_string(hop) + ")");
  }
  if (frames > kMaxOutputValues / n_mels) {
    return Status::Error("mel: audio too long (" + std::to_string(frames) + " frames exceed the limit of " +
                         std::to_string(kMaxOutputValues / n_mels) + ")");
  }

  // Zero-extend to the padded length, then mirror n_fft/2 samples on each side (centred frames).
  std::vector<float> padded(length + 2 * half, 0.0f);
  std::copy(pcm, pcm + n, padded.begin() + static_cast<std::ptrdiff_t>(half));
  for (size_t i = 0; i < half; ++i) {
    padded[i] = padded[half + ReflectIndex(static_cast<int64_t>(i) - static_cast<int64_t>(half),
                                           static_cast<int64_t>(length))];
    padded[half + length + i] =
        padded[half + ReflectIndex(static_cast<int64_t>(length + i), static_cast<int64_t>(length))];
  }

  LogMel out;
  out.n_mels = static_cast<int>(n_mels);
  out.n_frames = static_cast<int>(frames);
  out.data.assign(n_mels * frames, 0.0f);

  std::vector<float> segment(n_fft);
  std::vector<Complex> spectrum(bins);
  std::vector<float> power(bins);
  std::vector<Complex> scratch;
  float max_log = -1e30f;
  for (size_t t = 0; t < frames; ++t) {
    const float* frame = padded.data() + t * hop;
    for (size_t i = 0; i < n_fft; ++i) segment[i] = frame[i] * window_[i];
    fft_.Forward(segment.data(), spectrum.data(), scratch);
    for (size_t k = 0; k < bins; ++k) {
      // Explicit |X|^2: std::norm may go through a square root (std::abs) first.
      power[k] = spectrum[k].real() * spectrum[k].real() + spectrum[k].imag() * spectrum[k].imag();
    }
    for (size_t m = 0; m < n_mels; ++m) {
      const Band& band = bands_[m];
      const float* p = power.data() + band.first_bin;
      float energy = 0.0f;
      for (size_t k = 0; k < band.weights.size(); ++k) energy += band.weights[k] * p[k];
      // log10 in double, rounded once: glibc's and Emscripten's float log10 differ by an ulp now and then, their
      // double ones round to the same float, so native and WebAssembly builds compute identical features.
      const float log_energy = static_cast<float>(std::log10(static_cast<double>(std::max(energy, kLogFloor))));
      out.data[m * frames + t] = log_energy;
      max_log = std::max(max_log, log_energy);
    }
  }

  const float floor = max_log - kDynamicRange;
  for (float& v : out.data) v = (std::max(v, floor) + 4.0f) / 4.0f;
  return out;
}

}  // namespace earshot
