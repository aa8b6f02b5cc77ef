// The Whisper audio encoder: two convolutions (the second halves the frame rate), positions, pre-LN
// transformer blocks, final LayerNorm. Accepts any number of mel frames up to 2 * n_audio_ctx.
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "model/whisper_weights.h"

namespace earshot {

struct EncoderOutput {
  int n_positions = 0;  // ceil(n_frames / 2)
  int d = 0;
  std::vector<float> data;  // [n_positions, d]
};

class Encoder {
 public:
  explicit Encoder(std::shared_ptr<const WhisperWeights> weights) : weights_(std::move(weights)) {}

  // mel is [n_mels, n_frames] row-major (Whisper's layout).
  Expected<EncoderOutput> Encode(const float* mel, int n_mels, int n_frames) const;

  static int PositionsForFrames(int n_frames) { return (n_frames + 1) / 2; }

 private:
  std::shared_ptr<const WhisperWeights> weights_;
};

}  // namespace earshot
