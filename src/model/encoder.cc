#include "model/encoder.h"

#include <algorithm>
#include <string>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/float_buffer.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "kernels/qgemm.h"

namespace earshot {
namespace {

Status Project(const float* in, int n, int d_in, const LinearWeights& w, float* out, const GemmEpilogue& extra = {}) {
  GemmEpilogue ep = extra;
  ep.bias = w.bias_or_null();
  return Linear(in, n, static_cast<size_t>(d_in), *w.weight, out, static_cast<size_t>(w.weight->shape[0]), ep);
}

// LayerNorm with its rows shared among the pool's threads (rows are independent).
void ParallelLayerNorm(const float* in, float* out, int rows, int dim, const NormWeights& w) {
  constexpr int64_t kWorkPerElement = 32;  // a few passes in double, against one multiply-add of a product
  const int tasks = TaskCountFor(static_cast<int64_t>(rows) * dim * kWorkPerElement, rows);
  ParallelFor(tasks, [&](int t) {
    const int r0 = static_cast<int>(static_cast<int64_t>(rows) * t / tasks);
    const int r1 = static_cast<int>(static_cast<int64_t>(rows) * (t + 1) / tasks);
    const size_t offset = static_cast<size_t>(r0) * dim;
    LayerNorm(in + offset, out + offset, r1 - r0, dim, w.gamma.data(), w.beta.data());
  });
}

// y = gelu(x W^T + b): the product with its bias, then GELU as a separate vectorised pass over the output
// (as a per-tile epilogue of the product it runs in scalar code, several times slower). Same values bit for
// bit as the fused epilogue.
Status ProjectGelu(const float* in, int n, int d_in, const LinearWeights& w, float* out) {
  EARSHOT_RETURN_IF_ERROR(Project(in, n, d_in, w, out));
  const int d_out = static_cast<int>(w.weight->shape[0]);
  constexpr int64_t kWorkPerElement = 24;  // an exp, a division and two short polynomials
  const int tasks = TaskCountFor(static_cast<int64_t>(n) * d_out * kWorkPerElement, n);
  ParallelFor(tasks, [&](int t) {
    const size_t r0 = static_cast<size_t>(static_cast<int64_t>(n) * t / tasks);
    const size_t r1 = static_cast<size_t>(static_cast<int64_t>(n) * (t + 1) / tasks);
    GeluInPlace(out + r0 * d_out, (r1 - r0) * d_out);
  });
  return Status::Ok();
}

}  // namespace

Expected<EncoderOutput> Encoder::Encode(const float* mel, int n_mels, int n_frames) const {
  const HyperParams& hp = weights_->hparams();
  if (n_mels != hp.n_mels)
    return Status::Error("encoder: got " + std::to_string(n_mels) + " mel bins, the model expects " +
                         std::to_string(hp.n_mels));
  if (n_frames < 1 || n_frames > hp.window_frames())
    return Status::Error("encoder: " + std::to_string(n_frames) + " mel frames; the model accepts 1.." +
                         std::to_string(hp.window_frames()));
  const int d = hp.n_audio_state;
  const int n_conv1 = Conv1dK3OutputLength(n_frames, hp.conv1_stride);
  const int T = PositionsForFrames(n_frames, hp.conv1_stride);
  const size_t td = static_cast<size_t>(T) * d;

  FloatBuffer conv, x, h, q, k, v, attn, shared;
  EARSHOT_RETURN_IF_ERROR(conv.Reserve(static_cast<size_t>(n_conv1) * d, "encoder activations"));
  for (FloatBuffer* b : {&x, &h, &q, &k, &v, &attn})
    EARSHOT_RETURN_IF_ERROR(b->Reserve(td, "encoder activations"));
  // The convolutions' lowered input, the attention scores (one block per thread) and the MLP's hidden
  // activations are never live at the same time: one buffer holds each in turn.
  const int attention_slots = ThreadCount();
  const size_t cols_size = std::max(static_cast<size_t>(n_conv1) * n_mels * 3, td * 3);
  EARSHOT_RETURN_IF_ERROR(shared.Reserve(
      std::max({cols_size, AttentionScratchSize(T, T) * attention_slots, td * 4}), "encoder activations"));
  float* const cols = shared.data();
  float* const scores = shared.data();
  float* const mlp = shared.data();

  // conv1 (stride 1 or 2) + GELU over the channel-major mel; conv2 (stride 2) + GELU over the time-major result.
  Im2ColK3(mel, n_mels, n_frames, static_cast<size_t>(n_frames), 1, hp.conv1_stride, cols);
  EARSHOT_RETURN_IF_ERROR(ProjectGelu(cols, n_conv1, n_mels * 3, weights_->conv1, conv.data()));
  Im2ColK3(conv.data(), d, n_conv1, 1, static_cast<size_t>(d), 2, cols);
  EARSHOT_RETURN_IF_ERROR(ProjectGelu(cols, T, d * 3, weights_->conv2, x.data()));
  conv.Release();  // conv1 output, twice an activation buffer with stride 1: not held through the blocks' peak

  // Positions: the stored table (first T rows) or Whisper's sinusoids.
  if (weights_->audio_positions) {
    for (int t = 0; t < T; ++t) {
      ReadTensorRow(*weights_->audio_positions, t, h.data());
      float* xr = x.data() + static_cast<size_t>(t) * d;
      for (int i = 0; i < d; ++i) xr[i] += h.data()[i];
    }
  } else {
    WhisperSinusoids(T, d, h.data());
    for (size_t i = 0; i < td; ++i) x.data()[i] += h.data()[i];
  }

  GemmEpilogue residual;
  residual.residual = x.data();
  residual.ld_residual = static_cast<size_t>(d);
  const int n_head = hp.n_audio_head;
  for (const EncoderBlockWeights& w : weights_->encoder_blocks) {
    ParallelLayerNorm(x.data(), h.data(), T, d, w.attn_ln);
    EARSHOT_RETURN_IF_ERROR(Project(h.data(), T, d, w.attn.query, q.data()));
    EARSHOT_RETURN_IF_ERROR(Project(h.data(), T, d, w.attn.key, k.data()));
    EARSHOT_RETURN_IF_ERROR(Project(h.data(), T, d, w.attn.value, v.data()));
    AttentionArgs a;
    // Quantized models take the integer attention products, float models the float ones (matching the float
    // reference).
    a.integer_products = w.attn.query.weight->dtype == DType::I8 || w.attn.query.weight->dtype == DType::I4;
    // Values transposed (one row per value column, over all positions) for the faster float product kernel.
    // They go in h, whose normalised input is not needed again before the next LayerNorm.
    float* const v_t = h.data();
    constexpr int kTransposeBlock = 16;  // positions per pass: their rows stay cached while columns are written
    for (int t0 = 0; t0 < T && !a.integer_products; t0 += kTransposeBlock) {
      const int t1 = std::min(T, t0 + kTransposeBlock);
      for (int c = 0; c < d; ++c) {
        float* dst = v_t + static_cast<size_t>(c) * T;
        for (int t = t0; t < t1; ++t) dst[t] = v.data()[static_cast<size_t>(t) * d + c];
      }
    }
    a.n_q = T;
    a.n_kv = T;
    a.n_head = n_head;
    a.d_head = d / n_head;
    a.q = q.data();
    a.ldq = d;
    a.k = k.data();
    a.ldk = d;
    a.v = v.data();
    a.ldv = d;
    if (!a.integer_products) {
      a.v_t = v_t;
      a.ld_vt = static_cast<size_t>(T);
    }
    a.out = attn.data();
    a.ldo = d;
    Attention(a, scores, attention_slots);
    EARSHOT_RETURN_IF_ERROR(Project(attn.data(), T, d, w.attn.out, x.data(), residual));

    ParallelLayerNorm(x.data(), h.data(), T, d, w.mlp_ln);
    EARSHOT_RETURN_IF_ERROR(ProjectGelu(h.data(), T, d, w.mlp_up, mlp));
    EARSHOT_RETURN_IF_ERROR(Project(mlp, T, 4 * d, w.mlp_down, x.data(), residual));
  }

  ReleaseQGemmScratch();
  EncoderOutput out;
  out.n_positions = T;
  out.d = d;
  out.data.resize(td);
  ParallelLayerNorm(x.data(), out.data.data(), T, d, weights_->ln_post);
  return out;
}

}  // namespace earshot
