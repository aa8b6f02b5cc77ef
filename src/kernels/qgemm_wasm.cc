// WebAssembly SIMD128 quantized kernels. Operands are widened to int16 as they are loaded
// (i16x8.load8x8_s) and multiplied with i32x4.dot_i16x8_s; a 2 x 4 register tile (two activation rows against one
// packed row block of weights) keeps eight int32x4 accumulators.
#if defined(__wasm_simd128__)

#include <wasm_simd128.h>

#include "kernels/qgemm_internal.h"

namespace earshot {

using namespace qgemm_detail;

namespace {

// Horizontal sums of four int32x4 vectors: [sum a, sum b, sum c, sum d].
inline v128_t Reduce4(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 2, 6), wasm_i32x4_shuffle(a, b, 1, 5, 3, 7));
  const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 2, 6), wasm_i32x4_shuffle(c, d, 1, 5, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

struct WasmTiles {
  template <int MR>
  static void I8(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block, int chunks, const float* ws,
                 float (*v)[kQPackRows]) {
    v128_t acc[MR][kQPackRows];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kQPackRows; ++j) acc[i][j] = wasm_i32x4_splat(0);
    for (int c = 0; c < chunks; ++c) {
      const uint8_t* tile = block + static_cast<size_t>(c) * kQTileBytes;
      const int8_t* xk = q + static_cast<size_t>(c) * kQPackColsI8;
      for (int h = 0; h < kQPackColsI8; h += 8) {
        v128_t a[MR];
        for (int i = 0; i < MR; ++i) a[i] = wasm_i16x8_load8x8(xk + i * ldq + h);
        for (int j = 0; j < kQPackRows; ++j) {
          const v128_t b = wasm_i16x8_load8x8(tile + 16 * j + h);
          for (int i = 0; i < MR; ++i) acc[i][j] = wasm_i32x4_add(acc[i][j], wasm_i32x4_dot_i16x8(a[i], b));
        }
      }
    }
    const v128_t w_scale = wasm_v128_load(ws);
    for (int i = 0; i < MR; ++i) {
      const v128_t sum = Reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      const v128_t scale = wasm_f32x4_mul(wasm_f32x4_splat(xs[i]), w_scale);
      wasm_v128_store(v[i], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(sum), scale));
    }
  }

  // Nibbles become int8 values times 16 (shift left / mask high), so unpacking needs no sign extension; the
  // group's int32 sums are then exact multiples of 16 and are shifted back.
  template <int MR>
  static void I4(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block, int groups,
                 int chunks_per_group, const float* scales, float (*v)[kQPackRows]) {
    const v128_t high_mask = wasm_i8x16_splat(static_cast<int8_t>(0xF0));
    v128_t total[MR];
    for (int i = 0; i < MR; ++i) total[i] = wasm_f32x4_splat(0.0f);
    const uint8_t* tile = block;
    const int8_t* xk = q;
    for (int g = 0; g < groups; ++g) {
      v128_t acc[MR][kQPackRows];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kQPackRows; ++j) acc[i][j] = wasm_i32x4_splat(0);
      for (int c = 0; c < chunks_per_group; ++c, tile += kQTileBytes, xk += kQPackColsI4) {
        v128_t a[MR][4];
        for (int i = 0; i < MR; ++i)
          for (int p = 0; p < 4; ++p) a[i][p] = wasm_i16x8_load8x8(xk + i * ldq + 8 * p);
        for (int j = 0; j < kQPackRows; ++j) {
          const v128_t bytes = wasm_v128_load(tile + 16 * j);
          const v128_t lo = wasm_i8x16_shl(bytes, 4);
          const v128_t hi = wasm_v128_and(bytes, high_mask);
          const v128_t b0 = wasm_i16x8_extend_low_i8x16(lo);
          const v128_t b1 = wasm_i16x8_extend_high_i8x16(lo);
          const v128_t b2 = wasm_i16x8_extend_low_i8x16(hi);
          const v128_t b3 = wasm_i16x8_extend_high_i8x16(hi);
          for (int i = 0; i < MR; ++i) {
            const v128_t s01 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(a[i][0], b0), wasm_i32x4_dot_i16x8(a[i][1], b1));
            const v128_t s23 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(a[i][2], b2), wasm_i32x4_dot_i16x8(a[i][3], b3));
            acc[i][j] = wasm_i32x4_add(acc[i][j], wasm_i32x4_add(s01, s23));
          }
        }
      }
      const v128_t group_scale = wasm_v128_load(scales + g * kQPackRows);
      for (int i = 0; i < MR; ++i) {
        const v128_t sum = wasm_i32x4_shr(Reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), 4);
        total[i] = wasm_f32x4_add(total[i], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(sum), group_scale));
      }
    }
    for (int i = 0; i < MR; ++i) wasm_v128_store(v[i], wasm_f32x4_mul(total[i], wasm_f32x4_splat(xs[i])));
  }
};

void WasmI8(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  RunTilesI8<WasmTiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void WasmI4(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunTilesI4<WasmTiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

}  // namespace

void AppendSimdQGemmKernels(std::vector<QGemmKernel>* kernels) {
  kernels->push_back({"wasm-simd128", WasmI8, WasmI4});
}

}  // namespace earshot

#endif  // __wasm_simd128__
