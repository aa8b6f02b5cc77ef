// The encoder on random tiny models: against a naive double-precision Whisper encoder written from the
// architecture description, plus shape rules, position handling and error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/f16.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/whisper_weights.h"
#include "unit/double_reference.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

using namespace doubleref;  // NOLINT: test helpers

Mat SelfAttention(const Model& m, const std::string& p, const Mat& x, int n, int d, int heads) {
  return Attend(m, p, x, n, x, n, d, heads, /*causal=*/false);
}

// Whisper's encoder, straight from the description (DESIGN.md 9), in double.
Mat ReferenceEncoder(const Model& m, const std::vector<float>& mel, int n_frames) {
  const HyperParams& hp = m.hparams();
  const int d = hp.n_audio_state, C = hp.n_mels;
  auto conv = [&](const std::string& p, const Mat& in_ct, int c_in, int n_in, int stride) {
    const auto w = Read(m, p + ".weight"), b = Read(m, p + ".bias");
    const int n_out = (n_in + 2 - 3) / stride + 1;
    Mat out(static_cast<size_t>(n_out) * d);  // [t][d]
    for (int t = 0; t < n_out; ++t)
      for (int o = 0; o < d; ++o) {
        double acc = b[o];
        for (int c = 0; c < c_in; ++c)
          for (int k = 0; k < 3; ++k) {
            const int src = t * stride + k - 1;
            if (src >= 0 && src < n_in) acc += w[(o * c_in + c) * 3 + k] * in_ct[static_cast<size_t>(c) * n_in + src];
          }
        out[t * d + o] = Gelu(acc);
      }
    return out;
  };
  Mat mel_d(mel.begin(), mel.end());
  Mat h1 = conv("encoder.conv1", mel_d, C, n_frames, hp.conv1_stride);
  const int n1 = static_cast<int>(h1.size()) / d;
  Mat h1_ct(h1.size());  // to channel-major for the second conv
  for (int t = 0; t < n1; ++t)
    for (int c = 0; c < d; ++c) h1_ct[static_cast<size_t>(c) * n1 + t] = h1[t * d + c];
  Mat x = conv("encoder.conv2", h1_ct, d, n1, 2);
  const int T = static_cast<int>(x.size()) / d;
  if (m.Find("encoder.positional_embedding")) {
    const auto pos = Read(m, "encoder.positional_embedding");
    for (size_t i = 0; i < x.size(); ++i) x[i] += pos[i];
  } else {
    const int half = d / 2;
    const double inc = std::log(10000.0) / (half - 1);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < half; ++i) {
        x[t * d + i] += std::sin(t * std::exp(-inc * i));
        x[t * d + half + i] += std::cos(t * std::exp(-inc * i));
      }
  }
  for (int l = 0; l < hp.n_audio_layer; ++l) {
    const std::string p = "encoder.blocks." + std::to_string(l);
    Mat a = SelfAttention(m, p + ".attn", Ln(m, p + ".attn_ln", x, T, d), T, d, hp.n_audio_head);
    for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
    Mat u = Lin(m, p + ".mlp.0", Ln(m, p + ".mlp_ln", x, T, d), T);
    for (auto& e : u) e = Gelu(e);
    Mat dn = Lin(m, p + ".mlp.2", u, T);
    for (size_t i = 0; i < x.size(); ++i) x[i] += dn[i];
  }
  return Ln(m, "encoder.ln_post", x, T, d);
}

std::vector<float> RandomMel(int n_mels, int n_frames, uint32_t seed) {
  testutil::TestRng rng(seed);
  std::vector<float> mel(static_cast<size_t>(n_mels) * n_frames);
  for (auto& v : mel) v = rng.Uniform();
  return mel;
}

std::shared_ptr<const Model> LoadTiny(const HyperParams& hp, uint32_t seed, DType dtype = DType::F32,
                                      bool audio_positions = false) {
  auto bytes = SerializeModel(testutil::MakeTinyMeta(hp), testutil::MakeRandomTinyTensors(hp, seed, dtype, audio_positions));
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  auto model = Model::FromBuffer(std::move(bytes).value());
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.value();
}

void ExpectClose(const std::vector<float>& got, const Mat& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(want[i]));
    max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(max_diff, rel * max_ref) << "max diff " << max_diff << " max ref " << max_ref;
}

TEST(EncoderModel, MatchesDoubleReferenceAtOddLengths) {
  const HyperParams hp = testutil::TinyHyperParams();
  for (DType dtype : {DType::F32, DType::F16}) {
    auto model = LoadTiny(hp, 7, dtype);
    auto weights = WhisperWeights::Bind(model);
    ASSERT_TRUE(weights.ok()) << weights.status().message();
    Encoder enc(weights.value());
    for (int n_frames : {1, 2, 7, 48}) {
      const auto mel = RandomMel(hp.n_mels, n_frames, 100 + n_frames);
      auto out = enc.Encode(mel.data(), hp.n_mels, n_frames);
      ASSERT_TRUE(out.ok()) << out.status().message();
      EXPECT_EQ(out->n_positions, (n_frames + 1) / 2);
      EXPECT_EQ(out->d, hp.n_audio_state);
      ExpectClose(out->data, ReferenceEncoder(*model, mel, n_frames), 1e-5);
    }
  }
}

TEST(EncoderModel, StridedFrontEndsMatchDoubleReference) {
  for (int stride : {2, 4}) {  // 4 and 8 mel frames per position
    SCOPED_TRACE(stride);
    HyperParams hp = testutil::TinyHyperParams();
    hp.conv1_stride = stride;
    auto model = LoadTiny(hp, 9);
    auto weights = WhisperWeights::Bind(model);
    ASSERT_TRUE(weights.ok()) << weights.status().message();
    Encoder enc(weights.value());
    const int per_position = 2 * stride;
    for (int n_frames : {1, 3, 4, 5, 6, 7, 8, 9, 47, hp.window_frames()}) {
      const auto mel = RandomMel(hp.n_mels, n_frames, 300 + n_frames);
      auto out = enc.Encode(mel.data(), hp.n_mels, n_frames);
      ASSERT_TRUE(out.ok()) << out.status().message();
      EXPECT_EQ(out->n_positions, (n_frames + per_position - 1) / per_position) << n_frames;
      EXPECT_EQ(out->n_positions, Encoder::PositionsForFrames(n_frames, stride));
      ExpectClose(out->data, ReferenceEncoder(*model, mel, n_frames), 1e-5);
    }
    const auto mel = RandomMel(hp.n_mels, hp.window_frames() + 1, 5);
    EXPECT_FALSE(enc.Encode(mel.data(), hp.n_mels, hp.window_frames() + 1).ok());
  }
}

TEST(EncoderModel, StoredPositionTableIsUsed) {
  const HyperParams hp = testutil::TinyHyperParams();
  auto model = LoadTiny(hp, 9, DType::F32, /*audio_positions=*/true);
  ASSERT_NE(model->Find("encoder.positional_embedding"), nullptr);
  auto weights = WhisperWeights::Bind(model);
  ASSERT_TRUE(weights.ok());
  const auto mel = RandomMel(hp.n_mels, 11, 3);
  auto out = Encoder(weights.value()).Encode(mel.data(), hp.n_mels, 11);
  ASSERT_TRUE(out.ok());
  ExpectClose(out->data, ReferenceEncoder(*model, mel, 11), 1e-5);
}

TEST(EncoderModel, SinusoidsFollowWhisper) {
  const int length = 1500, channels = 384;
  std::vector<float> s(static_cast<size_t>(length) * channels);
  WhisperSinusoids(length, channels, s.data());
  const int half = channels / 2;
  const double inc = std::log(10000.0) / (half - 1);
  double max_err = 0;
  for (int t = 0; t < length; ++t)
    for (int i = 0; i < half; ++i) {
      max_err = std::max(max_err, std::fabs(s[t * channels + i] - std::sin(t * std::exp(-inc * i))));
      max_err = std::max(max_err, std::fabs(s[t * channels + half + i] - std::cos(t * std::exp(-inc * i))));
    }
  // The float32 steps Whisper takes put the argument off by up to ~1500 * 2^-24 relative.
  EXPECT_LT(max_err, 3e-4);
  EXPECT_EQ(s[0], 0.0f);
  EXPECT_EQ(s[half], 1.0f);
}

TEST(EncoderModel, RejectsBadInput) {
  const HyperParams hp = testutil::TinyHyperParams();
  auto weights = WhisperWeights::Bind(LoadTiny(hp, 1));
  ASSERT_TRUE(weights.ok());
  Encoder enc(weights.value());
  const auto mel = RandomMel(hp.n_mels, hp.window_frames() + 1, 1);
  auto too_long = enc.Encode(mel.data(), hp.n_mels, hp.window_frames() + 1);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("mel frames"), std::string::npos);
  EXPECT_FALSE(enc.Encode(mel.data(), hp.n_mels, 0).ok());
  auto wrong_mels = enc.Encode(mel.data(), hp.n_mels + 1, 4);
  ASSERT_FALSE(wrong_mels.ok());
  EXPECT_NE(wrong_mels.status().message().find("mel bins"), std::string::npos);
}

TEST(EncoderModel, QuantizedWeightsBind) {
  // I8/I4 matrices are multiplied by the quantized kernels (their accuracy: kernels_qmodel_test.cc).
  const HyperParams hp = testutil::TinyHyperParams();
  for (DType dtype : {DType::I8, DType::I4}) {
    auto weights = WhisperWeights::Bind(LoadTiny(hp, 1, dtype));
    EXPECT_TRUE(weights.ok()) << DTypeName(dtype) << ": " << weights.status().message();
  }
}

}  // namespace
}  // namespace earshot
