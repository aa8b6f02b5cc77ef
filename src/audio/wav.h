// Strict WAV (RIFF/WAVE) reader. Files come from users and the web, so every size is checked against the
// bytes actually present before it is used, and anything unusual is an error that says what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace earshot {

// Mono audio at the file's own rate; samples nominally in [-1, 1].
struct PcmAudio {
  int sample_rate = 0;
  int source_channels = 0;
  int source_bits = 0;
  std::vector<float> samples;
};

constexpr int kMinWavSampleRate = 1000;
constexpr int kMaxWavSampleRate = 384000;
// Float samples beyond this magnitude are refused: they are not audio on any scale (some writers use the
// 16-bit range, ±32768, which passes) and would overflow later arithmetic.
constexpr double kMaxFloatWavMagnitude = 1e6;
// ReadWavFile refuses larger files before reading them (about 2 h of 48 kHz stereo float).
constexpr size_t kMaxWavFileBytes = size_t{2} << 30;

// Accepts PCM 8 (unsigned), 16, 24, 32-bit integer, IEEE float 32/64-bit (format 3), and
// WAVE_FORMAT_EXTENSIBLE with a PCM or float sub-format; any channel count (mixed down to the mean of the
// channels); sample rates in [kMinWavSampleRate, kMaxWavSampleRate]. Float samples must be finite and
// within kMaxFloatWavMagnitude.
Expected<PcmAudio> DecodeWav(const uint8_t* bytes, size_t size);

// Reads the file (size-checked) and decodes it.
Expected<PcmAudio> ReadWavFile(const std::string& path);

// Reads any supported WAV and returns mono float at 16 kHz (downmix + band-limited resampling as needed).
Expected<std::vector<float>> LoadAudio16k(const std::string& path);

}  // namespace earshot
