#include "quantize/quantize_uniform.h"

#include <cmath>
#include <cstring>

#include "kernels/f16.h"
#include "kernels/qgemm.h"

namespace earshot {
namespace {

// q = round_half_even(v / scale) clamped to [-8, 7]; returns the squared error of the dequantized group.
double QuantizeInt4Group(const float* values, int n, float scale, int* q) {
  double error = 0;
  for (int k = 0; k < n; ++k) {
    const float v = scale > 0 ? std::nearbyint(values[k] / scale) : 0.0f;
    q[k] = static_cast<int>(std::fmax(-8.0f, std::fmin(7.0f, v)));
    const double d = static_cast<double>(values[k]) - static_cast<double>(q[k]) * scale;
    error += d * d;
  }
  return error;
}

// The f16 scale, among max|w| / d for d = 7, 7.125, ..., 12, whose dequantized group is nearest the values (least
// squared error; ties keep the smaller d). d = 7 is plain absmax scaling, which spends the grid's top step on the
// one largest weight; a larger d clips it (to 7 or -8 steps) and rounds the rest on a finer grid. Since d = 7 and
// d = 8 are candidates, a group that already lies on an int4 grid gets that grid's scale back exactly.
// `q` is scratch space for n levels.
uint16_t BestInt4Scale(const float* values, int n, float max_abs, int* q) {
  uint16_t best = F32ToF16(max_abs / 7.0f);
  double best_error = QuantizeInt4Group(values, n, F16ToF32(best), q);
  for (int step = 1; step <= 40 && best_error > 0; ++step) {
    const uint16_t candidate = F32ToF16(max_abs / (7.0f + 0.125f * static_cast<float>(step)));
    const double error = QuantizeInt4Group(values, n, F16ToF32(candidate), q);
    if (error < best_error) best = candidate, best_error = error;
  }
  return best;
}

}  // namespace

Expected<TensorData> QuantizeUniform(const std::string& name, const std::vector<int64_t>& shape,
                                     const std::vector<float>& values, DType dtype, int group_size) {
  if (dtype != DType::I8 && dtype != DType::I4)
    return Status::Error(name + ": uniform quantization writes I8 or I4, not " + DTypeName(dtype));
  if (shape.size() < 2) return Status::Error(name + ": only matrices can be quantized");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 1 || numel > (int64_t{1} << 40) / d) return Status::Error(name + ": bad shape " + ShapeToString(shape));
    numel *= d;
  }
  if (static_cast<int64_t>(values.size()) != numel)
    return Status::Error(name + ": " + std::to_string(values.size()) + " values for shape " + ShapeToString(shape));
  const int64_t rows = shape[0], cols = numel / rows;
  if (cols > kQMaxCols || rows > (int64_t{1} << 30))
    return Status::Error(name + ": " + ShapeToString(shape) + " is too large for the quantized kernels");
  if (dtype == DType::I4 && (group_size < 2 || group_size % 2 != 0 || cols % group_size != 0))
    return Status::Error(name + ": I4 group size " + std::to_string(group_size) + " must be even and divide " +
                         std::to_string(cols) + " columns");
  for (float v : values)
    if (!std::isfinite(v)) return Status::Error(name + ": holds NaN or infinity");

  const int r = static_cast<int>(rows), c = static_cast<int>(cols);
  TensorData t;
  t.name = name;
  t.shape = shape;
  t.dtype = dtype;
  t.layout = TensorLayout::PackedTiles;
  t.pack_rows = kQPackRows;
  t.pack_cols = QPackCols(dtype);
  t.data.resize(QPackedBytes(dtype, r, c));
  if (dtype == DType::I8) {
    std::vector<int8_t> q(static_cast<size_t>(numel));
    t.scales.resize(static_cast<size_t>(rows) * 4);
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = &values[static_cast<size_t>(i * cols)];
      float max_abs = 0;
      for (int64_t k = 0; k < cols; ++k) max_abs = std::fmax(max_abs, std::fabs(row[k]));
      const float scale = max_abs / 127.0f;
      std::memcpy(&t.scales[static_cast<size_t>(i) * 4], &scale, 4);
      for (int64_t k = 0; k < cols; ++k) {
        const float v = scale > 0 ? std::nearbyint(row[k] / scale) : 0.0f;
        q[static_cast<size_t>(i * cols + k)] = static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, v)));
      }
    }
    PackQ8(q.data(), r, c, t.data.data());
  } else {
    const int64_t groups = cols / group_size;
    t.group_size = group_size;
    std::vector<uint8_t> nibbles(static_cast<size_t>(numel / 2), 0);
    t.scales.resize(static_cast<size_t>(rows * groups) * 2);
    std::vector<int> q(static_cast<size_t>(group_size));
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t g = 0; g < groups; ++g) {
        const float* group = &values[static_cast<size_t>(i * cols + g * group_size)];
        float max_abs = 0;
        for (int k = 0; k < group_size; ++k) max_abs = std::fmax(max_abs, std::fabs(group[k]));
        if (max_abs / 7.0f > 65504.0f) return Status::Error(name + ": values beyond the range of f16 int4 scales");
        const uint16_t scale_h = BestInt4Scale(group, group_size, max_abs, q.data());
        std::memcpy(&t.scales[static_cast<size_t>(i * groups + g) * 2], &scale_h, 2);
        QuantizeInt4Group(group, group_size, F16ToF32(scale_h), q.data());
        for (int k = 0; k < group_size; ++k) {
          const int64_t idx = i * cols + g * group_size + k;
          nibbles[idx / 2] |= static_cast<uint8_t>((q[k] & 0xF) << (idx % 2 ? 4 : 0));
        }
      }
    }
    PackQ4(nibbles.data(), r, c, t.data.data());
    std::vector<uint16_t> plain_scales(static_cast<size_t>(rows * groups)), packed_scales(plain_scales.size());
    std::memcpy(plain_scales.data(), t.scales.data(), t.scales.size());
    PackQ4Scales(plain_scales.data(), r, static_cast<int>(groups), packed_scales.data());
    std::memcpy(t.scales.data(), packed_scales.data(), t.scales.size());
  }
  return t;
}

DType UniformTensorDType(TensorRole role, int64_t cols, DType dtype, int group_size, std::string* why) {
  if (!IsQuantizableRole(role)) return DType::F32;
  if (dtype != DType::I4) return dtype;
  if (role == TensorRole::kTokenEmbedding) {
    if (why) *why = "the token embedding is also the output projection: kept at int8";
    return DType::I8;
  }
  if (group_size < 2 || cols % group_size != 0) {
    if (why) *why = std::to_string(cols) + " columns are not a multiple of the group size: int8";
    return DType::I8;
  }
  return DType::I4;
}

}  // namespace earshot
