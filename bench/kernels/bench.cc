// Quantized kernel micro-benchmark: GOP/s (2 * M * N * K per product) of the float GEMM, the scalar int8/int4
// reference and the best SIMD kernels at the real shapes of the default model (d 256, vocab 1024) and of
// Whisper tiny.en / base.en (d 384 / 512), one thread, with ratios. Built natively and to WebAssembly by run.sh.
//
// Shapes: encoder products have M = 1500 rows (a 30-s window; conv1 runs at 3000 frames), decoder products
// M = 1 (greedy, GEMV-shaped) and M = 5 (five beams). Weights are random; each product is timed for --seconds
// (default 0.3) in samples of >= 2 ms, keeping the fastest sample.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/f16.h"
#include "kernels/gemm.h"
#include "kernels/qgemm.h"

namespace {

using namespace earshot;
using Clock = std::chrono::steady_clock;

double g_min_seconds = 0.3;

struct Shape {
  std::string name;
  int M, N, K;
};

struct ModelShapes {
  std::string name;
  int d, vocab;
};

struct QMatrix {
  AlignedBuffer data, scales;
  QWeights view;
};

QMatrix MakeQMatrix(DType dtype, int N, int K, int group, std::mt19937* gen) {
  QMatrix m;
  m.data = AlignedBuffer(QPackedBytes(dtype, N, K));
  if (dtype == DType::I8) {
    std::vector<int8_t> w(static_cast<size_t>(N) * K);
    for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>((*gen)() % 255) - 127);
    PackQ8(w.data(), N, K, m.data.data());
    m.scales = AlignedBuffer(static_cast<size_t>(N) * 4);
    for (int n = 0; n < N; ++n) {
      const float s = 0.01f;
      std::memcpy(m.scales.data() + 4 * n, &s, 4);
    }
  } else {
    std::vector<uint8_t> w(static_cast<size_t>(N) * K / 2);
    for (uint8_t& v : w) v = static_cast<uint8_t>((*gen)());
    PackQ4(w.data(), N, K, m.data.data());
    m.scales = AlignedBuffer(static_cast<size_t>(N) * (K / group) * 2);
    for (size_t i = 0; i < static_cast<size_t>(N) * (K / group); ++i) {
      const uint16_t h = F32ToF16(0.02f);
      std::memcpy(m.scales.data() + 2 * i, &h, 2);
    }
  }
  m.view.dtype = dtype;
  m.view.rows = N;
  m.view.cols = K;
  m.view.padded_cols = QPaddedCols(dtype, K);
  m.view.group_size = dtype == DType::I4 ? group : 0;
  m.view.data = m.data.data();
  m.view.scales = m.scales.data();
  return m;
}

// Seconds per call: samples of `reps` calls (enough for >= 2 ms each) are taken for g_min_seconds in all and
// the fastest sample counts. On a shared machine the fastest sample is the one least disturbed by other load.
template <class Fn>
double Time(Fn fn) {
  fn();  // warm up
  int reps = 1;
  for (;;) {
    const auto start = Clock::now();
    for (int r = 0; r < reps; ++r) fn();
    if (std::chrono::duration<double>(Clock::now() - start).count() >= 0.002 || reps >= (1 << 20)) break;
    reps *= 2;
  }
  double best = 1e30, total = 0;
  int samples = 0;
  while (total < g_min_seconds || samples < 3) {
    const auto start = Clock::now();
    for (int r = 0; r < reps; ++r) fn();
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, t / reps);
    total += t;
    ++samples;
  }
  return best;
}

double Gops(const Shape& s, double seconds) { return 2.0 * s.M * s.N * s.K / seconds * 1e-9; }

void RunShape(const Shape& s, const QGemmKernel& simd, const QGemmKernel& ref) {
  std::mt19937 gen(1234);
  std::vector<float> x(static_cast<size_t>(s.M) * s.K), y(static_cast<size_t>(s.M) * s.N);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : x) v = dist(gen);
  std::vector<float> wf(static_cast<size_t>(s.N) * s.K);
  for (float& v : wf) v = 0.05f * dist(gen);
  QMatrix q8 = MakeQMatrix(DType::I8, s.N, s.K, 0, &gen);
  const bool i4_ok = s.K % 32 == 0;
  QMatrix q4 = i4_ok ? MakeQMatrix(DType::I4, s.N, s.K, 32, &gen) : QMatrix();

  const double f32 = Gops(s, Time([&] { GemmF32(s.M, s.N, s.K, x.data(), s.K, wf.data(), s.K, y.data(), s.N); }));
  // The scalar reference is slow: time it on at most 8 rows (its cost is linear in M).
  Shape small = s;
  small.M = std::min(s.M, 8);
  const double ref8 = Gops(small, Time([&] {
    (void)QGemm(small.M, x.data(), s.K, q8.view, y.data(), s.N, {}, &ref);
  }));
  const double simd8 = Gops(s, Time([&] { (void)QGemm(s.M, x.data(), s.K, q8.view, y.data(), s.N, {}, &simd); }));
  double simd4 = 0;
  if (i4_ok) simd4 = Gops(s, Time([&] { (void)QGemm(s.M, x.data(), s.K, q4.view, y.data(), s.N, {}, &simd); }));
  char i4_text[32] = "     -";
  if (i4_ok) std::snprintf(i4_text, sizeof i4_text, "%6.1f", simd4);
  std::printf("  %-16s %5d %5d %5d | %6.1f %6.2f %6.1f %s | %5.1fx %5.1fx\n", s.name.c_str(), s.M, s.N, s.K, f32, ref8,
              simd8, i4_text, simd8 / ref8, simd8 / f32);
}

// Encoder self-attention over a 30-s window (1500 positions, heads of 64): float products against integer
// products (what quantized models use). GOP/s counts the two products, 4 * n^2 * d.
void RunAttention(int d, int n) {
  std::mt19937 gen(99);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(n) * d), k(q.size()), v(q.size()), out(q.size());
  for (auto* t : {&q, &k, &v})
    for (float& x : *t) x = 3.0f * dist(gen);
  std::vector<float> scratch(AttentionScratchSize(n, n));
  AttentionArgs a;
  a.n_q = a.n_kv = n;
  a.n_head = d / 64;
  a.d_head = 64;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.ldq = a.ldk = a.ldv = a.ldo = static_cast<size_t>(d);
  a.out = out.data();
  const double ops = 4.0 * n * n * d * 1e-9;
  const double f32 = ops / Time([&] { Attention(a, scratch.data()); });
  a.integer_products = true;
  const double i16 = ops / Time([&] { Attention(a, scratch.data()); });
  std::printf("  %-16s %5d %5d %5d | %6.1f %6s %6.1f %6s | %6s %5.1fx   (int8 column: integer attention)\n",
              "enc attention", n, n, d, f32, "-", i16, "-", "-", i16 / f32);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) g_min_seconds = std::atof(argv[++i]);
  }
  if (quick) g_min_seconds = 0.1;
  const std::vector<QGemmKernel> kernels = AvailableQGemmKernels();
  const QGemmKernel& ref = kernels.front();
  const QGemmKernel& simd = kernels.back();
#if defined(__EMSCRIPTEN__)
  const char* target = "wasm";
#else
  const char* target = "native";
#endif
  std::printf("earshot quantized kernels, %s, kernel '%s', one thread; GOP/s = 2*M*N*K / time\n", target, simd.name);
  std::printf("  %-16s %5s %5s %5s | %6s %6s %6s %6s | %6s %6s\n", "product", "M", "N", "K", "f32", "ref8", "int8",
              "int4", "i8/ref", "i8/f32");
  std::vector<ModelShapes> models = {{"earshot-default", 256, 1024}, {"whisper-tiny.en", 384, 51864},
                                     {"whisper-base.en", 512, 51864}};
  if (quick) models.resize(1);
  for (const ModelShapes& m : models) {
    std::printf("%s (d %d, vocab %d)\n", m.name.c_str(), m.d, m.vocab);
    const int d = m.d;
    std::vector<Shape> shapes = {
        {"enc conv1", 3000, d, 80 * 3},  {"enc conv2", 1500, d, 3 * d}, {"enc attn proj", 1500, d, d},
        {"enc mlp.0", 1500, 4 * d, d},   {"enc mlp.2", 1500, d, 4 * d}, {"dec proj x1", 1, d, d},
        {"dec mlp.0 x1", 1, 4 * d, d},   {"dec mlp.2 x1", 1, d, 4 * d}, {"dec logits x1", 1, m.vocab, d},
        {"dec proj x5", 5, d, d},        {"dec mlp.0 x5", 5, 4 * d, d}, {"dec logits x5", 5, m.vocab, d},
    };
    if (quick) shapes = {{"enc mlp.0", 1500, 4 * d, d}, {"dec mlp.0 x1", 1, 4 * d, d}};
    for (const Shape& s : shapes) RunShape(s, simd, ref);
    RunAttention(d, 1500);
  }
  return 0;
}
