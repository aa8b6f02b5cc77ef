// Mixed-radix FFT against a direct double-precision DFT.
#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "audio/fft.h"

namespace earshot {
namespace {

std::vector<std::complex<double>> NaiveDft(const std::vector<std::complex<double>>& x) {
  const size_t n = x.size();
  const double kTwoPi = 6.283185307179586476925286766559;
  std::vector<std::complex<double>> roots(n), out(n);
  for (size_t j = 0; j < n; ++j) {
    double angle = -kTwoPi * static_cast<double>(j) / static_cast<double>(n);
    roots[j] = {std::cos(angle), std::sin(angle)};
  }
  for (size_t k = 0; k < n; ++k) {
    std::complex<double> acc = 0;
    for (size_t t = 0; t < n; ++t) acc += x[t] * roots[(t * k) % n];
    out[k] = acc;
  }
  return out;
}

std::vector<std::complex<double>> RandomSignal(size_t n, unsigned seed, bool real) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<std::complex<double>> x(n);
  for (auto& v : x) v = {u(rng), real ? 0.0 : u(rng)};
  return x;
}

// Largest error relative to the largest reference magnitude.
double RelativeError(const std::vector<Complex>& got, const std::vector<std::complex<double>>& ref, size_t count) {
  double max_ref = 1e-30, max_err = 0;
  for (size_t k = 0; k < count; ++k) {
    max_ref = std::max(max_ref, std::abs(ref[k]));
    max_err = std::max(max_err, std::abs(std::complex<double>(got[k].real(), got[k].imag()) - ref[k]));
  }
  return max_err / max_ref;
}

std::vector<size_t> SizesToTest() {
  std::vector<size_t> sizes;
  for (size_t n = 1; n <= 64; ++n) sizes.push_back(n);
  for (size_t n : {96, 100, 128, 160, 200, 243, 256, 320, 360, 400, 512, 640, 800, 1001, 1024, 97 * 2}) {
    sizes.push_back(n);
  }
  return sizes;
}

TEST(ComplexFftTest, MatchesNaiveDft) {
  for (size_t n : SizesToTest()) {
    auto fft = ComplexFft::Create(n);
    ASSERT_TRUE(fft.ok()) << n << ": " << fft.status().message();
    auto x = RandomSignal(n, static_cast<unsigned>(n), false);
    std::vector<Complex> in(n), out(n);
    for (size_t i = 0; i < n; ++i) in[i] = Complex(static_cast<float>(x[i].real()), static_cast<float>(x[i].imag()));
    fft->Forward(in.data(), out.data());
    EXPECT_LT(RelativeError(out, NaiveDft(x), n), 2e-6) << "n = " << n;
  }
}

TEST(RealFftTest, MatchesNaiveDft) {
  for (size_t n : SizesToTest()) {
    auto fft = RealFft::Create(n);
    ASSERT_TRUE(fft.ok()) << n << ": " << fft.status().message();
    ASSERT_EQ(fft->bins(), n / 2 + 1);
    auto x = RandomSignal(n, static_cast<unsigned>(1000 + n), true);
    std::vector<float> in(n);
    for (size_t i = 0; i < n; ++i) in[i] = static_cast<float>(x[i].real());
    std::vector<Complex> out(fft->bins());
    std::vector<Complex> scratch;
    fft->Forward(in.data(), out.data(), scratch);
    EXPECT_LT(RelativeError(out, NaiveDft(x), fft->bins()), 2e-6) << "n = " << n;
  }
}

TEST(RealFftTest, PureToneLandsInOneBin) {
  const size_t n = 400;
  auto fft = RealFft::Create(n);
  ASSERT_TRUE(fft.ok());
  std::vector<float> in(n);
  for (size_t i = 0; i < n; ++i) in[i] = static_cast<float>(std::cos(2 * 3.14159265358979323846 * 25 * i / n));
  std::vector<Complex> out(fft->bins());
  std::vector<Complex> scratch;
  fft->Forward(in.data(), out.data(), scratch);
  for (size_t k = 0; k < out.size(); ++k) {
    EXPECT_NEAR(std::abs(out[k]), k == 25 ? 200.0f : 0.0f, 1e-3f) << k;
  }
}

TEST(FftCreate, RejectsBadSizes) {
  EXPECT_FALSE(ComplexFft::Create(0).ok());
  EXPECT_FALSE(RealFft::Create(0).ok());
  EXPECT_FALSE(ComplexFft::Create(ComplexFft::kMaxSize + 1).ok());
  auto big_prime = ComplexFft::Create(101 * 4);
  ASSERT_FALSE(big_prime.ok());
  EXPECT_NE(big_prime.status().message().find("prime factor 101"), std::string::npos);
  EXPECT_FALSE(RealFft::Create(2 * 2 * 65521).ok());
}

}  // namespace
}  // namespace earshot
