#include "kernels/ops.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/vec4.h"

namespace earshot {
namespace {

// Sum in 8 interleaved partial sums (vectorisable, fixed order), then a fixed tree.
float SumLanes(const float* v, int n) {
  float lanes[8] = {};
  const int full = n / 8 * 8;
  for (int i = 0; i < full; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += v[i + l];
  for (int i = full; i < n; ++i) lanes[i - full] += v[i];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Largest value of v[0..n), NaNs skipped (as std::max(acc, v[i]) does), 4 lanes at a time: the maximum
// does not depend on the order, and compilers do not vectorise a float max reduction by themselves.
float MaxValue(const float* v, int n) {
  float m = -std::numeric_limits<float>::infinity();
  int i = 0;
  if (n >= 4) {
    F32x4 acc = SplatF32x4(m);
    for (; i + 4 <= n; i += 4) {
      const F32x4 x = LoadF32x4(v + i);
      acc = Select(x > acc, x, acc);
    }
    for (int l = 0; l < 4; ++l) m = std::max(m, acc[l]);
  }
  for (; i < n; ++i) m = std::max(m, v[i]);
  return m;
}

}  // namespace

void LayerNorm(const float* in, float* out, int rows, int dim, const float* gamma, const float* beta, float eps) {
  for (int r = 0; r < rows; ++r) {
    const float* x = in + static_cast<size_t>(r) * dim;
    float* y = out + static_cast<size_t>(r) * dim;
    // Double accumulation: cheap next to the matrix products and keeps long rows accurate.
    double sum = 0;
    for (int i = 0; i < dim; ++i) sum += x[i];
    const double mean = sum / dim;
    double sq = 0;
    for (int i = 0; i < dim; ++i) {
      const double d = x[i] - mean;
      sq += d * d;
    }
    const float inv_std = static_cast<float>(1.0 / std::sqrt(sq / dim + eps));
    const float mean_f = static_cast<float>(mean);
    for (int i = 0; i < dim; ++i) y[i] = (x[i] - mean_f) * inv_std * gamma[i] + beta[i];
  }
}

void GeluInPlace(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = Gelu(x[i]);
}

void SoftmaxRows(float* x, int rows, int n, size_t ld) {
  for (int r = 0; r < rows; ++r) {
    float* v = x + static_cast<size_t>(r) * ld;
    const float max_v = MaxValue(v, n);
    if (max_v == -std::numeric_limits<float>::infinity()) {
      std::fill(v, v + n, 0.0f);
      continue;
    }
    for (int i = 0; i < n; ++i) v[i] = FastExp(v[i] - max_v);
    const float inv = 1.0f / SumLanes(v, n);
    for (int i = 0; i < n; ++i) v[i] *= inv;
  }
}

void LogSoftmax(float* x, int n) {
  // Vocabulary-sized rows are cut into fixed chunks whose partial results are combined in chunk order: the cut
  // does not depend on the thread count, so neither does the result. Threads take whole chunks.
  constexpr int kChunk = 2048;
  constexpr int64_t kWorkPerElement = 16;  // an exp and a double add, against one multiply-add of a product
  const int chunks = (n + kChunk - 1) / kChunk;
  const int tasks = TaskCountFor(static_cast<int64_t>(n) * kWorkPerElement, chunks);
  auto for_chunks = [&](auto&& per_chunk) {
    ParallelFor(tasks, [&](int t) {
      const int c1 = static_cast<int>(static_cast<int64_t>(chunks) * (t + 1) / tasks);
      for (int c = static_cast<int>(static_cast<int64_t>(chunks) * t / tasks); c < c1; ++c)
        per_chunk(c, c * kChunk, std::min(n, (c + 1) * kChunk));
    });
  };
  std::vector<float> chunk_max(static_cast<size_t>(chunks), -std::numeric_limits<float>::infinity());
  for_chunks([&](int c, int i0, int i1) {
    float m = -std::numeric_limits<float>::infinity();
    for (int i = i0; i < i1; ++i) m = std::max(m, x[i]);
    chunk_max[static_cast<size_t>(c)] = m;
  });
  float max_v = -std::numeric_limits<float>::infinity();
  for (float m : chunk_max) max_v = std::max(max_v, m);
  if (max_v == -std::numeric_limits<float>::infinity()) return;
  // Vocabulary-sized sums: double keeps the normaliser accurate.
  std::vector<double> chunk_sum(static_cast<size_t>(chunks), 0.0);
  for_chunks([&](int c, int i0, int i1) {
    // The exponentials in blocks (a loop compilers vectorise), then the double sum in element order.
    constexpr int kBlock = 256;
    float e[kBlock];
    double sum = 0;
    for (int b = i0; b < i1; b += kBlock) {
      const int len = std::min(kBlock, i1 - b);
      for (int j = 0; j < len; ++j) e[j] = FastExp(x[b + j] - max_v);
      for (int j = 0; j < len; ++j) sum += e[j];
    }
    chunk_sum[static_cast<size_t>(c)] = sum;
  });
  double sum = 0;
  for (double s : chunk_sum) sum += s;
  const float log_z = max_v + static_cast<float>(std::log(sum));
  for_chunks([&](int, int i0, int i1) {
    for (int i = i0; i < i1; ++i) x[i] -= log_z;
  });
}

void Im2ColK3(const float* in, int channels, int n_in, size_t stride_c, size_t stride_t, int stride, float* cols) {
  const int n_out = Conv1dK3OutputLength(n_in, stride);
  const size_t width = static_cast<size_t>(channels) * 3;
  for (int t = 0; t < n_out; ++t) {
    float* row = cols + static_cast<size_t>(t) * width;
    for (int k = 0; k < 3; ++k) {
      const int src = t * stride + k - 1;
      if (src < 0 || src >= n_in) {
        for (int c = 0; c < channels; ++c) row[c * 3 + k] = 0.0f;
      } else {
        const float* base = in + static_cast<size_t>(src) * stride_t;
        for (int c = 0; c < channels; ++c) row[c * 3 + k] = base[c * stride_c];
      }
    }
  }
}

}  // namespace earshot
