// libFuzzer target: arbitrary bytes through the WAV reader, and decoded audio through the resampler and the
// log-mel front end. Sizes are bounded so that each input runs in milliseconds. Seeds: tests/fuzz/corpus_wav
// (regenerate with tests/fuzz/wav_corpus.py).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "audio/mel.h"
#include "audio/resample.h"
#include "audio/wav.h"

namespace {

constexpr size_t kMaxResampleInput = 1024;
constexpr size_t kMaxResampleOutput = 512;  // upsampling from 1 kHz multiplies the work by 16
constexpr size_t kMaxMelInput = 4000;

const earshot::MelFrontEnd& FrontEnd() {
  static const earshot::MelFrontEnd front = [] {
    auto created = earshot::MelFrontEnd::Create(earshot::MelSettings{});
    if (!created.ok()) __builtin_trap();
    return created.value();
  }();
  return front;
}

void CheckFinite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto audio = earshot::DecodeWav(data, size);
  if (!audio.ok()) {
    if (audio.status().message().empty()) __builtin_trap();  // every rejection must say why
    return 0;
  }
  const std::vector<float>& pcm = audio->samples;
  if (pcm.empty() || audio->sample_rate < earshot::kMinWavSampleRate ||
      audio->sample_rate > earshot::kMaxWavSampleRate || audio->source_channels < 1) {
    __builtin_trap();
  }
  CheckFinite(pcm.data(), pcm.size());

  size_t resample_n = std::min(pcm.size(), kMaxResampleInput);
  resample_n = std::min(resample_n, kMaxResampleOutput * static_cast<size_t>(audio->sample_rate) / 16000);
  auto resampled = earshot::Resample(pcm.data(), resample_n, audio->sample_rate, 16000);
  if (!resampled.ok()) __builtin_trap();  // every rate the reader accepts must resample
  CheckFinite(resampled->data(), resampled->size());

  const size_t mel_n = std::min(pcm.size(), kMaxMelInput);
  auto mel = FrontEnd().Compute(pcm.data(), mel_n);
  // Float WAVs may hold finite values far outside [-1, 1]; the front end refuses those with a message.
  if (mel.ok()) {
    if (mel->data.size() != static_cast<size_t>(mel->n_mels) * static_cast<size_t>(mel->n_frames)) __builtin_trap();
    CheckFinite(mel->data.data(), mel->data.size());
  }
  return 0;
}
