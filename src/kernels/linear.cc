#include "kernels/linear.h"

#include <string>

#include "kernels/qgemm.h"

namespace earshot {
namespace {

int64_t InnerSize(const TensorRef& w) {
  int64_t in = 1;
  for (size_t i = 1; i < w.shape.size(); ++i) in *= w.shape[i];
  return in;
}

}  // namespace

Status CheckLinearWeight(const TensorRef& w, int out, int in) {
  if (w.shape.size() < 2 || w.shape[0] != out || InnerSize(w) != in)
    return Status::Error(w.name + ": expected a [" + std::to_string(out) + ", " + std::to_string(in) +
                         "] weight matrix");
  switch (w.dtype) {
    case DType::F32:
    case DType::F16:
      break;
    case DType::I8:
    case DType::I4:
      return QWeightsFromTensor(w, out, in).status();
    default:
      return Status::Error(w.name + ": unknown weight dtype");
  }
  if (w.layout != TensorLayout::Plain)
    return Status::Error(w.name + ": packed weight layouts are not supported by the float kernels");
  const size_t elem = w.dtype == DType::F32 ? 4 : 2;
  if (w.data == nullptr || w.nbytes < static_cast<size_t>(out) * static_cast<size_t>(in) * elem)
    return Status::Error(w.name + ": weight data is smaller than its shape");
  return Status::Ok();
}

Status Linear(const float* x, int rows, size_t ldx, const TensorRef& w, float* y, size_t ldy,
              const GemmEpilogue& epilogue) {
  if (w.shape.empty()) return Status::Error(w.name + ": not a matrix");
  const int out = static_cast<int>(w.shape[0]);
  const int in = static_cast<int>(InnerSize(w));
  if (w.dtype == DType::I8 || w.dtype == DType::I4) {
    EARSHOT_ASSIGN_OR_RETURN(QWeights q, QWeightsFromTensor(w, out, in));
    return QGemm(rows, x, ldx, q, y, ldy, epilogue);
  }
  if (w.layout != TensorLayout::Plain)
    return Status::Error(w.name + ": packed weight layouts are not supported by the float kernels");
  switch (w.dtype) {
    case DType::F32:
      GemmF32(rows, out, in, x, ldx, reinterpret_cast<const float*>(w.data), static_cast<size_t>(in), y, ldy,
              epilogue);
      return Status::Ok();
    case DType::F16:
      GemmF16(rows, out, in, x, ldx, reinterpret_cast<const uint16_t*>(w.data), static_cast<size_t>(in), y, ldy,
              epilogue);
      return Status::Ok();
    default:
      break;
  }
  return Status::Error(w.name + ": unknown weight dtype");
}

}  // namespace earshot
