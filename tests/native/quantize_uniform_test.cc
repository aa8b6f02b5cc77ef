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

TEST(QuantizeUniform, ErrorsWithinHalfAStep) {
  testutil::TestRng rng(4);
  const int rows = 7, cols = 96;
  std::vector<float> values(rows * cols);
  for (float& v : values) v = 0.3f * rng.Uniform();
  for (DType dtype : {DType::I8, DType::I4}) {
    auto t = QuantizeUniform("w", {rows, cols}, values, dtype, 32);
    ASSERT_TRUE(t.ok()) << t.status().message();
    const QWeights q = View(*t);
    std::vector<float> row(cols);
    for (int r = 0; r < rows; ++r) {
      DequantizeQRow(q, r, row.data());
      for (int k = 0; k < cols; ++k) {
        const float step = QWeightScale(q, r, dtype == DType::I4 ? k / 32 : 0);
        EXPECT_LE(std::fabs(row[k] - values[r * cols + k]), 0.5f * step * 1.0001f + 1e-7f)
            << DTypeName(dtype) << " " << r << "," << k;
      }
    }
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
