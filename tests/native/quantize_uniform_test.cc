// Uniform weight quantization (I8 per row, I4 per group) and `earshot import --dtype int8|int4`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernels/f16.h"
#include "kernels/qgemm.h"
#include "model/whisper_weights.h"
#include "native/import_test_util.h"
#include "quantize/quantize_uniform.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

QWeights View(const TensorData& t) {
  TensorRef r;
  r.name = t.name;
  r.dtype = t.dtype;
  r.layout = t.layout;
  r.pack_rows = t.pack_rows;
  r.pack_cols = t.pack_cols;
  r.group_size = t.group_size;
  r.shape = t.shape;
  r.data = t.data.data();
  r.nbytes = t.data.size();
  r.scales = t.scales.data();
  r.scales_nbytes = t.scales.size();
  const int rows = static_cast<int>(t.shape[0]);
  auto q = QWeightsFromTensor(r, rows, static_cast<int>(r.numel() / rows));
  EXPECT_TRUE(q.ok()) << q.status().message();
  return q.ok() ? *q : QWeights();
}

TEST(QuantizeUniform, Int8RowsRoundHalfToEven) {
  // Row 0: max 127 gives scale 1, so 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -3.5 -> -4. Row 1 is all zero.
  const std::vector<float> values = {127, 0.5f, 1.5f, 2.5f, -3.5f, -127, 0, 0, 0, 0, 0, 0};
  auto t = QuantizeUniform("w", {2, 6}, values, DType::I8);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->layout, TensorLayout::PackedTiles);
  const QWeights q = View(*t);
  const int want[6] = {127, 0, 2, 2, -4, -127};
  for (int k = 0; k < 6; ++k) EXPECT_EQ(QWeightAt(q, 0, k), want[k]) << k;
  EXPECT_EQ(QWeightScale(q, 0, 0), 1.0f);
  EXPECT_EQ(QWeightScale(q, 1, 0), 0.0f);
  for (int k = 0; k < 6; ++k) EXPECT_EQ(QWeightAt(q, 1, k), 0);
}

TEST(QuantizeUniform, ValuesStayOnTheirGrid) {
  testutil::TestRng rng(4);
  const int rows = 7, cols = 96;
  std::vector<float> values(rows * cols);
  for (float& v : values) v = 0.3f * rng.Uniform();
  for (DType dtype : {DType::I8, DType::I4}) {
    auto t = QuantizeUniform("w", {rows, cols}, values, dtype, 32);
    ASSERT_TRUE(t.ok()) << t.status().message();
    const QWeights q = View(*t);
    const bool int4 = dtype == DType::I4;
    std::vector<float> row(cols);
    for (int r = 0; r < rows; ++r) {
      DequantizeQRow(q, r, row.data());
      for (int k = 0; k < cols; ++k) {
        const float step = QWeightScale(q, r, int4 ? k / 32 : 0);
        EXPECT_TRUE(OnQuantizationGrid(values[r * cols + k], row[k], step, int4 ? -8 : -127, int4 ? 7 : 127))
            << DTypeName(dtype) << " " << r << "," << k;
      }
    }
  }
}

// Squared error of a group quantized the plain way (scale f16(max|w| / 7)): the scalar reference the scale search
// must never do worse than.
double AbsmaxInt4GroupError(const float* v, int n) {
  float max_abs = 0;
  for (int k = 0; k < n; ++k) max_abs = std::fmax(max_abs, std::fabs(v[k]));
  const float scale = F16ToF32(F32ToF16(max_abs / 7.0f));
  double error = 0;
  for (int k = 0; k < n; ++k) {
    const float q = scale > 0 ? std::fmax(-8.0f, std::fmin(7.0f, std::nearbyint(v[k] / scale))) : 0.0f;
    error += (v[k] - q * scale) * (v[k] - q * scale);
  }
  return error;
}

TEST(QuantizeUniform, Int4ScaleSearchBeatsAbsmaxOnHeavyTails) {
  // Weights of trained layers are heavy-tailed: most are small, a few large. Laplace-like values stand in for them.
  testutil::TestRng rng(11);
  const int rows = 16, cols = 128, group = 64;
  std::vector<float> values(rows * cols);
  for (float& v : values) {
    const float u = 0.5f * (rng.Uniform() + 1.0f) * 0.999f + 0.0005f;  // (0, 1)
    v = (rng.Uniform() < 0 ? -0.02f : 0.02f) * std::log(u);
  }
  auto t = QuantizeUniform("w", {rows, cols}, values, DType::I4, group);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const QWeights q = View(*t);
  double searched = 0, absmax = 0;
  int better = 0;
  std::vector<float> row(cols);
  for (int r = 0; r < rows; ++r) {
    DequantizeQRow(q, r, row.data());
    for (int g = 0; g < cols / group; ++g) {
      double e = 0;
      for (int k = g * group; k < (g + 1) * group; ++k) {
        const double d = row[k] - values[r * cols + k];
        e += d * d;
      }
      const double reference = AbsmaxInt4GroupError(&values[r * cols + g * group], group);
      EXPECT_LE(e, reference * (1 + 1e-9)) << r << "," << g;
      better += e < reference * 0.999;
      searched += e, absmax += reference;
    }
  }
  EXPECT_GT(better, rows * cols / group / 2);
  EXPECT_LT(searched, 0.9 * absmax);
}

TEST(QuantizeUniform, Int4GridValuesComeBackExactly) {
  // Groups that already lie on an int4 grid (as a quantized file's dequantized weights do), with and without -8:
  // quantizing them again gives the same scale and levels, so export -> import reproduces a file.
  const int cols = 16;
  std::vector<float> values;
  const int levels[2][cols] = {{7, -3, 0, 1, 2, -7, 5, 4, -1, 0, 3, 6, -2, -5, 1, 0},
                               {-8, 7, 3, 0, -1, 2, -6, 5, 4, -4, 1, 0, 2, -3, 6, -2}};
  const float scales[2] = {0.0123f, 0.00071f};
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < cols; ++k) values.push_back(levels[r][k] * F16ToF32(F32ToF16(scales[r])));
  auto t = QuantizeUniform("w", {2, cols}, values, DType::I4, cols);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const QWeights q = View(*t);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(QWeightScale(q, r, 0), F16ToF32(F32ToF16(scales[r]))) << r;
    for (int k = 0; k < cols; ++k) EXPECT_EQ(QWeightAt(q, r, k), levels[r][k]) << r << "," << k;
  }
}

TEST(QuantizeUniform, RejectsWhatTheKernelsCannotTake) {
  EXPECT_FALSE(QuantizeUniform("w", {2, 6}, std::vector<float>(12, 1.0f), DType::I4, 4).ok());  // 6 % 4
  EXPECT_FALSE(QuantizeUniform("w", {12}, std::vector<float>(12, 1.0f), DType::I8).ok());
  std::vector<float> bad(12, 1.0f);
  bad[3] = NAN;
  EXPECT_FALSE(QuantizeUniform("w", {2, 6}, bad, DType::I8).ok());
  EXPECT_FALSE(QuantizeUniform("w", {2, 6}, std::vector<float>(12, 1.0f), DType::F16).ok());
}

TEST(QuantizeUniform, PerTensorPrecision) {
  std::string why;
  EXPECT_EQ(UniformTensorDType(TensorRole::kLinearWeight, 256, DType::I4, 32, &why), DType::I4);
  EXPECT_EQ(UniformTensorDType(TensorRole::kTokenEmbedding, 256, DType::I4, 32, &why), DType::I8);
  EXPECT_EQ(UniformTensorDType(TensorRole::kConvWeight, 240, DType::I4, 32, &why), DType::I8);  // conv1, 80 mels
  EXPECT_EQ(UniformTensorDType(TensorRole::kBias, 256, DType::I4, 32, &why), DType::F32);
  EXPECT_EQ(UniformTensorDType(TensorRole::kLinearWeight, 256, DType::I8, 32, &why), DType::I8);
}

TEST(QuantizeUniform, ImportedModelsLoadAndBind) {
  const CheckpointFolder f = MakeCheckpointFolder(3);
  const std::string dir = FreshDir("quantize_uniform_import");
  WriteCheckpointFolder(f, dir);
  for (DType dtype : {DType::I8, DType::I4}) {
    ImportOptions options;
    options.matrix_dtype = dtype;
    options.group_size = 16;
    auto imported = ImportCheckpoint(dir, options);
    ASSERT_TRUE(imported.ok()) << imported.status().message();
    EXPECT_EQ(FindTensor(*imported, "decoder.token_embedding.weight")->dtype, DType::I8);
    EXPECT_EQ(FindTensor(*imported, "encoder.blocks.0.mlp.0.weight")->dtype, dtype);
    EXPECT_EQ(FindTensor(*imported, "encoder.conv1.weight")->dtype, DType::I8);  // 24 columns
    EXPECT_EQ(FindTensor(*imported, "decoder.positional_embedding")->dtype, DType::F16);
    EXPECT_EQ(FindTensor(*imported, "encoder.blocks.0.mlp.0.bias")->dtype, DType::F32);
    auto bytes = SerializeModel(imported->meta, imported->tensors);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto model = Model::FromBuffer(std::move(bytes).value());
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto weights = WhisperWeights::Bind(*model);
    ASSERT_TRUE(weights.ok()) << weights.status().message();
    // Packed in the file: used in place, not repacked.
    EXPECT_EQ((*weights)->encoder_blocks[0].mlp_up.weight, (*model)->Find("encoder.blocks.0.mlp.0.weight"));
  }
}

}  // namespace
}  // namespace earshot
