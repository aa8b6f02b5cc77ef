// Quantized kernels: every SIMD kernel this build runs must equal the scalar reference bit for bit (random and
// adversarial shapes and values, every epilogue), and the reference must approximate the float product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/f16.h"
#include "kernels/gemm.h"
#include "kernels/qgemm.h"

namespace earshot {
namespace {

class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  float Uniform() { return static_cast<float>(gen_() >> 8) * (2.0f / 16777216.0f) - 1.0f; }
  int Int(int lo, int hi) { return lo + static_cast<int>(gen_() % static_cast<uint32_t>(hi - lo + 1)); }

 private:
  std::mt19937 gen_;
};

// A quantized matrix built from explicit integer values and scales, in the packed layout.
struct TestMatrix {
  DType dtype = DType::I8;
  int rows = 0, cols = 0, group_size = 0;
  std::vector<int> values;  // [rows, cols]
  AlignedBuffer data, scales;
  QWeights view;
};

// kOddScales: scales with any sign and exponent below 15 (subnormals included), in every dtype's storage.
enum class WeightPattern { kRandom, kExtreme, kZeroRows, kOddScales };

TestMatrix MakeMatrix(DType dtype, int rows, int cols, int group_size, WeightPattern pattern, Rng* rng) {
  TestMatrix m;
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  m.group_size = dtype == DType::I4 ? group_size : 0;
  const int lo = dtype == DType::I4 ? -8 : -128, hi = dtype == DType::I4 ? 7 : 127;
  m.values.resize(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      int v = rng->Int(lo, hi);
      if (pattern == WeightPattern::kExtreme) v = (r + c) % 3 == 0 ? hi : lo;
      if (pattern == WeightPattern::kZeroRows && r % 2 == 1) v = 0;
      m.values[static_cast<size_t>(r) * cols + c] = v;
    }
  }
  m.data = AlignedBuffer(QPackedBytes(dtype, rows, cols));
  if (dtype == DType::I8) {
    std::vector<int8_t> plain(m.values.begin(), m.values.end());
    PackQ8(plain.data(), rows, cols, m.data.data());
    m.scales = AlignedBuffer(static_cast<size_t>(rows) * 4);
    for (int r = 0; r < rows; ++r) {
      float s = 0.001f + 0.05f * std::fabs(rng->Uniform());
      if (pattern == WeightPattern::kOddScales) s = (r % 2 ? -1e-40f : 3e-39f) * (1.0f + rng->Uniform());
      std::memcpy(m.scales.data() + 4 * r, &s, 4);
    }
  } else {
    std::vector<uint8_t> plain(m.values.size() / 2, 0);
    for (size_t i = 0; i < m.values.size(); ++i)
      plain[i / 2] |= static_cast<uint8_t>((m.values[i] & 0xF) << (i % 2 ? 4 : 0));
    PackQ4(plain.data(), rows, cols, m.data.data());
    const int groups = cols / group_size;
    m.scales = AlignedBuffer(static_cast<size_t>(rows) * groups * 2 + 16);
    for (int i = 0; i < rows * groups; ++i) {
      uint16_t h = F32ToF16(0.001f + 0.05f * std::fabs(rng->Uniform()));
      if (pattern == WeightPattern::kOddScales) {
        const int exponent = i % 3 == 0 ? 0 : rng->Int(0, 14);
        h = static_cast<uint16_t>((rng->Int(0, 1) << 15) | (exponent << 10) | rng->Int(0, 1023));
      }
      std::memcpy(m.scales.data() + 2 * i, &h, 2);
    }
  }
  m.view.dtype = dtype;
  m.view.rows = rows;
  m.view.cols = cols;
  m.view.padded_cols = QPaddedCols(dtype, cols);
  m.view.group_size = m.group_size;
  m.view.data = m.data.data();
  m.view.scales = m.scales.data();
  return m;
}

enum class ActivationPattern { kRandom, kZeroRows, kHuge, kTiny, kOneHot };

std::vector<float> MakeActivations(int rows, int cols, size_t ldx, ActivationPattern pattern, Rng* rng) {
  std::vector<float> x(rows * ldx, 0.0f);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      float v = 3.0f * rng->Uniform();
      switch (pattern) {
        case ActivationPattern::kRandom: break;
        case ActivationPattern::kZeroRows: v = r % 2 == 0 ? 0.0f : v; break;
        case ActivationPattern::kHuge: v *= 1e30f; break;
        case ActivationPattern::kTiny: v *= 1e-30f; break;
        case ActivationPattern::kOneHot: v = c == r % cols ? -7.5f : 0.0f; break;
      }
      x[r * ldx + c] = v;
    }
  }
  return x;
}

// Runs QGemm with `kernel`; y starts as the residual when the epilogue asks for an in-place residual add.
std::vector<float> Run(const QGemmKernel& kernel, int M, const std::vector<float>& x, size_t ldx, const QWeights& w,
                       const std::vector<float>& bias, bool gelu, bool residual, const std::vector<float>& y0) {
  const size_t ldy = static_cast<size_t>(w.rows) + 3;
  std::vector<float> y = y0;
  y.resize(M * ldy, 0.0f);
  GemmEpilogue ep;
  ep.bias = bias.empty() ? nullptr : bias.data();
  ep.gelu = gelu;
  if (residual) {
    ep.residual = y.data();
    ep.ld_residual = ldy;
  }
  EXPECT_TRUE(QGemm(M, x.data(), ldx, w, y.data(), ldy, ep, &kernel).ok());
  return y;
}

void ExpectBitEqual(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t ba, bb;
    std::memcpy(&ba, &a[i], 4);
    std::memcpy(&bb, &b[i], 4);
    if (ba != bb) {
      ADD_FAILURE() << what << ": element " << i << " differs: " << a[i] << " vs " << b[i];
      return;
    }
  }
}

// Compares every SIMD kernel with the reference on one configuration.
void CompareKernels(DType dtype, int M, int N, int K, int group, WeightPattern wp, ActivationPattern ap,
                    uint32_t seed) {
  Rng rng(seed);
  TestMatrix w = MakeMatrix(dtype, N, K, group, wp, &rng);
  const size_t ldx = static_cast<size_t>(K) + (seed % 3);
  std::vector<float> x = MakeActivations(M, K, ldx, ap, &rng);
  std::vector<float> bias(N);
  for (float& b : bias) b = 0.5f * rng.Uniform();
  const size_t ldy = static_cast<size_t>(N) + 3;
  std::vector<float> y0(M * ldy);
  for (float& v : y0) v = rng.Uniform();
  const std::vector<QGemmKernel> kernels = AvailableQGemmKernels();
  for (int variant = 0; variant < 4; ++variant) {
    const bool use_bias = variant & 1, gelu = variant >= 2, residual = variant == 3;
    const std::vector<float> b = use_bias ? bias : std::vector<float>();
    const std::vector<float> want = Run(kernels[0], M, x, ldx, w.view, b, gelu, residual, y0);
    for (size_t i = 1; i < kernels.size(); ++i) {
      const std::string what = std::string(kernels[i].name) + " " + DTypeName(dtype) + " M=" + std::to_string(M) +
                               " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                               " group=" + std::to_string(group) + " variant=" + std::to_string(variant) +
                               " seed=" + std::to_string(seed);
      ExpectBitEqual(Run(kernels[i], M, x, ldx, w.view, b, gelu, residual, y0), want, what);
    }
  }
}

TEST(QGemmTest, ListsReferenceFirstAndASimdKernel) {
  const std::vector<QGemmKernel> kernels = AvailableQGemmKernels();
  ASSERT_GE(kernels.size(), 1u);
  EXPECT_STREQ(kernels[0].name, "reference");
#if defined(__wasm_simd128__) || defined(__SSE4_1__)
  EXPECT_GE(kernels.size(), 2u) << "this build should have a SIMD kernel";
#endif
}

TEST(QGemmTest, PackingRoundTrips) {
  Rng rng(7);
  for (DType dtype : {DType::I8, DType::I4}) {
    for (int rows : {1, 3, 4, 5, 9}) {
      for (int cols : {2, 16, 30, 32, 34, 66}) {
        TestMatrix m = MakeMatrix(dtype, rows, cols, 2, WeightPattern::kRandom, &rng);
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c)
            ASSERT_EQ(QWeightAt(m.view, r, c), m.values[r * cols + c]) << DTypeName(dtype) << " " << r << "," << c;
        // Padding is zero, so kernels may read whole tiles: the only nonzero bytes hold nonzero values.
        size_t nonzero_bytes = 0, nonzero_values = 0;
        for (size_t i = 0; i < QPackedBytes(dtype, rows, cols); ++i) nonzero_bytes += m.data.data()[i] != 0;
        for (int v : m.values) nonzero_values += v != 0;
        EXPECT_LE(nonzero_bytes, nonzero_values);
      }
    }
  }
}

TEST(QGemmTest, ActivationQuantizationRounding) {
  // max |x| = 127 makes inv exactly 1: halves round to even, clamp to +-127.
  const float x[8] = {127.0f, -0.5f, 0.5f, 1.5f, 2.5f, -2.5f, -127.0f, 126.5f};
  int16_t q[32];
  const float s = QuantizeActivationRow(x, 8, 32, q);
  EXPECT_EQ(s, 1.0f);
  const int want[8] = {127, 0, 0, 2, 2, -2, -127, 126};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q[i], want[i]) << i;
  for (int i = 8; i < 32; ++i) EXPECT_EQ(q[i], 0);

  const float zeros[5] = {0, -0.0f, 0, 0, 0};
  EXPECT_EQ(QuantizeActivationRow(zeros, 5, 32, q), 0.0f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], 0);

  const float with_nan[3] = {std::numeric_limits<float>::quiet_NaN(), 2.0f, -1.0f};
  EXPECT_EQ(QuantizeActivationRow(with_nan, 3, 32, q), 2.0f / 127.0f);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 127);
  EXPECT_EQ(q[2], -64);  // -63.5 rounds to even
}

TEST(QGemmTest, SimdMatchesReferenceI8SmallShapes) {
  uint32_t seed = 1;
  // M < 4 and M >= 4 take different tile shapes (1 row x 4 row blocks, 4 rows x 2 row blocks); N covers partial
  // row blocks and partial groups of them.
  for (int M : {1, 2, 3, 4, 5, 9})
    for (int N : {1, 3, 4, 5, 8, 9, 12, 17, 23})
      for (int K : {1, 7, 8, 15, 16, 17, 33, 64})
        CompareKernels(DType::I8, M, N, K, 0, WeightPattern::kRandom, ActivationPattern::kRandom, seed++);
}

TEST(QGemmTest, SimdMatchesReferenceI4SmallShapes) {
  uint32_t seed = 100;
  for (int M : {1, 2, 3, 4, 6})
    for (int N : {1, 4, 6, 9, 17})
      for (int group : {2, 16, 32, 64})
        for (int groups : {1, 2, 3}) {
          CompareKernels(DType::I4, M, N, group * groups, group, WeightPattern::kRandom, ActivationPattern::kRandom,
                         seed++);
        }
}

TEST(QGemmTest, SimdMatchesReferenceAdversarial) {
  uint32_t seed = 500;
  for (DType dtype : {DType::I8, DType::I4}) {
    for (WeightPattern wp : {WeightPattern::kRandom, WeightPattern::kExtreme, WeightPattern::kZeroRows,
                             WeightPattern::kOddScales}) {
      for (ActivationPattern ap : {ActivationPattern::kRandom, ActivationPattern::kZeroRows, ActivationPattern::kHuge,
                                   ActivationPattern::kTiny, ActivationPattern::kOneHot}) {
        CompareKernels(dtype, 5, 7, 64, 32, wp, ap, seed++);
      }
    }
  }
}

TEST(QGemmTest, SimdMatchesReferenceLargerShapes) {
  // Beyond one activation row block (64 rows), several groups, odd row counts.
  CompareKernels(DType::I8, 67, 37, 240, 0, WeightPattern::kRandom, ActivationPattern::kRandom, 900);
  CompareKernels(DType::I4, 67, 37, 256, 32, WeightPattern::kRandom, ActivationPattern::kRandom, 901);
  CompareKernels(DType::I4, 3, 13, 320, 64, WeightPattern::kExtreme, ActivationPattern::kHuge, 902);
  // Wide rows: the weights are swept in several column ranges (96 KiB each).
  CompareKernels(DType::I8, 3, 37, 4096, 0, WeightPattern::kRandom, ActivationPattern::kRandom, 903);
  CompareKernels(DType::I4, 2, 61, 4096, 32, WeightPattern::kRandom, ActivationPattern::kRandom, 904);
}

TEST(QGemmTest, PackedByteOrderIsTheDocumentedOne) {
  // qgemm.h: I8 element (r, k) of a tile at byte 8 (k / 2) + 2 r + k % 2; I4 the same over k % 16, low nibble
  // for k % 32 < 16. Values encode their position so that every byte is checked.
  const int rows = 5, cols = 40;
  std::vector<int8_t> w8(rows * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) w8[r * cols + c] = static_cast<int8_t>(r * 50 + c - 100);
  std::vector<uint8_t> p8(QPackedBytes(DType::I8, rows, cols));
  PackQ8(w8.data(), rows, cols, p8.data());
  const size_t stride8 = 4 * 48;  // a row block: 4 rows x 48 padded columns
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int k = c % 16;
      const size_t at = (r / 4) * stride8 + (c / 16) * 64 + 8 * (k / 2) + 2 * (r % 4) + k % 2;
      ASSERT_EQ(static_cast<int8_t>(p8[at]), w8[r * cols + c]) << r << "," << c;
    }
  std::vector<uint8_t> nibbles(rows * cols / 2, 0);
  for (int i = 0; i < rows * cols; ++i) nibbles[i / 2] |= static_cast<uint8_t>((i * 7 % 16) << (i % 2 ? 4 : 0));
  std::vector<uint8_t> p4(QPackedBytes(DType::I4, rows, cols));
  PackQ4(nibbles.data(), rows, cols, p4.data());
  const size_t stride4 = 4 * 64 / 2;  // 4 rows x 64 padded columns, two a byte
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int i = r * cols + c, k = c % 32 % 16;
      const size_t at = (r / 4) * stride4 + (c / 32) * 64 + 8 * (k / 2) + 2 * (r % 4) + k % 2;
      const int got = (c % 32 < 16 ? p4[at] : p4[at] >> 4) & 0xF;
      ASSERT_EQ(got, i * 7 % 16) << r << "," << c;
    }
}

TEST(QGemmTest, ExtremeSumsDoNotOverflow) {
  // All weights -128 and all activations at -127: the largest sums, exactly representable.
  Rng rng(3);
  const int K = 4096, N = 4;
  TestMatrix w = MakeMatrix(DType::I8, N, K, 0, WeightPattern::kRandom, &rng);
  std::vector<int8_t> plain(static_cast<size_t>(N) * K, -128);
  PackQ8(plain.data(), N, K, w.data.data());
  const float one = 1.0f;
  for (int r = 0; r < N; ++r) std::memcpy(w.scales.data() + 4 * r, &one, 4);
  std::vector<float> x(K, -127.0f);
  for (const QGemmKernel& kernel : AvailableQGemmKernels()) {
    std::vector<float> y(N);
    ASSERT_TRUE(QGemm(1, x.data(), K, w.view, y.data(), N, {}, &kernel).ok());
    for (int n = 0; n < N; ++n) EXPECT_EQ(y[n], 127.0f * 128.0f * K) << kernel.name;
  }
}

TEST(QGemmTest, ReferenceApproximatesFloatProduct) {
  // Quantization error only: |y_q - y_f| is bounded by the activation rounding (half a step per element).
  Rng rng(11);
  for (DType dtype : {DType::I8, DType::I4}) {
    const int M = 3, N = 5, K = 128;
    TestMatrix w = MakeMatrix(dtype, N, K, 32, WeightPattern::kRandom, &rng);
    std::vector<float> wf(static_cast<size_t>(N) * K);
    for (int n = 0; n < N; ++n) DequantizeQRow(w.view, n, &wf[static_cast<size_t>(n) * K]);
    std::vector<float> x = MakeActivations(M, K, K, ActivationPattern::kRandom, &rng);
    std::vector<float> yf(M * N), yq(M * N);
    GemmF32(M, N, K, x.data(), K, wf.data(), K, yf.data(), N);
    ASSERT_TRUE(QGemm(M, x.data(), K, w.view, yq.data(), N, {}, &ReferenceQGemmKernel()).ok());
    for (int m = 0; m < M; ++m) {
      float max_abs = 0;
      for (int k = 0; k < K; ++k) max_abs = std::fmax(max_abs, std::fabs(x[m * K + k]));
      for (int n = 0; n < N; ++n) {
        float w_abs = 0;
        for (int k = 0; k < K; ++k) w_abs += std::fabs(wf[n * K + k]);
        const float bound = 0.5f * max_abs / 127.0f * w_abs * 1.001f + 1e-5f;
        EXPECT_NEAR(yq[m * N + n], yf[m * N + n], bound) << DTypeName(dtype) << " " << m << "," << n;
      }
    }
  }
}

TEST(QGemmTest, RepackMatchesPlainTensor) {
  Rng rng(5);
  const int rows = 6, cols = 48;
  std::vector<uint8_t> plain(rows * cols);
  for (uint8_t& b : plain) b = static_cast<uint8_t>(rng.Int(0, 255));
  std::vector<uint8_t> scales(rows * 4 + 16, 0);
  for (DType dtype : {DType::I8, DType::I4}) {
    // Distinct scales, to check where each (row, group) lands: I8 f32 [rows], I4 f16 [rows, 3 groups].
    for (int i = 0; i < rows * (dtype == DType::I4 ? 3 : 1); ++i) {
      const float v = static_cast<float>(i + 1);
      if (dtype == DType::I4) {
        const uint16_t h = F32ToF16(v);
        std::memcpy(&scales[2 * i], &h, 2);
      } else {
        std::memcpy(&scales[4 * i], &v, 4);
      }
    }
    TensorRef t;
    t.name = "w";
    t.dtype = dtype;
    t.shape = {rows, cols};
    t.group_size = dtype == DType::I4 ? 16 : 0;
    t.data = plain.data();
    t.nbytes = dtype == DType::I4 ? plain.size() / 2 : plain.size();
    t.scales = scales.data();
    t.scales_nbytes = dtype == DType::I4 ? rows * 3 * 2 : rows * 4;
    AlignedBuffer storage;
    auto packed = RepackQuantizedTensor(t, &storage);
    ASSERT_TRUE(packed.ok()) << packed.status().message();
    auto view = QWeightsFromTensor(*packed, rows, cols);
    ASSERT_TRUE(view.ok()) << view.status().message();
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r) * cols + c;
        int want = dtype == DType::I8 ? static_cast<int8_t>(plain[i])
                                      : static_cast<int>(((i % 2 ? plain[i / 2] >> 4 : plain[i / 2]) & 0xF) ^ 8) - 8;
        ASSERT_EQ(QWeightAt(*view, r, c), want) << DTypeName(dtype) << " " << r << "," << c;
      }
      const int groups = dtype == DType::I4 ? 3 : 1;
      for (int g = 0; g < groups; ++g) EXPECT_EQ(QWeightScale(*view, r, g), static_cast<float>(r * groups + g + 1));
    }
    EXPECT_FALSE(QWeightsFromTensor(t, rows, cols).ok()) << "plain layout must be refused by the kernels";
  }
}

}  // namespace
}  // namespace earshot

namespace earshot {
namespace {

// FNV-1a over the bits of the best kernel's outputs on fixed data (every epilogue step included). The same
// constants are expected natively and in WebAssembly: the kernels agree across builds bit for bit, not only
// with their own build's reference.
uint64_t OutputHash(DType dtype, int M, int N, int K, int group, uint32_t seed) {
  Rng rng(seed);
  TestMatrix w = MakeMatrix(dtype, N, K, group, WeightPattern::kRandom, &rng);
  std::vector<float> x = MakeActivations(M, K, K, ActivationPattern::kRandom, &rng);
  std::vector<float> bias(N);
  for (float& b : bias) b = 0.5f * rng.Uniform();
  std::vector<float> y(static_cast<size_t>(M) * N);
  for (float& v : y) v = rng.Uniform();
  GemmEpilogue ep;
  ep.bias = bias.data();
  ep.gelu = true;
  ep.residual = y.data();
  ep.ld_residual = N;
  EXPECT_TRUE(QGemm(M, x.data(), K, w.view, y.data(), N, ep).ok());
  uint64_t h = 1469598103934665603ull;
  for (float v : y) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) h = (h ^ ((bits >> (8 * i)) & 0xFF)) * 1099511628211ull;
  }
  return h;
}

TEST(QGemmTest, SameBitsInEveryBuild) {
  EXPECT_EQ(OutputHash(DType::I8, 9, 13, 200, 0, 41), 13937064403281892060ull) << "I8";
  EXPECT_EQ(OutputHash(DType::I4, 9, 13, 256, 32, 42), 17381390403189174981ull) << "I4 g32";
  EXPECT_EQ(OutputHash(DType::I4, 5, 6, 192, 64, 43), 184314961900935665ull) << "I4 g64";
  EXPECT_EQ(OutputHash(DType::I4, 3, 5, 48, 16, 44), 110532934710693238ull) << "I4 g16 (reference path)";
}

}  // namespace
}  // namespace earshot
