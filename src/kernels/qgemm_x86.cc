// Native x86 quantized kernels: SSE4.1 (the build's baseline, same shape as the WebAssembly kernel: int16
// operands, pmaddwd, 2 x 4 tile) and AVX2 (16 columns per instruction), picked at run time. Integer sums are
// exact, and the float steps are those of qgemm.h's contract (no FMA: AVX2 code is compiled without it).
#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE4_1__) && !defined(__EMSCRIPTEN__)

#include <immintrin.h>

#include "kernels/qgemm_internal.h"

namespace earshot {

using namespace qgemm_detail;

namespace {

// ---- SSE4.1 ------------------------------------------------------------------------------------------------

inline __m128i Load8x8(const void* p) { return _mm_cvtepi8_epi16(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }

inline __m128i Reduce4(__m128i a, __m128i b, __m128i c, __m128i d) {
  return _mm_hadd_epi32(_mm_hadd_epi32(a, b), _mm_hadd_epi32(c, d));
}

// F16ToF32's integer steps, four lanes at a time.
inline void ConvertScalesSse(const uint8_t* f16, int count, float* out) {
  const __m128i magnitude_mask = _mm_set1_epi32(0x7fff);
  const __m128i rebias = _mm_set1_epi32((127 - 15) << 23);
  const __m128i inf_rebias = _mm_set1_epi32((128 - 16) << 23);
  const __m128i inf_threshold = _mm_set1_epi32(0x7c00 - 1);
  const __m128i normal_threshold = _mm_set1_epi32(0x400);
  const __m128 subnormal_unit = _mm_set1_ps(5.9604644775390625e-8f);
  for (int i = 0; i < count; i += 4) {
    const __m128i h = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f16 + 2 * i)));
    const __m128i magnitude = _mm_and_si128(h, magnitude_mask);
    __m128i normal = _mm_add_epi32(_mm_slli_epi32(magnitude, 13), rebias);
    normal = _mm_add_epi32(normal, _mm_and_si128(_mm_cmpgt_epi32(magnitude, inf_threshold), inf_rebias));
    const __m128i subnormal = _mm_castps_si128(_mm_mul_ps(_mm_cvtepi32_ps(magnitude), subnormal_unit));
    const __m128i is_subnormal = _mm_cmplt_epi32(magnitude, normal_threshold);
    const __m128i bits = _mm_or_si128(_mm_and_si128(is_subnormal, subnormal), _mm_andnot_si128(is_subnormal, normal));
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16);
    _mm_storeu_ps(out + i, _mm_castsi128_ps(_mm_or_si128(bits, sign)));
  }
}

// I4 tiles (4 rows x 32) to two I8 tiles (4 rows x 16) of values times 16: low nibbles shifted up, high masked.
inline void UnpackI4Sse(const uint8_t* block, int chunks, int8_t* out) {
  const __m128i high_mask = _mm_set1_epi8(static_cast<char>(0xF0));
  for (int c = 0; c < chunks; ++c) {
    const uint8_t* tile = block + static_cast<size_t>(c) * kQTileBytes;
    int8_t* lo_tile = out + static_cast<size_t>(2 * c) * kQTileBytes;
    for (int j = 0; j < kQPackRows; ++j) {
      const __m128i bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(tile + 16 * j));
      _mm_store_si128(reinterpret_cast<__m128i*>(lo_tile + 16 * j),
                      _mm_and_si128(_mm_slli_epi16(bytes, 4), high_mask));
      _mm_store_si128(reinterpret_cast<__m128i*>(lo_tile + kQTileBytes + 16 * j), _mm_and_si128(bytes, high_mask));
    }
  }
}

struct SseTiles {
  static void ConvertScales(const uint8_t* f16, int count, float* out) { ConvertScalesSse(f16, count, out); }

  template <int MR>
  static void I8(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block, int chunks, const float* ws,
                 float (*v)[kQPackRows]) {
    __m128i acc[MR][kQPackRows];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kQPackRows; ++j) acc[i][j] = _mm_setzero_si128();
    for (int c = 0; c < chunks; ++c) {
      const uint8_t* tile = block + static_cast<size_t>(c) * kQTileBytes;
      const int8_t* xk = q + static_cast<size_t>(c) * kQPackColsI8;
      for (int h = 0; h < kQPackColsI8; h += 8) {
        __m128i a[MR];
        for (int i = 0; i < MR; ++i) a[i] = Load8x8(xk + i * ldq + h);
        for (int j = 0; j < kQPackRows; ++j) {
          const __m128i b = Load8x8(tile + 16 * j + h);
          for (int i = 0; i < MR; ++i) acc[i][j] = _mm_add_epi32(acc[i][j], _mm_madd_epi16(a[i], b));
        }
      }
    }
    const __m128 w_scale = _mm_load_ps(ws);
    for (int i = 0; i < MR; ++i) {
      const __m128i sum = Reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      const __m128 scale = _mm_mul_ps(_mm_set1_ps(xs[i]), w_scale);
      _mm_store_ps(v[i], _mm_mul_ps(_mm_cvtepi32_ps(sum), scale));
    }
  }

  // Nibbles are unpacked as int8 values times 16 (see qgemm_wasm.cc); the group sums are shifted back.
  static void UnpackI4(const uint8_t* block, int chunks, int8_t* out) { UnpackI4Sse(block, chunks, out); }

  template <int MR>
  static void I4(const int8_t* q, size_t ldq, const float* xs, const int8_t* unpacked, int groups,
                 int chunks_per_group, const float* scales, float (*v)[kQPackRows]) {
    __m128 total[MR];
    for (int i = 0; i < MR; ++i) total[i] = _mm_setzero_ps();
    const int8_t* tile = unpacked;
    const int8_t* xk = q;
    for (int g = 0; g < groups; ++g) {
      __m128i acc[MR][kQPackRows];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kQPackRows; ++j) acc[i][j] = _mm_setzero_si128();
      for (int c = 0; c < chunks_per_group; ++c, tile += kQTileBytes, xk += kQPackColsI8) {
        for (int h = 0; h < kQPackColsI8; h += 8) {
          __m128i a[MR];
          for (int i = 0; i < MR; ++i) a[i] = Load8x8(xk + i * ldq + h);
          for (int j = 0; j < kQPackRows; ++j) {
            const __m128i b = Load8x8(tile + 16 * j + h);
            for (int i = 0; i < MR; ++i) acc[i][j] = _mm_add_epi32(acc[i][j], _mm_madd_epi16(a[i], b));
          }
        }
      }
      const __m128 group_scale = _mm_load_ps(scales + g * kQPackRows);
      for (int i = 0; i < MR; ++i) {
        const __m128i sum = _mm_srai_epi32(Reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), 4);
        total[i] = _mm_add_ps(total[i], _mm_mul_ps(_mm_cvtepi32_ps(sum), group_scale));
      }
    }
    for (int i = 0; i < MR; ++i) _mm_store_ps(v[i], _mm_mul_ps(total[i], _mm_set1_ps(xs[i])));
  }
};

void SseI8(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  RunTilesI8<SseTiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void SseI4(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunTilesI4<SseTiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

// ---- AVX2 --------------------------------------------------------------------------------------------------
// Tile functions carry the target attribute (and stay out of line); the drivers above call them per tile.
#define EARSHOT_AVX2 __attribute__((target("avx2"), noinline))

EARSHOT_AVX2 inline __m128i Reduce4Avx(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

struct Avx2Tiles {
  static void ConvertScales(const uint8_t* f16, int count, float* out) { ConvertScalesSse(f16, count, out); }

  template <int MR>
  EARSHOT_AVX2 static void I8(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block, int chunks,
                              const float* ws, float (*v)[kQPackRows]) {
    __m256i acc[MR][kQPackRows];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kQPackRows; ++j) acc[i][j] = _mm256_setzero_si256();
    for (int c = 0; c < chunks; ++c) {
      const uint8_t* tile = block + static_cast<size_t>(c) * kQTileBytes;
      const int8_t* xk = q + static_cast<size_t>(c) * kQPackColsI8;
      __m256i a[MR];
      for (int i = 0; i < MR; ++i)
        a[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xk + i * ldq)));
      for (int j = 0; j < kQPackRows; ++j) {
        const __m256i b = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(tile + 16 * j)));
        for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a[i], b));
      }
    }
    const __m128 w_scale = _mm_load_ps(ws);
    for (int i = 0; i < MR; ++i) {
      const __m128i sum = Reduce4Avx(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      const __m128 scale = _mm_mul_ps(_mm_set1_ps(xs[i]), w_scale);
      _mm_store_ps(v[i], _mm_mul_ps(_mm_cvtepi32_ps(sum), scale));
    }
  }

  static void UnpackI4(const uint8_t* block, int chunks, int8_t* out) { UnpackI4Sse(block, chunks, out); }

  template <int MR>
  EARSHOT_AVX2 static void I4(const int8_t* q, size_t ldq, const float* xs, const int8_t* unpacked, int groups,
                              int chunks_per_group, const float* scales, float (*v)[kQPackRows]) {
    __m128 total[MR];
    for (int i = 0; i < MR; ++i) total[i] = _mm_setzero_ps();
    const int8_t* tile = unpacked;
    const int8_t* xk = q;
    for (int g = 0; g < groups; ++g) {
      __m256i acc[MR][kQPackRows];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kQPackRows; ++j) acc[i][j] = _mm256_setzero_si256();
      for (int c = 0; c < chunks_per_group; ++c, tile += kQTileBytes, xk += kQPackColsI8) {
        __m256i a[MR];
        for (int i = 0; i < MR; ++i)
          a[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xk + i * ldq)));
        for (int j = 0; j < kQPackRows; ++j) {
          const __m256i b = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(tile + 16 * j)));
          for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a[i], b));
        }
      }
      const __m128 group_scale = _mm_load_ps(scales + g * kQPackRows);
      for (int i = 0; i < MR; ++i) {
        const __m128i sum = _mm_srai_epi32(Reduce4Avx(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), 4);
        total[i] = _mm_add_ps(total[i], _mm_mul_ps(_mm_cvtepi32_ps(sum), group_scale));
      }
    }
    for (int i = 0; i < MR; ++i) _mm_store_ps(v[i], _mm_mul_ps(total[i], _mm_set1_ps(xs[i])));
  }
};

void Avx2I8(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  RunTilesI8<Avx2Tiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void Avx2I4(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunTilesI4<Avx2Tiles, 2>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

}  // namespace

void AppendSimdQGemmKernels(std::vector<QGemmKernel>* kernels) {
  kernels->push_back({"sse4.1", SseI8, SseI4});
  if (__builtin_cpu_supports("avx2")) kernels->push_back({"avx2", Avx2I8, Avx2I4});
}

}  // namespace earshot

#endif
