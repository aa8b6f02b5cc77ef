// Uniform (round-to-nearest, symmetric) weight quantization into the kernels' packed layout:
//   I8: one f32 scale per output row, scale = max|w_row| / 127, q = round_half_even(w / scale) in [-127, 127].
//   I4: one f16 scale per (row, group of group_size columns), q = round_half_even(w / scale) clamped to [-8, 7]
//       (the rounded scale is the one used for q). The scale is the one among f16(max|w_group| / d), d = 7, 7.125,
//       ..., 12, that gives the group the least squared error: d = 7 (absmax) keeps every weight within half a step,
//       a larger d clips the largest weights for a finer step on the others.
// All-zero rows/groups get scale 0 and q 0. The mixed-precision quantizer reuses these per tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"
#include "model/tensor_names.h"

namespace earshot {

// Quantizes `values` (a tensor of `shape`, read as [shape[0], rest]) to dtype I8 or I4 in the PackedTiles
// layout the kernels read. Fails for non-finite values, bad group sizes or shapes the kernels cannot take.
Expected<TensorData> QuantizeUniform(const std::string& name, const std::vector<int64_t>& shape,
                                     const std::vector<float>& values, DType dtype, int group_size = 32);

// What precision a tensor gets when a whole model is quantized uniformly to `dtype` (I8 or I4): weight matrices
// and conv weights take `dtype`; the token embedding (also the output projection) takes I8 at the most
// aggressive; I4 tensors whose column count the group size does not divide fall back to I8 (reason in *why).
// Non-quantizable roles return F32 (the caller keeps its float storage).
DType UniformTensorDType(TensorRole role, int64_t cols, DType dtype, int group_size, std::string* why);

}  // namespace earshot
