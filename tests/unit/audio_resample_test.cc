// Resampler quality: length, DC, passband amplitude, alias/image suppression, impulse response.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "audio/resample.h"

namespace earshot {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> Sine(double freq, int rate, size_t n, double amplitude = 0.5, double phase = 0.3) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(amplitude * std::sin(2 * kPi * freq * i / rate + phase));
  return v;
}

// Amplitude of the component at `freq` over [begin, end): least-squares projection on sin and cos.
double ToneAmplitude(const std::vector<float>& v, double freq, int rate, size_t begin, size_t end) {
  double s = 0, c = 0, ss = 0, cc = 0, sc = 0;
  for (size_t i = begin; i < end; ++i) {
    double a = 2 * kPi * freq * i / rate;
    double si = std::sin(a), ci = std::cos(a);
    s += v[i] * si;
    c += v[i] * ci;
    ss += si * si;
    cc += ci * ci;
    sc += si * ci;
  }
  double det = ss * cc - sc * sc;
  double a = (s * cc - c * sc) / det, b = (c * ss - s * sc) / det;
  return std::sqrt(a * a + b * b);
}

double Rms(const std::vector<float>& v, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += static_cast<double>(v[i]) * v[i];
  return std::sqrt(sum / static_cast<double>(end - begin));
}

double Db(double ratio) { return 20 * std::log10(ratio); }

std::vector<float> ResampleOk(const std::vector<float>& in, int from, int to) {
  auto r = Resample(in.data(), in.size(), from, to);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : std::vector<float>();
}

TEST(Resample, IdentityCopies) {
  std::vector<float> in = {0.1f, -0.2f, 0.3f};
  EXPECT_EQ(ResampleOk(in, 16000, 16000), in);
}

TEST(Resample, EmptyInputGivesEmptyOutput) {
  auto r = Resample(nullptr, 0, 44100, 16000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(Resample, OutputLengthIsRounded) {
  struct Case { size_t n; int from, to; size_t expected; };
  const Case cases[] = {
      {44100, 44100, 16000, 16000}, {48000, 48000, 16000, 16000}, {1000, 8000, 16000, 2000},
      {1, 44100, 16000, 0},         {2, 44100, 16000, 1},         {101, 48000, 16000, 34},
      {100, 22050, 16000, 73},      {7, 11025, 16000, 10},        {3, 96000, 16000, 1},
      {12345, 44100, 44101, 12345}, {10, 16000, 44100, 28},
  };
  for (const Case& c : cases) {
    std::vector<float> in(c.n, 0.1f);
    auto r = Resample(in.data(), in.size(), c.from, c.to);
    ASSERT_TRUE(r.ok()) << r.status().message();
    // round(n * to / from) with halves rounded up
    EXPECT_EQ(r->size(), c.expected) << c.n << " @ " << c.from << " -> " << c.to;
    EXPECT_EQ(r->size(), static_cast<size_t>(std::floor(static_cast<double>(c.n) * c.to / c.from + 0.5)));
  }
}

TEST(Resample, RejectsBadRates) {
  std::vector<float> in(10, 0.0f);
  EXPECT_FALSE(Resample(in.data(), in.size(), 0, 16000).ok());
  EXPECT_FALSE(Resample(in.data(), in.size(), 16000, -1).ok());
  EXPECT_FALSE(Resample(in.data(), in.size(), 16000, kMaxResampleRate + 1).ok());
  EXPECT_FALSE(Resample(nullptr, 10, 44100, 16000).ok());
}

TEST(Resample, DcPassesUnchanged) {
  for (int from : {44100, 48000, 8000, 22050, 11025, 96000, 44101}) {
    std::vector<float> in(from / 4, 0.5f);
    std::vector<float> out = ResampleOk(in, from, 16000);
    // Away from the edges (the signal is zero outside the input) the constant must come through exactly.
    for (size_t j = out.size() / 4; j < 3 * out.size() / 4; ++j) {
      ASSERT_NEAR(out[j], 0.5f, 2e-5f) << from << " Hz, output " << j;
    }
  }
}

TEST(Resample, PassbandToneAmplitudeIsPreserved) {
  for (int from : {44100, 48000, 22050, 11025, 8000, 96000}) {
    const int nyquist = std::min(from, 16000) / 2;
    for (double freq : {200.0, 1000.0, 0.8 * nyquist}) {
      std::vector<float> out = ResampleOk(Sine(freq, from, static_cast<size_t>(from) / 2), from, 16000);
      double amplitude = ToneAmplitude(out, freq, 16000, 1000, out.size() - 1000);
      EXPECT_NEAR(amplitude, 0.5, 0.5 * 1e-3) << from << " Hz input, " << freq << " Hz tone";
    }
  }
}

TEST(Resample, ToneAboveNewNyquistIsSuppressed) {
  struct Case { int from; double freq; };
  // Each tone would alias into the 16 kHz band; the stopband starts at 8 kHz.
  const Case cases[] = {{48000, 9000}, {48000, 15000}, {44100, 10000}, {44100, 8100},
                        {22050, 9500}, {96000, 30000}, {32000, 12000}};
  for (const Case& c : cases) {
    std::vector<float> out = ResampleOk(Sine(c.freq, c.from, static_cast<size_t>(c.from) / 2), c.from, 16000);
    double level = Db(Rms(out, 1000, out.size() - 1000) / (0.5 / std::sqrt(2.0)));
    EXPECT_LT(level, -80.0) << c.from << " Hz input, " << c.freq << " Hz tone";
  }
}

TEST(Resample, UpsamplingImagesAreSuppressed) {
  // 8 kHz -> 16 kHz: a 3 kHz tone must not leave an image at 8 - 3 = 5 kHz.
  std::vector<float> out = ResampleOk(Sine(3000, 8000, 4000), 8000, 16000);
  double image = ToneAmplitude(out, 5000, 16000, 1000, out.size() - 1000);
  EXPECT_LT(Db(image / 0.5), -80.0);
  EXPECT_NEAR(ToneAmplitude(out, 3000, 16000, 1000, out.size() - 1000), 0.5, 5e-4);
}

TEST(Resample, LargeReducedRatioUsesDirectKernelWithSameQuality) {
  // 44100 -> 44101 has 44101 phases: too many for a table.
  std::vector<float> out = ResampleOk(Sine(5000, 44100, 22050), 44100, 44101);
  ASSERT_EQ(out.size(), 22051u);
  EXPECT_NEAR(ToneAmplitude(out, 5000, 44101, 2000, out.size() - 2000), 0.5, 5e-4);
  // And an odd rate down to 16 kHz with a tone to reject.
  std::vector<float> odd = ResampleOk(Sine(11000, 44099, 22050), 44099, 16000);
  EXPECT_LT(Db(Rms(odd, 1000, odd.size() - 1000) / (0.5 / std::sqrt(2.0))), -80.0);
}

TEST(Resample, TableAndDirectPathsAgree) {
  // 44.1 kHz -> 16 kHz has 160 phases: 400 input samples give 145 outputs (direct evaluation); the same
  // samples followed by zeros give enough outputs for the polyphase table.
  std::vector<float> short_in = Sine(1234, 44100, 400);
  std::vector<float> long_in = short_in;
  long_in.resize(4000, 0.0f);
  std::vector<float> direct = ResampleOk(short_in, 44100, 16000);
  std::vector<float> table = ResampleOk(long_in, 44100, 16000);
  ASSERT_EQ(direct.size(), 145u);
  for (size_t j = 0; j < direct.size(); ++j) ASSERT_NEAR(direct[j], table[j], 2e-6f) << j;
}

TEST(Resample, ImpulseResponseIsSymmetricAndSumsToOne) {
  // 32 kHz -> 16 kHz: output j sits on input 2j, so an impulse at input 2000 centres on output 1000.
  std::vector<float> in(4001, 0.0f);
  in[2000] = 1.0f;
  std::vector<float> out = ResampleOk(in, 32000, 16000);
  ASSERT_EQ(out.size(), 2001u);
  size_t peak = 0;
  double sum = 0;
  for (size_t j = 0; j < out.size(); ++j) {
    if (std::fabs(out[j]) > std::fabs(out[peak])) peak = j;
    sum += out[j];
  }
  EXPECT_EQ(peak, 1000u);
  EXPECT_NEAR(sum, 0.5, 1e-4);  // unit DC gain spread over half as many samples
  for (size_t k = 1; k < 200; ++k) EXPECT_NEAR(out[1000 - k], out[1000 + k], 1e-6f) << k;
  // Band-limited: the response decays and ends within the kernel's reach.
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[2000], 0.0f);
}

TEST(Resample, RoundTripKeepsBandLimitedSignal) {
  // A sum of random tones inside the passband survives 16k -> 44.1k -> 16k almost unchanged.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> freq(50.0, 6500.0), phase(0.0, 2 * kPi), amp(0.0, 0.05);
  std::vector<float> signal(16000, 0.0f);
  for (int tone = 0; tone < 40; ++tone) {
    double f = freq(rng), p = phase(rng), a = amp(rng);
    for (size_t i = 0; i < signal.size(); ++i) {
      signal[i] += static_cast<float>(a * std::sin(2 * kPi * f * i / 16000 + p));
    }
  }
  std::vector<float> back = ResampleOk(ResampleOk(signal, 16000, 44100), 44100, 16000);
  ASSERT_EQ(back.size(), signal.size());
  double err = 0, ref = 0;
  for (size_t i = 1000; i < signal.size() - 1000; ++i) {
    err += (back[i] - signal[i]) * (back[i] - signal[i]);
    ref += signal[i] * signal[i];
  }
  EXPECT_LT(10 * std::log10(err / ref), -70.0);
}

}  // namespace
}  // namespace earshot
