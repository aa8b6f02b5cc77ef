// Float kernels against straightforward double-precision loops, on odd shapes that exercise every tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/f16.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "unit/attention_args.h"

namespace earshot {
namespace {

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double GeluRef(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Reference: y = gelu?(x W^T + b) + residual, in double.
std::vector<double> LinearRef(int M, int N, int K, const std::vector<float>& x, size_t ldx,
                              const std::vector<float>& w, size_t ldw, const float* bias, bool gelu,
                              const std::vector<float>* residual, size_t ldy) {
  std::vector<double> y(static_cast<size_t>(M) * ldy, 0.0);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += static_cast<double>(x[m * ldx + k]) * w[n * ldw + k];
      if (bias) acc += bias[n];
      if (gelu) acc = GeluRef(acc);
      if (residual) acc += (*residual)[m * ldy + n];
      y[m * ldy + n] = acc;
    }
  return y;
}

struct Shape {
  int M, N, K;
};

class GemmShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(GemmShapes, F32MatchesDoubleReference) {
  const Shape s = GetParam();
  std::mt19937 rng(s.M * 1000003u + s.N * 1009u + s.K);
  const size_t ldx = s.K + 3, ldw = s.K + 1, ldy = s.N + 2;  // padded rows: leading dimensions matter
  auto x = RandomVector(s.M * ldx, rng);
  auto w = RandomVector(s.N * ldw, rng, 0.3f);
  auto bias = RandomVector(s.N, rng);
  auto residual = RandomVector(s.M * ldy, rng);
  for (int variant = 0; variant < 3; ++variant) {
    GemmEpilogue ep;
    if (variant >= 1) ep.bias = bias.data();
    if (variant == 1) ep.gelu = true;
    std::vector<float> y = residual;  // variant 2 adds the residual in place
    if (variant == 2) {
      ep.residual = y.data();
      ep.ld_residual = ldy;
    }
    GemmF32(s.M, s.N, s.K, x.data(), ldx, w.data(), ldw, y.data(), ldy, ep);
    auto ref = LinearRef(s.M, s.N, s.K, x, ldx, w, ldw, ep.bias, ep.gelu, variant == 2 ? &residual : nullptr, ldy);
    for (int m = 0; m < s.M; ++m)
      for (int n = 0; n < s.N; ++n) {
        const double tol = 1e-5 * std::sqrt(static_cast<double>(s.K)) + 1e-5 * std::fabs(ref[m * ldy + n]);
        ASSERT_NEAR(y[m * ldy + n], ref[m * ldy + n], tol) << "variant " << variant << " m " << m << " n " << n;
      }
    // Untouched padding columns stay as they were.
    for (int m = 0; m < s.M; ++m) ASSERT_EQ(y[m * ldy + s.N], residual[m * ldy + s.N]);
  }
}

TEST_P(GemmShapes, F16WeightsEqualF32OnConvertedWeights) {
  const Shape s = GetParam();
  std::mt19937 rng(77 + s.M + s.N * 31 + s.K * 7);
  auto x = RandomVector(static_cast<size_t>(s.M) * s.K, rng);
  auto wf = RandomVector(static_cast<size_t>(s.N) * s.K, rng, 0.3f);
  std::vector<uint16_t> wh(wf.size());
  F32ToF16Array(wf.data(), wh.data(), wf.size());
  std::vector<float> w_round(wf.size());
  F16ToF32Array(wh.data(), w_round.data(), wh.size());
  std::vector<float> y16(static_cast<size_t>(s.M) * s.N), y32(y16.size());
  GemmF16(s.M, s.N, s.K, x.data(), s.K, wh.data(), s.K, y16.data(), s.N);
  GemmF32(s.M, s.N, s.K, x.data(), s.K, w_round.data(), s.K, y32.data(), s.N);
  EXPECT_EQ(y16, y32);
}

TEST_P(GemmShapes, RowsAreIndependentOfBatch) {
  // Each row alone gives bit-identical results to the same row inside the batch.
  const Shape s = GetParam();
  std::mt19937 rng(5 + s.M * 3 + s.N + s.K);
  auto x = RandomVector(static_cast<size_t>(s.M) * s.K, rng);
  auto w = RandomVector(static_cast<size_t>(s.N) * s.K, rng);
  std::vector<float> all(static_cast<size_t>(s.M) * s.N), one(s.N);
  GemmF32(s.M, s.N, s.K, x.data(), s.K, w.data(), s.K, all.data(), s.N);
  for (int m = 0; m < s.M; ++m) {
    GemmF32(1, s.N, s.K, x.data() + static_cast<size_t>(m) * s.K, s.K, w.data(), s.K, one.data(), s.N);
    for (int n = 0; n < s.N; ++n) ASSERT_EQ(one[n], all[static_cast<size_t>(m) * s.N + n]) << m << "," << n;
  }
}

// The documented summation order, spelled out in scalar code: element k into lane k % kGemmLanes, then
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). The SIMD tiles must match it bit for bit.
TEST_P(GemmShapes, F32EqualsScalarLaneOrder) {
  const Shape s = GetParam();
  std::mt19937 rng(s.M * 7u + s.N * 131u + s.K * 3u);
  const size_t ldx = s.K + 1, ldw = s.K + 2, ldy = s.N + 1;
  auto x = RandomVector(s.M * ldx, rng);
  auto w = RandomVector(s.N * ldw, rng, 0.3f);
  std::vector<float> y(s.M * ldy, 0.0f);
  GemmF32(s.M, s.N, s.K, x.data(), ldx, w.data(), ldw, y.data(), ldy);
  for (int m = 0; m < s.M; ++m)
    for (int n = 0; n < s.N; ++n) {
      float l[kGemmLanes] = {};
      for (int k = 0; k < s.K; ++k) l[k % kGemmLanes] += x[m * ldx + k] * w[n * ldw + k];
      const float ref = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
      ASSERT_EQ(y[m * ldy + n], ref) << m << "," << n;
    }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, GemmShapes,
                         ::testing::Values(Shape{1, 1, 1}, Shape{1, 7, 3}, Shape{3, 5, 8}, Shape{5, 17, 9},
                                           Shape{4, 16, 16}, Shape{7, 33, 31}, Shape{66, 19, 23},
                                           Shape{130, 21, 65}, Shape{2, 3, 200}));

TEST(KernelsOps, MatMulNNMatchesReference) {
  std::mt19937 rng(3);
  const int M = 5, N = 13, K = 11;
  const size_t ldp = K + 2, ldv = N + 1, ldy = N + 3;
  auto p = RandomVector(M * ldp, rng), v = RandomVector(K * ldv, rng);
  std::vector<float> y(M * ldy, 0.0f);
  MatMulNN(M, N, K, p.data(), ldp, v.data(), ldv, y.data(), ldy);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += static_cast<double>(p[m * ldp + k]) * v[k * ldv + n];
      EXPECT_NEAR(y[m * ldy + n], acc, 1e-5);
    }
}

TEST(KernelsOps, GeluIsExactErfForm) {
  double worst_abs = 0, worst_rel = 0;
  for (int i = -16000; i <= 16000; ++i) {
    const float x = i * 5e-4f;  // [-8, 8]
    const double ref = GeluRef(x);
    const double err = std::fabs(Gelu(x) - ref);
    worst_abs = std::max(worst_abs, err);
    if (std::fabs(x) <= 4) worst_rel = std::max(worst_rel, err / std::max(std::fabs(ref), 1e-30));
  }
  EXPECT_LT(worst_abs, 5e-7);
  EXPECT_LT(worst_rel, 3e-6);
  EXPECT_EQ(Gelu(0.0f), 0.0f);
  EXPECT_NEAR(Gelu(20.0f), 20.0f, 1e-6);
  EXPECT_EQ(Gelu(-20.0f), -0.0f);
  EXPECT_TRUE(std::isnan(Gelu(std::numeric_limits<float>::quiet_NaN())));
  // The tanh approximation gives -0.100428 here; make sure we are not using it.
  EXPECT_NEAR(Gelu(-1.5f), -0.1002108019, 1e-7);
}

TEST(KernelsOps, GeluInPlaceEqualsGeluPerValue) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.01f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 40.0f, -40.0f, 3e38f, -3e38f}) x.push_back(v);
  std::vector<float> y = x;
  GeluInPlace(y.data(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float expected = Gelu(x[i]);
    ASSERT_EQ(std::memcmp(&y[i], &expected, sizeof(float)), 0) << "x = " << x[i];
  }
}

TEST(KernelsOps, FastExpIsAccurate) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-87.0f, 88.5f);
  float max_rel = 0;
  for (int i = 0; i < 20000; ++i) {
    const float x = i < 1000 ? dist(rng) * 0.01f : dist(rng);
    const double ref = std::exp(static_cast<double>(x));
    max_rel = std::max(max_rel, static_cast<float>(std::fabs(FastExp(x) - ref) / ref));
  }
  EXPECT_LT(max_rel, 3e-7f);
  EXPECT_EQ(FastExp(0.0f), 1.0f);
  EXPECT_EQ(FastExp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(FastExp(-200.0f), 0.0f);
  EXPECT_TRUE(std::isinf(FastExp(89.0f)));
  EXPECT_TRUE(std::isinf(FastExp(std::numeric_limits<float>::infinity())));
  EXPECT_TRUE(std::isnan(FastExp(std::numeric_limits<float>::quiet_NaN())));
  // Subnormal results keep their magnitude.
  EXPECT_NEAR(FastExp(-100.0f), static_cast<float>(std::exp(-100.0)), 1.5e-45);
  EXPECT_NEAR(FastExp(-88.0f), std::exp(-88.0), 1e-38 * 1e-6);
}

TEST(KernelsOps, LayerNormMatchesReference) {
  std::mt19937 rng(21);
  const int rows = 3, dim = 37;
  auto x = RandomVector(rows * dim, rng, 3.0f);
  for (int i = 0; i < dim; ++i) x[i] += 100.0f;  // large mean: variance must not cancel
  auto g = RandomVector(dim, rng), b = RandomVector(dim, rng);
  std::vector<float> y(x.size());
  LayerNorm(x.data(), y.data(), rows, dim, g.data(), b.data());
  for (int r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= dim;
    for (int i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    var /= dim;
    for (int i = 0; i < dim; ++i) {
      const double ref = (x[r * dim + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
      EXPECT_NEAR(y[r * dim + i], ref, 1e-5 * (1 + std::fabs(ref)));
    }
  }
  // In place gives the same.
  std::vector<float> z = x;
  LayerNorm(z.data(), z.data(), rows, dim, g.data(), b.data());
  EXPECT_EQ(z, y);
}

TEST(KernelsOps, SoftmaxAndLogSoftmax) {
  std::vector<float> row = {1.0f, 2.0f, -std::numeric_limits<float>::infinity(), 0.5f, 30.0f};
  std::vector<float> sm = row;
  SoftmaxRows(sm.data(), 1, 5, 5);
  double z = 0;
  for (float v : row) z += std::exp(static_cast<double>(v));
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(sm[i], std::exp(static_cast<double>(row[i])) / z, 1e-7);
  EXPECT_EQ(sm[2], 0.0f);
  std::vector<float> ls = row;
  LogSoftmax(ls.data(), 5);
  for (int i = 0; i < 5; ++i) {
    if (i == 2) {
      EXPECT_EQ(ls[i], -std::numeric_limits<float>::infinity());
      continue;
    }
    EXPECT_NEAR(ls[i], row[i] - std::log(z), 1e-5);
  }
  std::vector<float> all_masked(4, -std::numeric_limits<float>::infinity());
  SoftmaxRows(all_masked.data(), 1, 4, 4);
  for (float v : all_masked) EXPECT_EQ(v, 0.0f);
  std::vector<float> all_masked_log(4, -std::numeric_limits<float>::infinity());
  LogSoftmax(all_masked_log.data(), 4);
  for (float v : all_masked_log) EXPECT_EQ(v, -std::numeric_limits<float>::infinity());
}

TEST(KernelsOps, Conv1dViaIm2ColMatchesDirect) {
  std::mt19937 rng(31);
  const int c_in = 5, c_out = 7;
  for (int stride : {1, 2}) {
    for (int n_in : {1, 2, 9, 10}) {
      auto x = RandomVector(c_in * n_in, rng);  // channel-major [c][t]
      auto w = RandomVector(c_out * c_in * 3, rng);
      auto b = RandomVector(c_out, rng);
      const int n_out = Conv1dK3OutputLength(n_in, stride);
      EXPECT_EQ(n_out, (n_in + 2 - 3) / stride + 1);
      std::vector<float> cols(static_cast<size_t>(n_out) * c_in * 3), y(static_cast<size_t>(n_out) * c_out);
      Im2ColK3(x.data(), c_in, n_in, n_in, 1, stride, cols.data());
      GemmEpilogue ep;
      ep.bias = b.data();
      GemmF32(n_out, c_out, c_in * 3, cols.data(), c_in * 3, w.data(), c_in * 3, y.data(), c_out, ep);
      // Same input time-major [t][c] gives the same lowering.
      std::vector<float> xt(x.size()), cols_t(cols.size());
      for (int c = 0; c < c_in; ++c)
        for (int t = 0; t < n_in; ++t) xt[t * c_in + c] = x[c * n_in + t];
      Im2ColK3(xt.data(), c_in, n_in, 1, c_in, stride, cols_t.data());
      EXPECT_EQ(cols, cols_t);
      for (int t = 0; t < n_out; ++t)
        for (int o = 0; o < c_out; ++o) {
          double acc = b[o];
          for (int c = 0; c < c_in; ++c)
            for (int k = 0; k < 3; ++k) {
              const int src = t * stride + k - 1;
              if (src >= 0 && src < n_in) acc += static_cast<double>(w[(o * c_in + c) * 3 + k]) * x[c * n_in + src];
            }
          EXPECT_NEAR(y[t * c_out + o], acc, 1e-5) << "stride " << stride << " n_in " << n_in;
        }
    }
  }
}

// Attention against a double reference, with and without a causal offset, over odd head sizes.
// With transposed_values the values also go in as v_t (the encoder's layout); with integer_products the
// integer path is asked for (and taken where it applies), within `tolerance`.
void CheckAttention(int n_q, int n_kv, int n_head, int d_head, int causal_offset, uint32_t seed,
                    bool transposed_values = false, bool integer_products = false, double tolerance = 2e-5) {
  std::mt19937 rng(seed);
  const int d = n_head * d_head;
  const size_t ldq = d + 1, ldk = d + 2, ldv = d + 3, ldo = d;
  auto q = RandomVector(n_q * ldq, rng), k = RandomVector(n_kv * ldk, rng), v = RandomVector(n_kv * ldv, rng);
  std::vector<float> out(n_q * ldo, 0.0f), scratch(AttentionScratchSize(n_q, n_kv));
  AttentionArgs a = testutil::MakeAttentionArgs(n_q, n_kv, n_head, d_head, q.data(), ldq, k.data(), ldk, v.data(),
                                                ldv, out.data(), ldo, causal_offset);
  a.integer_products = integer_products;
  std::vector<float> v_t;
  if (transposed_values) {
    a.ld_vt = n_kv + 1;
    v_t.assign(static_cast<size_t>(d) * a.ld_vt, 0.0f);
    for (int j = 0; j < n_kv; ++j)
      for (int c = 0; c < d; ++c) v_t[c * a.ld_vt + j] = v[j * ldv + c];
    a.v_t = v_t.data();
    a.v = nullptr;
  }
  Attention(a, scratch.data());
  for (int h = 0; h < n_head; ++h)
    for (int i = 0; i < n_q; ++i) {
      const int n_valid = causal_offset < 0 ? n_kv : std::min(n_kv, causal_offset + i + 1);
      std::vector<double> s(n_valid);
      double mx = -1e300, z = 0;
      for (int j = 0; j < n_valid; ++j) {
        double acc = 0;
        for (int e = 0; e < d_head; ++e) acc += static_cast<double>(q[i * ldq + h * d_head + e]) * k[j * ldk + h * d_head + e];
        s[j] = acc / std::sqrt(static_cast<double>(d_head));
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) z += (x = std::exp(x - mx));
      for (int e = 0; e < d_head; ++e) {
        double acc = 0;
        for (int j = 0; j < n_valid; ++j) acc += s[j] / z * v[j * ldv + h * d_head + e];
        ASSERT_NEAR(out[i * ldo + h * d_head + e], acc, tolerance) << "h " << h << " i " << i << " e " << e;
      }
    }
}

TEST(KernelsAttention, FullAttention) { CheckAttention(7, 9, 3, 5, -1, 1); }
TEST(KernelsAttention, ManyQueriesSpanBlocks) { CheckAttention(70, 67, 2, 4, -1, 2); }
TEST(KernelsAttention, CausalChunkAfterCache) { CheckAttention(4, 10, 2, 3, 6, 3); }
TEST(KernelsAttention, CausalFromStart) { CheckAttention(69, 69, 1, 8, 0, 4); }
TEST(KernelsAttention, SingleKey) { CheckAttention(1, 1, 4, 2, -1, 5); }
TEST(KernelsAttention, TransposedValues) {
  CheckAttention(7, 9, 3, 5, -1, 1, true);
  CheckAttention(70, 67, 2, 64, -1, 2, true);
  CheckAttention(4, 10, 2, 3, 6, 3, true);
  CheckAttention(69, 69, 1, 8, 0, 4, true);
  CheckAttention(1, 1, 4, 2, -1, 5, true);
}

// The integer products (finely quantized operands) stay within 1.5e-3 of exact attention over values in
// [-1, 1]; where they do not apply (causal, d_head % 4 != 0) the float path runs, as exact as ever.
TEST(KernelsAttention, IntegerProductsNearExact) {
  CheckAttention(7, 9, 3, 8, -1, 1, false, true, 1.5e-3);
  CheckAttention(70, 67, 2, 64, -1, 2, false, true, 1.5e-3);
  CheckAttention(5, 257, 1, 64, -1, 3, false, true, 1.5e-3);
  CheckAttention(1, 1, 4, 4, -1, 4, false, true, 1.5e-3);
  CheckAttention(4, 10, 2, 4, 6, 5, false, true);   // causal: float path
  CheckAttention(7, 9, 3, 5, -1, 6, false, true);   // d_head 5: float path
}

// The SIMD integer path against its scalar reference, bit for bit: tails of queries (4-row tiles), keys (4-key
// blocks, odd counts, more than one 128-key chunk), dims; zero rows and columns, huge and tiny magnitudes.
TEST(KernelsAttention, IntegerProductsEqualScalarReference) {
  std::mt19937 rng(21);
  for (int d_head : {4, 8, 64})
    for (int n_q : {1, 3, 4, 5, 67})
      for (int n_kv : {1, 2, 3, 5, 130, 257}) {
        const int n_head = 2, d = n_head * d_head;
        const size_t ld = d + 3;
        auto q = RandomVector(n_q * ld, rng, 4.0f), k = RandomVector(n_kv * ld, rng, 4.0f),
             v = RandomVector(n_kv * ld, rng);
        if (n_q > 2) std::fill(q.begin() + ld, q.begin() + 2 * ld, 0.0f);        // a zero query row
        if (n_kv > 2) std::fill(k.begin(), k.begin() + ld, 0.0f);                 // a zero key row
        for (int j = 0; j < n_kv; ++j) v[j * ld + 1] = 0.0f;                      // a zero value column
        if (n_kv > 3) {
          for (size_t i = 2 * ld; i < 3 * ld; ++i) k[i] *= 1e4f;  // one key dominates
          for (int j = 0; j < n_kv; ++j) v[j * ld + 2] *= 1e-20f;  // a tiny value column
        }
        std::vector<float> got(n_q * d, -1.0f), want(n_q * d, -2.0f), scratch(AttentionScratchSize(n_q, n_kv));
        AttentionArgs a = testutil::MakeAttentionArgs(n_q, n_kv, n_head, d_head, q.data(), ld, k.data(), ld,
                                                      v.data(), ld, got.data(), static_cast<size_t>(d));
        a.integer_products = true;
        ASSERT_TRUE(IntegerAttentionApplies(a));
        Attention(a, scratch.data());
        a.out = want.data();
        AttentionIntegerReference(a);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << "d_head " << d_head << " n_q " << n_q << " n_kv " << n_kv << " at " << i;
        // Keys and values prepared once (the decoder's cross-attention), then queried: the same values.
        IntegerKeyValues kv;
        ASSERT_TRUE(kv.Prepare(n_kv, n_head, d_head, k.data(), ld, v.data(), ld));
        std::vector<float> prepared(n_q * d, -3.0f);
        a.out = prepared.data();
        a.k = a.v = nullptr;  // not read
        ASSERT_TRUE(AttentionIntegerPrepared(a, kv, 1));
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(prepared[i], want[i]) << "prepared: d_head " << d_head << " n_q " << n_q << " n_kv " << n_kv
                                          << " at " << i;
      }
}

TEST(KernelsAttention, PreparedKeysValuesRejectOtherShapes) {
  std::mt19937 rng(5);
  const int n_kv = 9, n_head = 2, d_head = 8, d = n_head * d_head;
  auto k = RandomVector(n_kv * d, rng), v = RandomVector(n_kv * d, rng), q = RandomVector(3 * d, rng);
  IntegerKeyValues kv;
  EXPECT_FALSE(kv.Prepare(n_kv, n_head, 6, k.data(), d, v.data(), d));  // d_head not a multiple of 4
  EXPECT_EQ(kv.bytes(), 0u);
  ASSERT_TRUE(kv.Prepare(n_kv, n_head, d_head, k.data(), d, v.data(), d));
  std::vector<float> out(3 * d);
  AttentionArgs a = testutil::MakeAttentionArgs(3, n_kv + 1, n_head, d_head, q.data(), d, nullptr, d, nullptr, d,
                                                out.data(), d);
  EXPECT_FALSE(AttentionIntegerPrepared(a, kv, 1));  // one key more than prepared
  a.n_kv = n_kv;
  a.causal_offset = 0;
  EXPECT_FALSE(AttentionIntegerPrepared(a, kv, 1));  // causal
  a.causal_offset = -1;
  EXPECT_TRUE(AttentionIntegerPrepared(a, kv, 1));
}

// The SIMD score kernel against its scalar reference, bit for bit, on tails of both the head dimension and
// the key count, with padded leading dimensions.
TEST(KernelsAttention, ScoresEqualScalarReference) {
  std::mt19937 rng(11);
  for (int d : {1, 3, 4, 7, 64}) {
    for (int n_q : {1, 2, 5}) {
      for (int n_k : {1, 3, 4, 9, 130, 261}) {
        const size_t ldq = d + 1, ldk = d + 3, lds = n_k + 2;
        auto q = RandomVector(n_q * ldq, rng), k = RandomVector(n_k * ldk, rng, 3.0f);
        std::vector<float> s(n_q * lds, 0.0f);
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        AttentionScores(n_q, n_k, d, q.data(), ldq, k.data(), ldk, scale, s.data(), lds);
        for (int i = 0; i < n_q; ++i)
          for (int j = 0; j < n_k; ++j) {
            const float ref = AttentionScoreReference(d, q.data() + i * ldq, k.data() + j * ldk, scale);
            ASSERT_EQ(s[i * lds + j], ref) << "d " << d << " n_q " << n_q << " n_k " << n_k << " at " << i << ","
                                           << j;
          }
      }
    }
  }
}

// A query's output does not depend on which other queries share its call (decoder beams and prompt chunks
// rely on it).
TEST(KernelsAttention, RowsAreIndependentOfBatch) {
  std::mt19937 rng(12);
  const int n_q = 67, n_kv = 75, n_head = 2, d_head = 64, d = n_head * d_head;
  auto q = RandomVector(n_q * d, rng), k = RandomVector(n_kv * d, rng), v = RandomVector(n_kv * d, rng);
  std::vector<float> v_t(static_cast<size_t>(d) * n_kv);
  for (int j = 0; j < n_kv; ++j)
    for (int c = 0; c < d; ++c) v_t[c * n_kv + j] = v[j * d + c];
  for (bool transposed_values : {false, true}) {
    std::vector<float> all(n_q * d), one(d), scratch(AttentionScratchSize(n_q, n_kv));
    AttentionArgs a =
        testutil::MakeAttentionArgs(n_q, n_kv, n_head, d_head, q.data(), d, k.data(), d, v.data(), d, all.data(), d);
    if (transposed_values) {
      a.v_t = v_t.data();
      a.ld_vt = n_kv;
    }
    Attention(a, scratch.data());
    for (int i = 0; i < n_q; i += 11) {
      a.n_q = 1;
      a.q = q.data() + static_cast<size_t>(i) * d;
      a.out = one.data();
      Attention(a, scratch.data());
      for (int e = 0; e < d; ++e)
        ASSERT_EQ(one[e], all[i * d + e]) << "query " << i << " column " << e << " v_t " << transposed_values;
    }
  }
}

}  // namespace
}  // namespace earshot
