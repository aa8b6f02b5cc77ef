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
#include "unit/test_models.h"

namespace earshot {
namespace {

using Mat = std::vector<double>;  // row-major

std::vector<double> Read(const Model& m, const std::string& name) {
  const TensorRef* t = m.Find(name);
  EXPECT_NE(t, nullptr) << name;
  std::vector<double> v(static_cast<size_t>(t->numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t->dtype == DType::F32) {
      float f;
      std::memcpy(&f, t->data + 4 * i, 4);
      v[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, t->data + 2 * i, 2);
      v[i] = F16ToF32(h);
    }
  }
  return v;
}

// y [n, out] = x [n, in] W^T + b
Mat Lin(const Model& m, const std::string& p, const Mat& x, int n, bool bias = true) {
  const TensorRef* t = m.Find(p + ".weight");
  const int out = static_cast<int>(t->shape[0]), in = static_cast<int>(t->numel() / out);
  const auto w = Read(m, p + ".weight");
  std::vector<double> b = bias ? Read(m, p + ".bias") : std::vector<double>(out, 0.0);
  Mat y(static_cast<size_t>(n) * out);
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      double acc = b[o];
      for (int i = 0; i < in; ++i) acc += x[r * in + i] * w[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

Mat Ln(const Model& m, const std::string& p, const Mat& x, int n, int d) {
  const auto g = Read(m, p + ".weight"), b = Read(m, p + ".bias");
  Mat y(x.size());
  for (int r = 0; r < n; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i) y[r * d + i] = (x[r * d + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
  }
  return y;
}

double Gelu(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }

Mat SelfAttention(const Model& m, const std::string& p, const Mat& x, int n, int d, int heads) {
  const Mat q = Lin(m, p + ".query", x, n), k = Lin(m, p + ".key", x, n, false), v = Lin(m, p + ".value", x, n);
  const int dh = d / heads;
  Mat o(static_cast<size_t>(n) * d, 0.0);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < n; ++i) {
      std::vector<double> s(n);
      double mx = -1e300, z = 0;
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int e = 0; e < dh; ++e) acc += q[i * d + h * dh + e] * k[j * d + h * dh + e];
        s[j] = acc / std::sqrt(static_cast<double>(dh));
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) z += (e = std::exp(e - mx));
      for (int j = 0; j < n; ++j)
        for (int e = 0; e < dh; ++e) o[i * d + h * dh + e] += s[j] / z * v[j * d + h * dh + e];
    }
  return Lin(m, p + ".out", o, n);
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
  Mat h1 = conv("encoder.conv1", mel_d, C, n_frames, 1);
  Mat h1_ct(h1.size());  // to channel-major for the second conv
  for (int t = 0; t < n_frames; ++t)
    for (int c = 0; c < d; ++c) h1_ct[static_cast<size_t>(c) * n_frames + t] = h1[t * d + c];
  Mat x = conv("encoder.conv2", h1_ct, d, n_frames, 2);
  const int T = (n_frames + 1) / 2;
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
  const auto mel = RandomMel(hp.n_mels, 2 * hp.n_audio_ctx + 1, 1);
  auto too_long = enc.Encode(mel.data(), hp.n_mels, 2 * hp.n_audio_ctx + 1);
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
