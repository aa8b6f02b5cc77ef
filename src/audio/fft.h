// Small mixed-radix FFT for the sizes a front end needs (Whisper's n_fft = 400 = 2^4 * 5^2 is not a power of
// two). Radix-4/2/3/5 butterflies, a plain DFT for any other prime factor, so every size works; plans
// (factors and twiddles) are built once and reused for every frame.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

#include "core/status.h"

namespace earshot {

using Complex = std::complex<float>;

// Forward complex DFT: X[k] = sum_t x[t] * exp(-2*pi*i*t*k/n), unnormalised.
class ComplexFft {
 public:
  static constexpr size_t kMaxSize = size_t{1} << 20;
  static Expected<ComplexFft> Create(size_t n);

  size_t size() const { return n_; }
  // `in` and `out` hold size() values each and must not overlap.
  void Forward(const Complex* in, Complex* out) const;

  ComplexFft() = default;

 private:
  void Transform(const Complex* in, size_t in_stride, Complex* out, size_t level, size_t twiddle_stride) const;

  size_t n_ = 0;
  std::vector<size_t> factors_;     // n = product of factors_, outermost first
  std::vector<Complex> twiddles_;   // exp(-2*pi*i*j/n), j in [0, n)
};

// Forward DFT of real input: writes the n/2+1 non-redundant bins. Even sizes run a half-size complex FFT
// on interleaved pairs and split the result; odd sizes fall back to a full complex transform.
class RealFft {
 public:
  static Expected<RealFft> Create(size_t n);

  size_t size() const { return n_; }
  size_t bins() const { return n_ / 2 + 1; }
  // `in` holds size() samples, `out` receives bins() values. `scratch` is grown on demand so that callers
  // transforming many frames allocate once.
  void Forward(const float* in, Complex* out, std::vector<Complex>& scratch) const;

  RealFft() = default;

 private:
  size_t n_ = 0;
  ComplexFft inner_;               // size n/2 (even n) or n (odd n)
  std::vector<Complex> split_;     // exp(-2*pi*i*k/n), k in [0, n/2], for even n
};

}  // namespace earshot
