#include "audio/fft.h"

#include <cmath>
#include <string>

namespace earshot {
namespace {

// A plain DFT handles prime factors without a dedicated butterfly; its cost grows with the square of the
// factor, so large primes (only reachable through odd settings in a model file) are refused.
constexpr size_t kMaxPrimeFactor = 97;

Complex TimesMinusI(Complex z) { return {z.imag(), -z.real()}; }

// Plain complex product: std::complex's operator* adds NaN/Inf recovery (a libcall) that finite data never needs.
inline Complex Mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

std::vector<size_t> Factorize(size_t n) {
  std::vector<size_t> factors;
  while (n % 4 == 0) { factors.push_back(4); n /= 4; }
  while (n % 2 == 0) { factors.push_back(2); n /= 2; }
  for (size_t d = 3; d * d <= n; d += 2) {
    while (n % d == 0) { factors.push_back(d); n /= d; }
  }
  if (n > 1) factors.push_back(n);
  return factors;
}

}  // namespace

Expected<ComplexFft> ComplexFft::Create(size_t n) {
  if (n == 0) return Status::Error("FFT size must be positive");
  if (n > kMaxSize) {
    return Status::Error("FFT size " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxSize));
  }
  ComplexFft fft;
  fft.n_ = n;
  fft.factors_ = Factorize(n);
  for (size_t f : fft.factors_) {
    if (f > kMaxPrimeFactor) {
      return Status::Error("FFT size " + std::to_string(n) + " has the prime factor " + std::to_string(f) +
                           "; factors above " + std::to_string(kMaxPrimeFactor) + " are not supported");
    }
  }
  fft.twiddles_.resize(n);
  const double kTwoPi = 6.283185307179586476925286766559;
  for (size_t j = 0; j < n; ++j) {
    double angle = -kTwoPi * static_cast<double>(j) / static_cast<double>(n);
    fft.twiddles_[j] = Complex(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  }
  return fft;
}

void ComplexFft::Forward(const Complex* in, Complex* out) const {
  if (n_ == 1) {
    out[0] = in[0];
    return;
  }
  Transform(in, 1, out, 0, 1);
}

// Decimation in time: a transform of size p*m is p interleaved transforms of size m (written to consecutive
// blocks of `out`), combined in place by size-p butterflies after twiddling.
void ComplexFft::Transform(const Complex* in, size_t in_stride, Complex* out, size_t level,
                           size_t twiddle_stride) const {
  const size_t p = factors_[level];
  const size_t current = n_ / twiddle_stride;  // size of this sub-transform
  const size_t m = current / p;
  if (m == 1) {
    for (size_t r = 0; r < p; ++r) out[r] = in[r * in_stride];
  } else {
    for (size_t r = 0; r < p; ++r) {
      Transform(in + r * in_stride, in_stride * p, out + r * m, level + 1, twiddle_stride * p);
    }
  }

  // W_current^x lives at twiddles_[x * twiddle_stride].
  const Complex* tw = twiddles_.data();
  switch (p) {
    case 2:
      for (size_t k = 0; k < m; ++k) {
        Complex t0 = out[k];
        Complex t1 = Mul(out[m + k], tw[k * twiddle_stride]);
        out[k] = t0 + t1;
        out[m + k] = t0 - t1;
      }
      break;
    case 3: {
      const float half_sqrt3 = 0.86602540378443864676f;
      for (size_t k = 0; k < m; ++k) {
        Complex t0 = out[k];
        Complex t1 = Mul(out[m + k], tw[k * twiddle_stride]);
        Complex t2 = Mul(out[2 * m + k], tw[2 * k * twiddle_stride]);
        Complex sum = t1 + t2;
        Complex rotated = TimesMinusI(t1 - t2) * half_sqrt3;
        Complex base = t0 - 0.5f * sum;
        out[k] = t0 + sum;
        out[m + k] = base + rotated;
        out[2 * m + k] = base - rotated;
      }
      break;
    }
    case 4:
      for (size_t k = 0; k < m; ++k) {
        Complex t0 = out[k];
        Complex t1 = Mul(out[m + k], tw[k * twiddle_stride]);
        Complex t2 = Mul(out[2 * m + k], tw[2 * k * twiddle_stride]);
        Complex t3 = Mul(out[3 * m + k], tw[3 * k * twiddle_stride]);
        Complex even_sum = t0 + t2, even_diff = t0 - t2;
        Complex odd_sum = t1 + t3, odd_diff = TimesMinusI(t1 - t3);
        out[k] = even_sum + odd_sum;
        out[m + k] = even_diff + odd_diff;
        out[2 * m + k] = even_sum - odd_sum;
        out[3 * m + k] = even_diff - odd_diff;
      }
      break;
    case 5: {
      const float c1 = 0.30901699437494742410f;   // cos(2*pi/5)
      const float c2 = -0.80901699437494742410f;  // cos(4*pi/5)
      const float s1 = 0.95105651629515357212f;   // sin(2*pi/5)
      const float s2 = 0.58778525229247312917f;   // sin(4*pi/5)
      for (size_t k = 0; k < m; ++k) {
        Complex t0 = out[k];
        Complex t1 = Mul(out[m + k], tw[k * twiddle_stride]);
        Complex t2 = Mul(out[2 * m + k], tw[2 * k * twiddle_stride]);
        Complex t3 = Mul(out[3 * m + k], tw[3 * k * twiddle_stride]);
        Complex t4 = Mul(out[4 * m + k], tw[4 * k * twiddle_stride]);
        Complex a1 = t1 + t4, b1 = t1 - t4, a2 = t2 + t3, b2 = t2 - t3;
        Complex real1 = t0 + c1 * a1 + c2 * a2;
        Complex real2 = t0 + c2 * a1 + c1 * a2;
        Complex imag1 = TimesMinusI(s1 * b1 + s2 * b2);
        Complex imag2 = TimesMinusI(s2 * b1 - s1 * b2);
        out[k] = t0 + a1 + a2;
        out[m + k] = real1 + imag1;
        out[4 * m + k] = real1 - imag1;
        out[2 * m + k] = real2 + imag2;
        out[3 * m + k] = real2 - imag2;
      }
      break;
    }
    default: {
      std::vector<Complex> t(p);
      for (size_t k = 0; k < m; ++k) {
        for (size_t r = 0; r < p; ++r) t[r] = Mul(out[r * m + k], tw[r * k * twiddle_stride]);
        for (size_t q = 0; q < p; ++q) {
          Complex acc = t[0];
          for (size_t r = 1; r < p; ++r) acc += Mul(t[r], tw[((r * q) % p) * m * twiddle_stride]);
          out[q * m + k] = acc;
        }
      }
      break;
    }
  }
}

Expected<RealFft> RealFft::Create(size_t n) {
  if (n == 0) return Status::Error("FFT size must be positive");
  RealFft fft;
  fft.n_ = n;
  if (n % 2 == 0) {
    EARSHOT_ASSIGN_OR_RETURN(fft.inner_, ComplexFft::Create(n / 2));
    const double kTwoPi = 6.283185307179586476925286766559;
    fft.split_.resize(n / 2 + 1);
    for (size_t k = 0; k <= n / 2; ++k) {
      double angle = -kTwoPi * static_cast<double>(k) / static_cast<double>(n);
      fft.split_[k] = Complex(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
    }
  } else {
    EARSHOT_ASSIGN_OR_RETURN(fft.inner_, ComplexFft::Create(n));
  }
  return fft;
}

void RealFft::Forward(const float* in, Complex* out, std::vector<Complex>& scratch) const {
  if (n_ % 2 == 1) {
    scratch.resize(2 * n_);
    for (size_t t = 0; t < n_; ++t) scratch[t] = Complex(in[t], 0.0f);
    inner_.Forward(scratch.data(), scratch.data() + n_);
    for (size_t k = 0; k < bins(); ++k) out[k] = scratch[n_ + k];
    return;
  }
  // Even samples as real parts, odd samples as imaginary parts: one half-size transform gives both spectra,
  // which the split below separates (E = spectrum of evens, O = spectrum of odds, X[k] = E + W^k O).
  const size_t half = n_ / 2;
  scratch.resize(2 * half);
  Complex* packed = scratch.data();
  Complex* spectrum = scratch.data() + half;
  for (size_t t = 0; t < half; ++t) packed[t] = Complex(in[2 * t], in[2 * t + 1]);
  inner_.Forward(packed, spectrum);
  for (size_t k = 0; k <= half; ++k) {
    Complex zk = spectrum[k == half ? 0 : k];
    Complex zc = std::conj(spectrum[k == 0 ? 0 : half - k]);
    Complex even = 0.5f * (zk + zc);
    Complex odd = TimesMinusI(0.5f * (zk - zc));
    out[k] = even + Mul(split_[k], odd);
  }
}

}  // namespace earshot
