// WebAssembly SIMD128 quantized kernels. A weight pair of four columns is widened to int16 as it is loaded
// (i16x8.load8x8_s) and multiplied with i32x4.dot_i16x8_s by an activation pair splatted to every lane, giving
// four output columns per instruction. Register tiles: 4 activation rows x 2 row blocks (8 int32x4 accumulators)
// for products of several rows, 1 row x 4 row blocks for single rows.
#if defined(__wasm_simd128__)

#include <wasm_simd128.h>

#include "kernels/qgemm_internal.h"

namespace earshot {

using namespace qgemm_detail;

namespace {

struct WasmTiles {
  // F16ToF32's integer steps, four lanes at a time.
  static void ConvertScales(const uint8_t* f16, int count, float* out) {
    const v128_t magnitude_mask = wasm_i32x4_splat(0x7fff);
    const v128_t rebias = wasm_i32x4_splat((127 - 15) << 23);
    const v128_t inf_rebias = wasm_i32x4_splat((128 - 16) << 23);
    const v128_t inf_threshold = wasm_i32x4_splat(0x7c00 - 1);
    const v128_t normal_threshold = wasm_i32x4_splat(0x400);
    const v128_t subnormal_unit = wasm_f32x4_splat(5.9604644775390625e-8f);
    for (int i = 0; i < count; i += 4) {
      const v128_t h = wasm_u32x4_load16x4(f16 + 2 * i);
      const v128_t magnitude = wasm_v128_and(h, magnitude_mask);
      v128_t normal = wasm_i32x4_add(wasm_i32x4_shl(magnitude, 13), rebias);
      normal = wasm_i32x4_add(normal, wasm_v128_and(wasm_i32x4_gt(magnitude, inf_threshold), inf_rebias));
      const v128_t subnormal = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(magnitude), subnormal_unit);
      const v128_t bits = wasm_v128_bitselect(subnormal, normal, wasm_i32x4_lt(magnitude, normal_threshold));
      const v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
      wasm_v128_store(out + i, wasm_v128_or(bits, sign));
    }
  }

  // acc[i][j] lane c = sum over pairs of q[i][2p] w[4j + c][2p] + q[i][2p + 1] w[4j + c][2p + 1]: one
  // i32x4.dot_i16x8_s per (row, row block, pair), the weight pair widened as it is loaded, the activation pair
  // splatted; no horizontal sums.
  template <int MR, int NB>
  static inline void AccumulatePairs(const int16_t* q, size_t ldq, const int8_t* block, size_t stride, int p0,
                                     int p1, v128_t (&acc)[MR][NB]) {
    for (int p = p0; p < p1; ++p) {
      v128_t b[NB];
      for (int j = 0; j < NB; ++j) b[j] = wasm_i16x8_load8x8(block + j * stride + 8 * static_cast<size_t>(p));
      for (int i = 0; i < MR; ++i) {
        const v128_t a = wasm_v128_load32_splat(q + i * ldq + 2 * p);
        for (int j = 0; j < NB; ++j) acc[i][j] = wasm_i32x4_add(acc[i][j], wasm_i32x4_dot_i16x8(a, b[j]));
      }
    }
  }

  template <int MR, int NB>
  static void I8(const int16_t* q, size_t ldq, const float* xs, const uint8_t* block, size_t stride, int pairs,
                 const float* ws, float (*v)[kQPackRows * NB]) {
    v128_t acc[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) acc[i][j] = wasm_i32x4_splat(0);
    AccumulatePairs<MR, NB>(q, ldq, reinterpret_cast<const int8_t*>(block), stride, 0, pairs, acc);
    for (int i = 0; i < MR; ++i) {
      const v128_t x_scale = wasm_f32x4_splat(xs[i]);
      for (int j = 0; j < NB; ++j) {
        const v128_t scale = wasm_f32x4_mul(x_scale, wasm_v128_load(ws + kQPackRows * j));
        wasm_v128_store(v[i] + kQPackRows * j, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc[i][j]), scale));
      }
    }
  }

  // Nibbles become int8 values times 16 (shift left / mask high), so unpacking needs no sign extension; the
  // group's int32 sums are then exact multiples of 16 and are shifted back. i16x8.shl with a mask rather than
  // i8x16.shl, which x64 lacks and V8 emulates.
  static void UnpackI4(const uint8_t* block, int chunks, int8_t* out) {
    const v128_t high_mask = wasm_i8x16_splat(static_cast<int8_t>(0xF0));
    for (int c = 0; c < chunks; ++c) {
      const uint8_t* tile = block + static_cast<size_t>(c) * kQTileBytes;
      int8_t* lo_tile = out + static_cast<size_t>(2 * c) * kQTileBytes;
      for (int j = 0; j < kQPackRows; ++j) {
        const v128_t bytes = wasm_v128_load(tile + 16 * j);
        wasm_v128_store(lo_tile + 16 * j, wasm_v128_and(wasm_i16x8_shl(bytes, 4), high_mask));
        wasm_v128_store(lo_tile + kQTileBytes + 16 * j, wasm_v128_and(bytes, high_mask));
      }
    }
  }

  // The I8 product over unpacked tiles, scaled group by group.
  template <int MR, int NB>
  static void I4(const int16_t* q, size_t ldq, const float* xs, const int8_t* unpacked, size_t stride, int groups,
                 int pairs_per_group, const float* scales, float (*v)[kQPackRows * NB]) {
    v128_t total[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) total[i][j] = wasm_f32x4_splat(0.0f);
    for (int g = 0; g < groups; ++g) {
      v128_t acc[MR][NB];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NB; ++j) acc[i][j] = wasm_i32x4_splat(0);
      AccumulatePairs<MR, NB>(q, ldq, unpacked, stride, g * pairs_per_group, (g + 1) * pairs_per_group, acc);
      for (int j = 0; j < NB; ++j) {
        const v128_t group_scale = wasm_v128_load(scales + (static_cast<size_t>(j) * groups + g) * kQPackRows);
        for (int i = 0; i < MR; ++i) {
          const v128_t sum = wasm_i32x4_shr(acc[i][j], 4);
          total[i][j] = wasm_f32x4_add(total[i][j], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(sum), group_scale));
        }
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j)
        wasm_v128_store(v[i] + kQPackRows * j, wasm_f32x4_mul(total[i][j], wasm_f32x4_splat(xs[i])));
  }
};

void WasmI8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  RunI8<WasmTiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void WasmI4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunI4<WasmTiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

}  // namespace

void AppendSimdQGemmKernels(std::vector<QGemmKernel>* kernels) {
  kernels->push_back({"wasm-simd128", WasmI8, WasmI4});
}

}  // namespace earshot

#endif  // __wasm_simd128__
