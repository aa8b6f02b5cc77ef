// Attention with integer products (AttentionArgs::integer_products): the encoder's QK^T and PV products, which
// are as large as all its linear layers together, run on 16-bit multiply-adds (pmaddwd / i32x4.dot_i16x8_s) at
// about twice the rate of float multiply-adds. Operands are quantized far finer than the int8 weights: queries
// and keys per row to +-QkMax(d_head) (QkMax^2 * d_head <= 2^30: 4096 for heads of 64), values per column to
// +-kValueMax, probabilities to [0, kProbMax] (row maximum = kProbMax), so the products' error is small next to
// the weights' own.
//
// Arithmetic (every build, the SIMD kernels and AttentionIntegerReference alike):
//   rows          q16[i] = QuantizeRow(q[i]), qs[i] = (max|q[i]| / QkMax) * scale; keys alike (ks[j] without
//                 the attention scale);
//                 values per column e over all keys: v16[j, e], vs[e] = max_j |v[j, e]| / kValueMax
//   scores        s[i, j] = float(sum_e q16[i, e] k16[j, e]) * (qs[i] * ks[j])
//   probabilities m = max_j s[i, j]; p16[i, j] = round_half_even(exp(s[i, j] - m) * kProbMax) with the
//                 polynomial exp of ProbabilityValue; inv[i] = 1 / float(sum_j p16[i, j])
//   output        t = 0; for each chunk of kPairsPerChunk key pairs, in order: t = t + float(int32 chunk sum of
//                 p16 * v16); out[i, e] = (t * vs[e]) * inv[i]
// Integer sums are exact (bounds above), the float steps fixed, so the result is bit-identical everywhere.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/vec4.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace earshot {
namespace {

constexpr int kValueMax = 1023;
constexpr int kProbMax = 8191;
// kPairsPerChunk * 2 * kProbMax * kValueMax < 2^31.
constexpr int kPairsPerChunk = 64;
constexpr int kQueryBlock = 64;

int QkMax(int d) {
  const double m = std::floor(std::sqrt(static_cast<double>(1 << 30) / d));
  return static_cast<int>(std::min(32767.0, m));
}

int RoundUp(int n, int m) { return (n + m - 1) / m * m; }

// round_half_even(clamp(x * inv, -limit, limit)), NaN -> 0.
inline int16_t QuantizeValue(float x, float inv, int limit) {
  return static_cast<int16_t>(RoundClamped(x * inv, static_cast<float>(limit)));
}

// q16 = QuantizeValue(x, limit / max|x|), 0 for an all-zero row; returns max|x| / limit (0 for an all-zero row).
float QuantizeRow(const float* x, int n, int limit, int16_t* out) {
  float max_abs = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    max_abs = a > max_abs ? a : max_abs;
  }
  if (!(max_abs > 0.0f)) {
    std::fill(out, out + n, int16_t{0});
    return 0.0f;
  }
  const float inv = static_cast<float>(limit) / max_abs;
  for (int i = 0; i < n; ++i) out[i] = QuantizeValue(x[i], inv, limit);
  return max_abs / static_cast<float>(limit);
}

// One head's operands in the kernels' layouts (see the file comment for the scales):
//   q16   [n_q, d] plain;
//   k16   blocks of 4 keys, each d/2 pairs of 8 values: (key 4b + r, dim 2p + t) at (b * d/2 + p) * 8 + 2r + t;
//   v16   blocks of 4 dims, each n_pairs key pairs of 8 values: (key 2u + t, dim 4c + r) at
//         (c * n_pairs + u) * 8 + 2r + t.
// Padding keys are zero (their scale too).
struct HeadOperands {
  int n_q, n_kv, d, n_keys4, n_pairs;
  int16_t *q16, *k16, *v16;
  float *qs, *ks, *vs;
};

// Rows [lo, hi) of `task` of `tasks` over n rows.
inline void TaskRows(int task, int tasks, int n, int* lo, int* hi) {
  *lo = static_cast<int>(static_cast<int64_t>(n) * task / tasks);
  *hi = static_cast<int>(static_cast<int64_t>(n) * (task + 1) / tasks);
}

enum HeadParts { kQueries = 1, kKeysValues = 2 };

// Quantizes head h's queries and/or keys and values (`parts`) into `o`, rows shared among `tasks` pool tasks
// (the column maxima of the values are combined from per-task maxima: a maximum does not depend on the order).
// `scratch`: 2 d floats per task.
void PrepareHead(const AttentionArgs& a, int h, float scale, int parts, int tasks, float* scratch,
                 HeadOperands* o) {
  const size_t col = static_cast<size_t>(h) * a.d_head;
  const int d = a.d_head, qk = QkMax(d);
  const auto quantize_queries = [&](int lo, int hi) {
    for (int i = lo; i < hi; ++i)
      o->qs[i] = QuantizeRow(a.q + i * a.ldq + col, d, qk, o->q16 + static_cast<size_t>(i) * d) * scale;
  };
  if (!(parts & kKeysValues)) {
    quantize_queries(0, a.n_q);
    return;
  }
  std::fill(o->k16, o->k16 + static_cast<size_t>(o->n_keys4) * d, int16_t{0});
  std::fill(o->ks, o->ks + o->n_keys4, 0.0f);
  std::fill(o->v16, o->v16 + static_cast<size_t>(d) * o->n_pairs * 2, int16_t{0});
  ParallelFor(tasks, [&](int t) {
    int lo, hi;
    if (parts & kQueries) {
      TaskRows(t, tasks, a.n_q, &lo, &hi);
      quantize_queries(lo, hi);
    }
    int16_t* row = reinterpret_cast<int16_t*>(scratch + static_cast<size_t>(t) * 2 * d);
    float* col_max = scratch + static_cast<size_t>(t) * 2 * d + d;
    std::fill(col_max, col_max + d, 0.0f);
    TaskRows(t, tasks, a.n_kv, &lo, &hi);
    for (int j = lo; j < hi; ++j) {
      int16_t* dst = o->k16 + static_cast<size_t>(j / 4) * (d / 2) * 8 + 2 * (j % 4);
      o->ks[j] = QuantizeRow(a.k + j * a.ldk + col, d, qk, row);
      for (int p = 0; p < d / 2; ++p) {
        dst[8 * p] = row[2 * p];
        dst[8 * p + 1] = row[2 * p + 1];
      }
      // Values: per-column scales, but read row by row (a column walk would miss the cache on every key).
      const float* v = a.v + j * a.ldv + col;
      for (int e = 0; e < d; ++e) {
        const float m = std::fabs(v[e]);
        col_max[e] = m > col_max[e] ? m : col_max[e];  // NaN is skipped
      }
    }
  });
  float* const inv = scratch;  // d floats, free again
  for (int e = 0; e < d; ++e) {
    float m = 0.0f;
    for (int t = 0; t < tasks; ++t) {
      const float c = scratch[static_cast<size_t>(t) * 2 * d + d + e];
      m = c > m ? c : m;
    }
    inv[e] = m > 0.0f ? static_cast<float>(kValueMax) / m : 0.0f;
    o->vs[e] = m / static_cast<float>(kValueMax);
  }
  ParallelFor(tasks, [&](int t) {
    int lo, hi;
    TaskRows(t, tasks, a.n_kv, &lo, &hi);
    for (int j = lo; j < hi; ++j) {
      const float* v = a.v + j * a.ldv + col;
      int16_t* dst = o->v16 + static_cast<size_t>(j / 2) * 8 + j % 2;
      for (int e = 0; e < d; ++e)
        dst[static_cast<size_t>(e / 4) * o->n_pairs * 8 + 2 * (e % 4)] = QuantizeValue(v[e], inv[e], kValueMax);
    }
  });
}

// ---- products ------------------------------------------------------------------------------------------------
// The one 16-bit multiply-add instruction the GNU vectors do not spell.
inline I32x4 DotPairs(I16x8 a, I16x8 b) {
#if defined(__wasm_simd128__)
  return (I32x4)wasm_i32x4_dot_i16x8((v128_t)a, (v128_t)b);
#elif defined(__SSE2__)
  return (I32x4)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
  I32x4 r;
  for (int l = 0; l < 4; ++l) r[l] = int32_t{a[2 * l]} * b[2 * l] + int32_t{a[2 * l + 1]} * b[2 * l + 1];
  return r;
#endif
}

inline I16x8 SplatPair(const int16_t* p) {
  int32_t pair;
  std::memcpy(&pair, p, 4);
  const I32x4 v = {pair, pair, pair, pair};
  return (I16x8)v;
}
inline F32x4 ToFloat(I32x4 v) { return __builtin_convertvector(v, F32x4); }

// ---- probabilities ------------------------------------------------------------------------------------------
// p = round_half_even(exp(x) * kProbMax) for x = s - max <= 0, the same float steps in the scalar function and
// in its 4-lane twin. exp(x) = 2^n exp(r), x = n ln2 + r, with a degree-5 Taylor polynomial on |r| <= ln2/2
// (relative error 2.5e-6, far below the 1/8191 step); x is clamped to [-16, 0], where exp(-16) * kProbMax
// rounds to 0, so no step can overflow or turn subnormal, and NaN becomes -16.
// Both round through kRoundShift (vec4.h), with no float-to-int conversion.
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kC5 = 1.0f / 120, kC4 = 1.0f / 24, kC3 = 1.0f / 6, kC2 = 0.5f;

inline int32_t ProbabilityValue(float x) {
  x = x > -16.0f ? x : -16.0f;
  x = x < 0.0f ? x : 0.0f;
  const float shifted = x * kLog2e + kRoundShift;
  const float n = shifted - kRoundShift;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kC5;
  p = p * r + kC4;
  p = p * r + kC3;
  p = p * r + kC2;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t two_n_bits = (IntFromRoundShifted(shifted) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &two_n_bits, 4);
  return IntFromRoundShifted((p * two_n) * static_cast<float>(kProbMax) + kRoundShift);
}

inline I32x4 ProbabilityValues(F32x4 x) {
  const F32x4 lo = SplatF32x4(-16.0f), zero = SplatF32x4(0.0f), round = SplatF32x4(kRoundShift);
  x = Select(x > lo, x, lo);
  x = Select(x < zero, x, zero);
  const F32x4 shifted = x * SplatF32x4(kLog2e) + round;
  const F32x4 n = shifted - round;
  F32x4 r = x - n * SplatF32x4(kLn2Hi);
  r = r - n * SplatF32x4(kLn2Lo);
  F32x4 p = SplatF32x4(kC5);
  p = p * r + SplatF32x4(kC4);
  p = p * r + SplatF32x4(kC3);
  p = p * r + SplatF32x4(kC2);
  p = p * r + SplatF32x4(1.0f);
  p = p * r + SplatF32x4(1.0f);
  const I32x4 two_n = (IntFromRoundShifted(shifted) + 127) << 23;
  return IntFromRoundShifted((p * (F32x4)two_n) * SplatF32x4(static_cast<float>(kProbMax)) + round);
}

// Row maximum, NaNs skipped (the order does not matter for a maximum).
float RowMax(const float* s, int n) {
  float m = -INFINITY;
  int j = 0;
  if (n >= 4) {
    F32x4 acc = SplatF32x4(-INFINITY);
    for (; j + 4 <= n; j += 4) {
      const F32x4 x = LoadF32x4(s + j);
      acc = Select(x > acc, x, acc);
    }
    for (int l = 0; l < 4; ++l) m = acc[l] > m ? acc[l] : m;
  }
  for (; j < n; ++j) m = s[j] > m ? s[j] : m;
  return m;
}

// p16 row from scores s[0, n), padded to an even count with a zero; returns inv = 1 / sum.
float ProbabilityRow(const float* s, int n, int16_t* p) {
  const float m = RowMax(s, n);
  I32x4 sum4 = {0, 0, 0, 0};
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const I32x4 v = ProbabilityValues(LoadF32x4(s + j) - SplatF32x4(m));
    sum4 += v;
    const I16x4 narrow = __builtin_convertvector(v, I16x4);
    std::memcpy(p + j, &narrow, sizeof(narrow));
  }
  int32_t sum = (sum4[0] + sum4[1]) + (sum4[2] + sum4[3]);
  for (; j < n; ++j) {
    const int32_t v = ProbabilityValue(s[j] - m);
    p[j] = static_cast<int16_t>(v);
    sum += v;
  }
  if (n % 2) p[n] = 0;
  return 1.0f / static_cast<float>(sum);
}

// The same values one element at a time.
float ProbabilityRowReference(const float* s, int n, int16_t* p) {
  float m = -INFINITY;
  for (int j = 0; j < n; ++j) m = s[j] > m ? s[j] : m;
  int32_t sum = 0;
  for (int j = 0; j < n; ++j) {
    p[j] = static_cast<int16_t>(ProbabilityValue(s[j] - m));
    sum += p[j];
  }
  if (n % 2) p[n] = 0;
  return 1.0f / static_cast<float>(sum);
}

// Scores of MR queries x NB key blocks (4 keys each): s[i][4 (b + j) + lane].
template <int MR, int NB>
inline void ScoreTile(const HeadOperands& o, int i0, int b0, float* s, size_t lds) {
  const int pairs = o.d / 2;
  I32x4 acc[MR][NB] = {};
  const int16_t* kb = o.k16 + static_cast<size_t>(b0) * pairs * 8;
  const int16_t* qi = o.q16 + static_cast<size_t>(i0) * o.d;
  for (int p = 0; p < pairs; ++p) {
    I16x8 b[NB];
    for (int j = 0; j < NB; ++j) b[j] = LoadI16x8(kb + (static_cast<size_t>(j) * pairs + p) * 8);
    for (int i = 0; i < MR; ++i) {
      const I16x8 a = SplatPair(qi + i * o.d + 2 * p);
      for (int j = 0; j < NB; ++j) acc[i][j] += DotPairs(a, b[j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NB; ++j) {
      const F32x4 v = ToFloat(acc[i][j]) * (SplatF32x4(o.qs[i0 + i]) * LoadF32x4(o.ks + 4 * (b0 + j)));
      std::memcpy(s + i * lds + 4 * (b0 + j), &v, sizeof(v));
    }
}

// Output of MR probability rows x NB dim blocks (4 dims each).
template <int MR, int NB>
inline void OutputTile(const HeadOperands& o, const int16_t* p, size_t ldp, const float* inv, int c0, float* out,
                       size_t ldo) {
  F32x4 t[MR][NB] = {};
  const int16_t* vb = o.v16 + static_cast<size_t>(c0) * o.n_pairs * 8;
  for (int u0 = 0; u0 < o.n_pairs; u0 += kPairsPerChunk) {
    const int u1 = std::min(o.n_pairs, u0 + kPairsPerChunk);
    I32x4 acc[MR][NB] = {};
    for (int u = u0; u < u1; ++u) {
      I16x8 b[NB];
      for (int j = 0; j < NB; ++j) b[j] = LoadI16x8(vb + (static_cast<size_t>(j) * o.n_pairs + u) * 8);
      for (int i = 0; i < MR; ++i) {
        const I16x8 a = SplatPair(p + i * ldp + 2 * u);
        for (int j = 0; j < NB; ++j) acc[i][j] += DotPairs(a, b[j]);
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NB; ++j) t[i][j] = t[i][j] + ToFloat(acc[i][j]);
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NB; ++j) {
      const F32x4 v = (t[i][j] * LoadF32x4(o.vs + 4 * (c0 + j))) * SplatF32x4(inv[i]);
      std::memcpy(out + i * ldo + 4 * (c0 + j), &v, sizeof(v));
    }
}

constexpr int kRows = 4, kBlocks = 2;

// One head over queries [q0, q0 + nq): scores, probabilities, output. `scores` holds nq x n_keys4 floats,
// `p` nq x 2 n_pairs values.
void AttendBlock(const AttentionArgs& a, const HeadOperands& o, int h, int q0, int nq, float* scores, int16_t* p) {
  const size_t lds = static_cast<size_t>(o.n_keys4), ldp = static_cast<size_t>(o.n_pairs) * 2;
  const int key_blocks = o.n_keys4 / 4;
  int i = 0;
  auto score_rows = [&](auto rows) {
    constexpr int MR = decltype(rows)::value;
    float* s = scores + static_cast<size_t>(i) * lds;
    int b = 0;
    for (; b + kBlocks <= key_blocks; b += kBlocks) ScoreTile<MR, kBlocks>(o, q0 + i, b, s, lds);
    for (; b < key_blocks; ++b) ScoreTile<MR, 1>(o, q0 + i, b, s, lds);
  };
  for (; i + kRows <= nq; i += kRows) score_rows(std::integral_constant<int, kRows>());
  for (; i < nq; ++i) score_rows(std::integral_constant<int, 1>());

  float inv[kQueryBlock];
  for (int r = 0; r < nq; ++r) inv[r] = ProbabilityRow(scores + r * lds, a.n_kv, p + r * ldp);

  const int dim_blocks = o.d / 4;
  float* out = a.out + static_cast<size_t>(q0) * a.ldo + static_cast<size_t>(h) * a.d_head;
  i = 0;
  auto output_rows = [&](auto rows) {
    constexpr int MR = decltype(rows)::value;
    int c = 0;
    for (; c + kBlocks <= dim_blocks; c += kBlocks)
      OutputTile<MR, kBlocks>(o, p + i * ldp, ldp, inv + i, c, out + i * a.ldo, a.ldo);
    for (; c < dim_blocks; ++c) OutputTile<MR, 1>(o, p + i * ldp, ldp, inv + i, c, out + i * a.ldo, a.ldo);
  };
  for (; i + kRows <= nq; i += kRows) output_rows(std::integral_constant<int, kRows>());
  for (; i < nq; ++i) output_rows(std::integral_constant<int, 1>());
}

struct Layout {
  int n_keys4, n_pairs;
  size_t query_bytes, kv_bytes, slot_bytes;  // one head's queries, one head's keys and values, one thread's scratch
};

size_t Aligned16(size_t bytes) { return (bytes + 15) / 16 * 16; }

Layout LayoutFor(const AttentionArgs& a) {
  Layout l;
  l.n_keys4 = RoundUp(a.n_kv, 4);
  l.n_pairs = (a.n_kv + 1) / 2;
  const size_t d = static_cast<size_t>(a.d_head);
  // q16, qs; k16, v16, ks, vs; each part 16-byte aligned.
  l.query_bytes = Aligned16(static_cast<size_t>(a.n_q) * d * 2) + Aligned16(static_cast<size_t>(a.n_q) * 4);
  l.kv_bytes = static_cast<size_t>(l.n_keys4) * d * 2 + d * l.n_pairs * 4 + static_cast<size_t>(l.n_keys4) * 4 +
               Aligned16(d * 4);
  const size_t block = static_cast<size_t>(std::min(a.n_q, kQueryBlock));
  l.slot_bytes = Aligned16(block * l.n_keys4 * 4) + Aligned16(block * l.n_pairs * 4);
  return l;
}

// The pointers of one head's operands: queries at `queries` (Layout::query_bytes), keys and values at
// `keys_values` (Layout::kv_bytes); either may be null.
HeadOperands CarveHead(const AttentionArgs& a, const Layout& l, uint8_t* queries, uint8_t* keys_values) {
  HeadOperands o;
  o.n_q = a.n_q;
  o.n_kv = a.n_kv;
  o.d = a.d_head;
  o.n_keys4 = l.n_keys4;
  o.n_pairs = l.n_pairs;
  const size_t d = static_cast<size_t>(a.d_head);
  o.q16 = reinterpret_cast<int16_t*>(queries);
  o.qs = queries ? reinterpret_cast<float*>(queries + Aligned16(static_cast<size_t>(a.n_q) * d * 2)) : nullptr;
  uint8_t* at = keys_values;
  auto take = [&](size_t bytes) {
    uint8_t* p = at;
    if (at) at += Aligned16(bytes);
    return p;
  };
  o.k16 = reinterpret_cast<int16_t*>(take(static_cast<size_t>(l.n_keys4) * d * 2));
  o.v16 = reinterpret_cast<int16_t*>(take(d * l.n_pairs * 4));
  o.ks = reinterpret_cast<float*>(take(static_cast<size_t>(l.n_keys4) * 4));
  o.vs = reinterpret_cast<float*>(take(d * 4));
  return o;
}

// AttendBlock for query block `block` of head h, with a thread's scores and probabilities at `slot`
// (Layout::slot_bytes).
void AttendSlotBlock(const AttentionArgs& a, const HeadOperands& o, int h, int block, const Layout& l,
                     uint8_t* slot) {
  const int q0 = block * kQueryBlock, nq = std::min(kQueryBlock, a.n_q - q0);
  float* scores = reinterpret_cast<float*>(slot);
  int16_t* p = reinterpret_cast<int16_t*>(slot + Aligned16(static_cast<size_t>(std::min(a.n_q, kQueryBlock)) *
                                                           l.n_keys4 * 4));
  AttendBlock(a, o, h, q0, nq, scores, p);
}

// The preparation's tasks (rows of queries, keys and values) for these sizes.
int PrepareTasks(const AttentionArgs& a) {
  constexpr int64_t kPrepareWorkPerValue = 8;  // quantizing a value costs about this many multiply-adds
  return TaskCountFor(static_cast<int64_t>(a.n_q + 2 * a.n_kv) * a.d_head * kPrepareWorkPerValue, a.n_kv);
}

}  // namespace

bool IntegerAttentionApplies(const AttentionArgs& a) {
  return a.integer_products && a.causal_offset < 0 && a.d_head % 4 == 0 && a.n_kv > 0;
}

bool AttentionInteger(const AttentionArgs& a, int scratch_slots) {
  if (a.n_q <= 0 || a.n_head <= 0) return true;
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.d_head));
  const Layout l = LayoutFor(a);
  const int n_blocks = (a.n_q + kQueryBlock - 1) / kQueryBlock;
  const int64_t work = 2 * static_cast<int64_t>(a.n_q) * a.n_kv * a.d_head;
  const int slots = std::max(1, std::min(scratch_slots, TaskCountFor(work, n_blocks)));
  const int prepare_tasks = PrepareTasks(a);
  // One head's operands at a time (the query blocks of a head are what threads share), each thread's scores and
  // probabilities, and the preparation's scratch.
  AlignedBuffer buffer(l.query_bytes + l.kv_bytes + static_cast<size_t>(slots) * l.slot_bytes +
                       static_cast<size_t>(prepare_tasks) * 2 * a.d_head * sizeof(float));
  if (!buffer.ok()) return false;
  HeadOperands o = CarveHead(a, l, buffer.data(), buffer.data() + l.query_bytes);
  uint8_t* slot_base = buffer.data() + l.query_bytes + l.kv_bytes;
  float* prepare_scratch = reinterpret_cast<float*>(slot_base + static_cast<size_t>(slots) * l.slot_bytes);
  for (int h = 0; h < a.n_head; ++h) {
    PrepareHead(a, h, scale, kQueries | kKeysValues, prepare_tasks, prepare_scratch, &o);
    ParallelForSlots(n_blocks, slots, [&](int block, int slot) {
      AttendSlotBlock(a, o, h, block, l, slot_base + static_cast<size_t>(slot) * l.slot_bytes);
    });
  }
  return true;
}

bool IntegerKeyValues::Prepare(int n_kv, int n_head, int d_head, const float* k, size_t ldk, const float* v,
                               size_t ldv) {
  data_ = AlignedBuffer();
  n_kv_ = n_head_ = d_head_ = 0;
  if (n_kv < 1 || n_head < 1 || d_head < 4 || d_head % 4 != 0) return false;
  AttentionArgs a;
  a.n_kv = n_kv;
  a.n_head = n_head;
  a.d_head = d_head;
  a.k = k;
  a.ldk = ldk;
  a.v = v;
  a.ldv = ldv;
  const Layout l = LayoutFor(a);
  const int tasks = PrepareTasks(a);
  std::vector<float> scratch(static_cast<size_t>(tasks) * 2 * d_head);
  data_ = AlignedBuffer(l.kv_bytes * n_head);
  if (!data_.ok()) return false;
  for (int h = 0; h < n_head; ++h) {
    HeadOperands o = CarveHead(a, l, nullptr, data_.data() + l.kv_bytes * h);
    PrepareHead(a, h, 0.0f, kKeysValues, tasks, scratch.data(), &o);
  }
  n_kv_ = n_kv;
  n_head_ = n_head;
  d_head_ = d_head;
  return true;
}

bool AttentionIntegerPrepared(const AttentionArgs& args, const IntegerKeyValues& kv, int scratch_slots) {
  if (args.n_q <= 0 || args.n_head <= 0) return true;
  if (kv.n_kv() != args.n_kv || kv.n_head() != args.n_head || kv.d_head() != args.d_head ||
      args.causal_offset >= 0)
    return false;
  const float scale = 1.0f / std::sqrt(static_cast<float>(args.d_head));
  const Layout l = LayoutFor(args);
  const int n_blocks = (args.n_q + kQueryBlock - 1) / kQueryBlock;
  const int units = args.n_head * n_blocks;
  const int64_t work = 2 * static_cast<int64_t>(args.n_q) * args.n_kv * args.d_head * args.n_head;
  const int slots = std::max(1, std::min(scratch_slots, TaskCountFor(work, units)));
  // Every head's queries (a few rows: quantized here, in order), then (head, query block) units on the pool.
  AlignedBuffer buffer(l.query_bytes * args.n_head + static_cast<size_t>(slots) * l.slot_bytes);
  if (!buffer.ok()) return false;
  uint8_t* slot_base = buffer.data() + l.query_bytes * args.n_head;
  for (int h = 0; h < args.n_head; ++h) {
    HeadOperands o = CarveHead(args, l, buffer.data() + l.query_bytes * h, nullptr);
    PrepareHead(args, h, scale, kQueries, 1, nullptr, &o);
  }
  ParallelForSlots(units, slots, [&](int unit, int slot) {
    const int h = unit / n_blocks, block = unit % n_blocks;
    const HeadOperands o = CarveHead(args, l, buffer.data() + l.query_bytes * h, kv.head_data(h, l.kv_bytes));
    AttendSlotBlock(args, o, h, block, l, slot_base + static_cast<size_t>(slot) * l.slot_bytes);
  });
  return true;
}

void AttentionIntegerReference(const AttentionArgs& a) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.d_head));
  const Layout l = LayoutFor(a);
  AlignedBuffer buffer(l.query_bytes + l.kv_bytes);
  HeadOperands o = CarveHead(a, l, buffer.data(), buffer.data() + l.query_bytes);
  std::vector<float> prepare_scratch(static_cast<size_t>(2) * a.d_head);
  const int d = a.d_head;
  std::vector<float> s(static_cast<size_t>(a.n_kv));
  std::vector<int16_t> p(static_cast<size_t>(l.n_pairs) * 2);
  for (int h = 0; h < a.n_head; ++h) {
    PrepareHead(a, h, scale, kQueries | kKeysValues, 1, prepare_scratch.data(), &o);
    for (int i = 0; i < a.n_q; ++i) {
      for (int j = 0; j < a.n_kv; ++j) {
        int32_t acc = 0;
        for (int e = 0; e < d; ++e) {
          const int16_t k = o.k16[static_cast<size_t>(j / 4) * (d / 2) * 8 + (e / 2) * 8 + 2 * (j % 4) + e % 2];
          acc += int32_t{o.q16[static_cast<size_t>(i) * d + e]} * k;
        }
        s[j] = static_cast<float>(acc) * (o.qs[i] * o.ks[j]);
      }
      const float inv = ProbabilityRowReference(s.data(), a.n_kv, p.data());
      for (int e = 0; e < d; ++e) {
        float t = 0.0f;
        for (int u0 = 0; u0 < l.n_pairs; u0 += kPairsPerChunk) {
          int32_t acc = 0;
          for (int j = 2 * u0; j < 2 * std::min(l.n_pairs, u0 + kPairsPerChunk); ++j) {
            const int16_t v = o.v16[static_cast<size_t>(e / 4) * l.n_pairs * 8 + (j / 2) * 8 + 2 * (e % 4) + j % 2];
            acc += int32_t{p[j]} * v;
          }
          t = t + static_cast<float>(acc);
        }
        a.out[static_cast<size_t>(i) * a.ldo + static_cast<size_t>(h) * d + e] = (t * o.vs[e]) * inv;
      }
    }
  }
}

}  // namespace earshot
