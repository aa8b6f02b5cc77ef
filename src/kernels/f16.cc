#include "kernels/f16.h"

namespace earshot {

void F16ToF32Array(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = F16ToF32(in[i]);
}

void F32ToF16Array(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = F32ToF16(in[i]);
}

}  // namespace earshot
