// Whisper-compatible log-mel front end (DESIGN.md section 9): centred STFT with reflect padding, periodic
// Hann window, power spectrum, Slaney-scale mel filters with Slaney area normalisation, log10 with a floor,
// dynamic range clamped to 8 (80 dB) below the maximum, then (x + 4) / 4.
#pragma once

#include <cstddef>
#include <vector>

#include "audio/fft.h"
#include "core/status.h"
#include "model/model.h"

namespace earshot {

// [n_mels][n_frames], row-major (Whisper's layout).
struct LogMel {
  int n_mels = 0;
  int n_frames = 0;
  std::vector<float> data;
};

// Mel filter bank as librosa.filters.mel(sr, n_fft, n_mels) builds it by default (htk=False, norm='slaney',
// fmin 0, fmax sr/2): [n_mels][n_fft/2+1] row-major. Built in double, rounded to float the way librosa
// does, so that it matches the tables Whisper ships.
std::vector<float> SlaneyMelFilters(int sample_rate, int n_fft, int n_mels);

class MelFrontEnd {
 public:
  // Input limits: longer inputs are refused rather than risking an allocation the browser cannot serve.
  static constexpr size_t kMaxOutputValues = size_t{1} << 28;
  static constexpr size_t kMaxInputSamples = size_t{1} << 28;  // after padding; ~4.6 h at 16 kHz
  // Samples beyond this magnitude are not audio in any scale (and would overflow the power spectrum).
  static constexpr float kMaxSampleMagnitude = 1e6f;

  // Validates the settings and precomputes window, FFT plan and filters (settings.filters when given).
  static Expected<MelFrontEnd> Create(const MelSettings& settings);

  // Whisper-compatible log-mel. pad_to_samples > n zero-pads the audio first (Whisper: 480000 = 30 s).
  // Input shorter than n_fft/2 + 1 samples is zero-padded to that length first, because reflect padding
  // needs it (torch.stft would fail there). Frames: floor((L + 2*(n_fft/2) - n_fft) / hop) for the padded
  // length L, which is L / hop for even n_fft (the centred STFT's last frame is dropped, as Whisper does).
  Expected<LogMel> Compute(const float* pcm, size_t n, size_t pad_to_samples = 0) const;

  // Number of frames Compute returns for n samples (0 when n == 0 or the padded length exceeds the limit).
  size_t FrameCount(size_t n, size_t pad_to_samples = 0) const;

  const MelSettings& settings() const { return settings_; }
  int n_mels() const { return settings_.n_mels; }
  int n_bins() const { return settings_.n_fft / 2 + 1; }
  // Dense filter bank in use: [n_mels][n_bins].
  const std::vector<float>& filters() const { return filters_; }

  MelFrontEnd() = default;

 private:
  struct Band {
    int first_bin = 0;
    std::vector<float> weights;  // nonzero span of the filter, starting at first_bin
  };

  MelSettings settings_;
  std::vector<float> window_;
  std::vector<float> filters_;
  std::vector<Band> bands_;
  RealFft fft_;
};

}  // namespace earshot
