// Whisper's building blocks in plain double precision, read straight from a Model's tensors: the reference the
// encoder and decoder tests compare the engine's float kernels against.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/f16.h"
#include "model/model.h"

namespace earshot {
namespace doubleref {

using Mat = std::vector<double>;

inline std::vector<double> Read(const Model& m, const std::string& name) {
  const TensorRef* t = m.Find(name);
  EXPECT_NE(t, nullptr) << name;
  std::vector<double> v(static_cast<size_t>(t->numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t->dtype == DType::F32) {
      float f;
      std::memcpy(&f, t->data + 4 * i, 4);
      v[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, t->data + 2 * i, 2);
      v[i] = F16ToF32(h);
    }
  }
  return v;
}

inline Mat Lin(const Model& m, const std::string& p, const Mat& x, int n, bool bias = true) {
  const TensorRef* t = m.Find(p + ".weight");
  const int out = static_cast<int>(t->shape[0]), in = static_cast<int>(t->numel() / out);
  const auto w = Read(m, p + ".weight");
  std::vector<double> b = bias ? Read(m, p + ".bias") : std::vector<double>(out, 0.0);
  Mat y(static_cast<size_t>(n) * out);
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < out; ++o) {
      double acc = b[o];
      for (int i = 0; i < in; ++i) acc += x[r * in + i] * w[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

inline Mat Ln(const Model& m, const std::string& p, const Mat& x, int n, int d) {
  const auto g = Read(m, p + ".weight"), b = Read(m, p + ".bias");
  Mat y(x.size());
  for (int r = 0; r < n; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i) y[r * d + i] = (x[r * d + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
  }
  return y;
}

// Attention of n_q queries over n_kv keys; query i sees keys j <= i when causal.
inline Mat Attend(const Model& m, const std::string& p, const Mat& xq, int n_q, const Mat& xkv, int n_kv, int d, int heads,
           bool causal) {
  const Mat q = Lin(m, p + ".query", xq, n_q), k = Lin(m, p + ".key", xkv, n_kv, false),
            v = Lin(m, p + ".value", xkv, n_kv);
  const int dh = d / heads;
  Mat o(static_cast<size_t>(n_q) * d, 0.0);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < n_q; ++i) {
      const int n = causal ? i + 1 : n_kv;
      std::vector<double> s(n);
      double mx = -1e300, z = 0;
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int e = 0; e < dh; ++e) acc += q[i * d + h * dh + e] * k[j * d + h * dh + e];
        s[j] = acc / std::sqrt(static_cast<double>(dh));
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) z += (e = std::exp(e - mx));
      for (int j = 0; j < n; ++j)
        for (int e = 0; e < dh; ++e) o[i * d + h * dh + e] += s[j] / z * v[j * d + h * dh + e];
    }
  return Lin(m, p + ".out", o, n_q);
}

inline double Gelu(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }

}  // namespace doubleref
}  // namespace earshot
