// WebAssembly SIMD128 quantized kernels. Operands are widened to int16 as they are loaded
// (i16x8.load8x8_s) and multiplied with i32x4.dot_i16x8_s; a 2 x 4 register tile (two activation rows against one
// packed row block of weights) keeps eight int32x4 accumulators.
#if defined(__wasm_simd128__)

#include <wasm_simd128.h>

#include "kernels/qgemm_internal.h"

namespace earshot {

using namespace qgemm_detail;

namespace {

// Horizontal sums of four int32x4 vectors: [sum a, sum b, sum c, sum d]. Only interleave shuffles
// (punpck{l,h}{dq,qdq} on x64), which V8 emits as one instruction each; other patterns become pshufb sequences.
inline v128_t Reduce4(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i64x2_shuffle(ab, cd, 0, 2), wasm_i64x2_shuffle(ab, cd, 1, 3));
}

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

  // The I8 product over unpacked tiles, reduced and scaled group by group.
  template <int MR>
  static void I4(const int8_t* q, size_t ldq, const float* xs, const int8_t* unpacked, int groups,
                 int chunks_per_group, const float* scales, float (*v)[kQPackRows]) {
    v128_t total[MR];
    for (int i = 0; i < MR; ++i) total[i] = wasm_f32x4_splat(0.0f);
    const int8_t* tile = unpacked;
    const int8_t* xk = q;
    for (int g = 0; g < groups; ++g) {
      v128_t acc[MR][kQPackRows];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kQPackRows; ++j) acc[i][j] = wasm_i32x4_splat(0);
      for (int c = 0; c < chunks_per_group; ++c, tile += kQTileBytes, xk += kQPackColsI8) {
        for (int h = 0; h < kQPackColsI8; h += 8) {
          v128_t a[MR];
          for (int i = 0; i < MR; ++i) a[i] = wasm_i16x8_load8x8(xk + i * ldq + h);
          for (int j = 0; j < kQPackRows; ++j) {
            const v128_t b = wasm_i16x8_load8x8(tile + 16 * j + h);
            for (int i = 0; i < MR; ++i) acc[i][j] = wasm_i32x4_add(acc[i][j], wasm_i32x4_dot_i16x8(a[i], b));
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
