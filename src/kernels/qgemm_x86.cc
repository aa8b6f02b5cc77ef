// Native x86 quantized kernels: SSE4.1 (the build's baseline, the same design as the WebAssembly kernel: weight
// pairs widened to int16, activation pairs broadcast, pmaddwd) and AVX2 (two pairs per instruction), picked at
// run time. Integer sums are
// exact, and the float steps are those of qgemm.h's contract (no FMA: AVX2 code is compiled without it).
#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE4_1__) && !defined(__EMSCRIPTEN__)

#include <immintrin.h>

#include "kernels/qgemm_internal.h"

namespace earshot {

using namespace qgemm_detail;

namespace {

// ---- SSE4.1 ------------------------------------------------------------------------------------------------

inline __m128i Load8x8(const void* p) { return _mm_cvtepi8_epi16(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }

// The activation pair (q[2p], q[2p + 1]) in every 32-bit lane.
inline __m128i PairSplat(const int16_t* q) {
  int32_t pair;
  std::memcpy(&pair, q, 4);
  return _mm_set1_epi32(pair);
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

  // Four output columns per pmaddwd (see qgemm_wasm.cc).
  template <int MR, int NB>
  static inline void AccumulatePairs(const int16_t* q, size_t ldq, const int8_t* block, size_t stride, int p0,
                                     int p1, __m128i (&acc)[MR][NB]) {
    for (int p = p0; p < p1; ++p) {
      __m128i b[NB];
      for (int j = 0; j < NB; ++j) b[j] = Load8x8(block + j * stride + 8 * static_cast<size_t>(p));
      for (int i = 0; i < MR; ++i) {
        const __m128i a = PairSplat(q + i * ldq + 2 * p);
        for (int j = 0; j < NB; ++j) acc[i][j] = _mm_add_epi32(acc[i][j], _mm_madd_epi16(a, b[j]));
      }
    }
  }

  template <int MR, int NB>
  static void I8(const int16_t* q, size_t ldq, const float* xs, const uint8_t* block, size_t stride, int pairs,
                 const float* ws, float (*v)[kQPackRows * NB]) {
    __m128i acc[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm_setzero_si128();
    AccumulatePairs<MR, NB>(q, ldq, reinterpret_cast<const int8_t*>(block), stride, 0, pairs, acc);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) {
        const __m128 scale = _mm_mul_ps(_mm_set1_ps(xs[i]), _mm_load_ps(ws + kQPackRows * j));
        _mm_store_ps(v[i] + kQPackRows * j, _mm_mul_ps(_mm_cvtepi32_ps(acc[i][j]), scale));
      }
  }

  // Nibbles are unpacked as int8 values times 16 (see qgemm_wasm.cc); the group sums are shifted back.
  static void UnpackI4(const uint8_t* block, int chunks, int8_t* out) { UnpackI4Sse(block, chunks, out); }

  template <int MR, int NB>
  static void I4(const int16_t* q, size_t ldq, const float* xs, const int8_t* unpacked, size_t stride, int groups,
                 int pairs_per_group, const float* scales, float (*v)[kQPackRows * NB]) {
    __m128 total[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) total[i][j] = _mm_setzero_ps();
    for (int g = 0; g < groups; ++g) {
      __m128i acc[MR][NB];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NB; ++j) acc[i][j] = _mm_setzero_si128();
      AccumulatePairs<MR, NB>(q, ldq, unpacked, stride, g * pairs_per_group, (g + 1) * pairs_per_group, acc);
      for (int j = 0; j < NB; ++j) {
        const __m128 group_scale = _mm_load_ps(scales + (static_cast<size_t>(j) * groups + g) * kQPackRows);
        for (int i = 0; i < MR; ++i)
          total[i][j] = _mm_add_ps(total[i][j],
                                   _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(acc[i][j], 4)), group_scale));
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) _mm_store_ps(v[i] + kQPackRows * j, _mm_mul_ps(total[i][j], _mm_set1_ps(xs[i])));
  }
};

void SseI8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  RunI8<SseTiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void SseI4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunI4<SseTiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

// ---- AVX2 --------------------------------------------------------------------------------------------------
// Tile functions carry the target attribute (and stay out of line); the drivers above call them per tile.
#define EARSHOT_AVX2 __attribute__((target("avx2"), noinline))

// Two pairs per instruction: lanes 0-3 accumulate pair p of four columns, lanes 4-7 pair p + 1; the halves are
// added at the end (pairs come in even numbers: chunks and I4 groups hold 8 and 16 of them).
struct Avx2Tiles {
  static void ConvertScales(const uint8_t* f16, int count, float* out) { ConvertScalesSse(f16, count, out); }
  static void UnpackI4(const uint8_t* block, int chunks, int8_t* out) { UnpackI4Sse(block, chunks, out); }

  template <int MR, int NB>
  EARSHOT_AVX2 static void AccumulatePairs(const int16_t* q, size_t ldq, const int8_t* block, size_t stride, int p0,
                                           int p1, __m128i (&out)[MR][NB]) {
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256i acc[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_setzero_si256();
    for (int p = p0; p < p1; p += 2) {
      __m256i b[NB];
      for (int j = 0; j < NB; ++j)
        b[j] = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + j * stride + 8 * static_cast<size_t>(p))));
      for (int i = 0; i < MR; ++i) {
        const __m128i two = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i * ldq + 2 * p));
        const __m256i a = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(two), spread);
        for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, b[j]));
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j)
        out[i][j] = _mm_add_epi32(_mm256_castsi256_si128(acc[i][j]), _mm256_extracti128_si256(acc[i][j], 1));
  }

  template <int MR, int NB>
  static void I8(const int16_t* q, size_t ldq, const float* xs, const uint8_t* block, size_t stride, int pairs,
                 const float* ws, float (*v)[kQPackRows * NB]) {
    __m128i acc[MR][NB];
    AccumulatePairs<MR, NB>(q, ldq, reinterpret_cast<const int8_t*>(block), stride, 0, pairs, acc);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) {
        const __m128 scale = _mm_mul_ps(_mm_set1_ps(xs[i]), _mm_load_ps(ws + kQPackRows * j));
        _mm_store_ps(v[i] + kQPackRows * j, _mm_mul_ps(_mm_cvtepi32_ps(acc[i][j]), scale));
      }
  }

  template <int MR, int NB>
  static void I4(const int16_t* q, size_t ldq, const float* xs, const int8_t* unpacked, size_t stride, int groups,
                 int pairs_per_group, const float* scales, float (*v)[kQPackRows * NB]) {
    __m128 total[MR][NB];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) total[i][j] = _mm_setzero_ps();
    for (int g = 0; g < groups; ++g) {
      __m128i acc[MR][NB];
      AccumulatePairs<MR, NB>(q, ldq, unpacked, stride, g * pairs_per_group, (g + 1) * pairs_per_group, acc);
      for (int j = 0; j < NB; ++j) {
        const __m128 group_scale = _mm_load_ps(scales + (static_cast<size_t>(j) * groups + g) * kQPackRows);
        for (int i = 0; i < MR; ++i)
          total[i][j] = _mm_add_ps(total[i][j],
                                   _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(acc[i][j], 4)), group_scale));
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) _mm_store_ps(v[i] + kQPackRows * j, _mm_mul_ps(total[i][j], _mm_set1_ps(xs[i])));
  }
};

void Avx2I8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  RunI8<Avx2Tiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

void Avx2I4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
            size_t ldy, const GemmEpilogue& ep) {
  if (!SimdI4Supported(w)) return ReferenceQGemmKernel().i4(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunI4<Avx2Tiles>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

}  // namespace

void AppendSimdQGemmKernels(std::vector<QGemmKernel>* kernels) {
  kernels->push_back({"sse4.1", SseI8, SseI4});
  if (__builtin_cpu_supports("avx2")) kernels->push_back({"avx2", Avx2I8, Avx2I4});
}

}  // namespace earshot

#endif
