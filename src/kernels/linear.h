// The dtype dispatch point for weight matrices. Float weights (F32, F16 converted tile by tile) go to the
// float GEMM; I8/I4 weights (in the kernels' packed layout, see kernels/qgemm.h) to the quantized kernels.
#pragma once

#include <cstddef>

#include "core/status.h"
#include "kernels/gemm.h"
#include "model/model.h"

namespace earshot {

// Checks once, at load time, that `w` can be used as a [out, in] matrix (conv weights [out, c, k] count as
// in = c*k) by Linear: known dtype, plain layout for floats / the kernels' packed layout for I8 and I4 (see
// RepackQuantizedTensor for plain quantized files), data large enough. Fails with a clear message otherwise.
Status CheckLinearWeight(const TensorRef& w, int out, int in);

// y[r, :] = epilogue(x[r, :] @ W^T) for r < rows, W [out, in] (PyTorch layout); the epilogue adds the bias,
// applies GELU, adds the residual. Returns an error (and leaves y untouched) for weights this build cannot
// multiply.
Status Linear(const float* x, int rows, size_t ldx, const TensorRef& w, float* y, size_t ldy,
              const GemmEpilogue& epilogue = {});

}  // namespace earshot
