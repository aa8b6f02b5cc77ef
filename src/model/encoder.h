// The Whisper audio encoder: two convolutions (the second halves the frame rate, the first keeps it or, with
// conv1_stride 2 or 4, divides it too), positions, pre-LN transformer blocks, final LayerNorm. Accepts any number of
// mel frames up to HyperParams::window_frames().
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "kernels/ops.h"
#include "model/whisper_weights.h"

namespace earshot {

struct EncoderOutput {
  int n_positions = 0;  // PositionsForFrames(n_frames, conv1_stride)
  int d = 0;
  std::vector<float> data;  // [n_positions, d]
};

class Encoder {
 public:
  explicit Encoder(std::shared_ptr<const WhisperWeights> weights) : weights_(std::move(weights)) {}

  // mel is [n_mels, n_frames] row-major (Whisper's layout).
  Expected<EncoderOutput> Encode(const float* mel, int n_mels, int n_frames) const;

  static int PositionsForFrames(int n_frames, int conv1_stride) {
    return Conv1dK3OutputLength(Conv1dK3OutputLength(n_frames, conv1_stride), 2);
  }

 private:
  std::shared_ptr<const WhisperWeights> weights_;
};

}  // namespace earshot
