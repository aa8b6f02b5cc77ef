#include "quantize/quantize_uniform.h"

#include <cmath>
#include <cstring>

#include "kernels/f16.h"
#include "kernels/qgemm.h"

namespace earshot {

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
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t base = i * cols + g * group_size;
        float max_abs = 0;
        for (int k = 0; k < group_size; ++k) max_abs = std::fmax(max_abs, std::fabs(values[base + k]));
        if (max_abs / 7.0f > 65504.0f) return Status::Error(name + ": values beyond the range of f16 int4 scales");
        const uint16_t scale_h = F32ToF16(max_abs / 7.0f);
        std::memcpy(&t.scales[static_cast<size_t>(i * groups + g) * 2], &scale_h, 2);
        const float scale = F16ToF32(scale_h);
        for (int k = 0; k < group_size; ++k) {
          const int64_t idx = base + k;
          const float v = scale > 0 ? std::nearbyint(values[idx] / scale) : 0.0f;
          const int q = static_cast<int>(std::fmax(-8.0f, std::fmin(7.0f, v)));
          nibbles[idx / 2] |= static_cast<uint8_t>((q & 0xF) << (idx % 2 ? 4 : 0));
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
