// WAV reader: every supported format decoded from bytes built here, and every rejection path.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "audio/wav.h"

namespace earshot {
namespace {

void PutU16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void PutU32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutId(std::vector<uint8_t>& b, const char* id) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(id[i]));
}
void PutChunk(std::vector<uint8_t>& b, const char* id, const std::vector<uint8_t>& body) {
  PutId(b, id);
  PutU32(b, static_cast<uint32_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  if (body.size() % 2) b.push_back(0);
}

struct FmtSpec {
  uint16_t code = 1;
  uint16_t channels = 1;
  uint32_t rate = 16000;
  uint16_t bits = 16;
  int block_align = -1;  // -1: channels * bits / 8
  bool extensible = false;
  uint16_t sub_code = 1;
  uint16_t valid_bits = 0;
  bool bad_guid = false;
};

std::vector<uint8_t> FmtBody(const FmtSpec& f) {
  std::vector<uint8_t> b;
  uint16_t align = f.block_align >= 0 ? static_cast<uint16_t>(f.block_align)
                                      : static_cast<uint16_t>(f.channels * (f.bits / 8));
  PutU16(b, f.extensible ? 0xFFFE : f.code);
  PutU16(b, f.channels);
  PutU32(b, f.rate);
  PutU32(b, f.rate * align);
  PutU16(b, align);
  PutU16(b, f.bits);
  if (f.extensible) {
    PutU16(b, 22);
    PutU16(b, f.valid_bits ? f.valid_bits : f.bits);
    PutU32(b, 0x4);  // channel mask: front centre
    PutU16(b, f.sub_code);
    const uint8_t tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    b.insert(b.end(), tail, tail + 14);
    if (f.bad_guid) b.back() ^= 0xFF;
  }
  return b;
}

// RIFF/WAVE around the given chunks (already serialised); riff_size < 0 computes the right value.
std::vector<uint8_t> Riff(const std::vector<uint8_t>& chunks, int64_t riff_size = -1) {
  std::vector<uint8_t> b;
  PutId(b, "RIFF");
  PutU32(b, riff_size >= 0 ? static_cast<uint32_t>(riff_size) : static_cast<uint32_t>(4 + chunks.size()));
  PutId(b, "WAVE");
  b.insert(b.end(), chunks.begin(), chunks.end());
  return b;
}

std::vector<uint8_t> MakeWav(const FmtSpec& f, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody(f));
  PutChunk(chunks, "data", data);
  return Riff(chunks);
}

std::vector<uint8_t> Pcm16(const std::vector<int16_t>& v) {
  std::vector<uint8_t> b;
  for (int16_t s : v) PutU16(b, static_cast<uint16_t>(s));
  return b;
}

std::vector<uint8_t> Float32(const std::vector<float>& v) {
  std::vector<uint8_t> b;
  for (float s : v) {
    uint32_t u;
    std::memcpy(&u, &s, 4);
    PutU32(b, u);
  }
  return b;
}

Expected<PcmAudio> Decode(const std::vector<uint8_t>& b) { return DecodeWav(b.data(), b.size()); }

// Decoding must fail with a message that contains `needle`.
void ExpectError(const std::vector<uint8_t>& bytes, const std::string& needle) {
  Expected<PcmAudio> r = Decode(bytes);
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(WavDecode, Pcm16Mono) {
  auto r = Decode(MakeWav({}, Pcm16({0, 16384, -32768, 32767})));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->sample_rate, 16000);
  EXPECT_EQ(r->source_channels, 1);
  EXPECT_EQ(r->source_bits, 16);
  ASSERT_EQ(r->samples.size(), 4u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.0f);
  EXPECT_FLOAT_EQ(r->samples[1], 0.5f);
  EXPECT_FLOAT_EQ(r->samples[2], -1.0f);
  EXPECT_FLOAT_EQ(r->samples[3], 32767.0f / 32768.0f);
}

TEST(WavDecode, StereoIsMixedToTheMeanOfChannels) {
  FmtSpec f;
  f.channels = 2;
  f.rate = 44100;
  auto r = Decode(MakeWav(f, Pcm16({16384, 0, -16384, -16384, 8192, 24576})));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->source_channels, 2);
  EXPECT_EQ(r->sample_rate, 44100);
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.25f);
  EXPECT_FLOAT_EQ(r->samples[1], -0.5f);
  EXPECT_FLOAT_EQ(r->samples[2], 0.5f);
}

TEST(WavDecode, SixChannels) {
  FmtSpec f;
  f.channels = 6;
  std::vector<int16_t> v = {6 * 1024, 0, 0, 0, 0, 0, -6 * 1024, -6 * 1024, 0, 0, 0, 0};
  auto r = Decode(MakeWav(f, Pcm16(v)));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_FLOAT_EQ(r->samples[0], 1024.0f / 32768.0f);
  EXPECT_FLOAT_EQ(r->samples[1], -2048.0f / 32768.0f);
}

TEST(WavDecode, Pcm8IsUnsigned) {
  FmtSpec f;
  f.bits = 8;
  f.rate = 8000;
  auto r = Decode(MakeWav(f, {128, 255, 0, 192}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->source_bits, 8);
  ASSERT_EQ(r->samples.size(), 4u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.0f);
  EXPECT_FLOAT_EQ(r->samples[1], 127.0f / 128.0f);
  EXPECT_FLOAT_EQ(r->samples[2], -1.0f);
  EXPECT_FLOAT_EQ(r->samples[3], 0.5f);
}

TEST(WavDecode, Pcm24SignExtends) {
  FmtSpec f;
  f.bits = 24;
  // 0x400000 = 0.5, 0xC00000 = -0.5, 0x800000 = -1, 0x000001 = 2^-23
  std::vector<uint8_t> data = {0x00, 0x00, 0x40, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00};
  auto r = Decode(MakeWav(f, data));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 4u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.5f);
  EXPECT_FLOAT_EQ(r->samples[1], -0.5f);
  EXPECT_FLOAT_EQ(r->samples[2], -1.0f);
  EXPECT_FLOAT_EQ(r->samples[3], 1.0f / 8388608.0f);
}

TEST(WavDecode, Pcm32) {
  FmtSpec f;
  f.bits = 32;
  std::vector<uint8_t> data;
  PutU32(data, 0x40000000u);
  PutU32(data, 0x80000000u);
  PutU32(data, 0xE0000000u);
  auto r = Decode(MakeWav(f, data));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.5f);
  EXPECT_FLOAT_EQ(r->samples[1], -1.0f);
  EXPECT_FLOAT_EQ(r->samples[2], -0.25f);
}

TEST(WavDecode, Float32) {
  FmtSpec f;
  f.code = 3;
  f.bits = 32;
  f.rate = 48000;
  auto r = Decode(MakeWav(f, Float32({0.25f, -0.75f, 1.5f})));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->sample_rate, 48000);
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.25f);
  EXPECT_FLOAT_EQ(r->samples[1], -0.75f);
  EXPECT_FLOAT_EQ(r->samples[2], 1.5f);  // float WAVs may exceed full scale
}

TEST(WavDecode, Float64) {
  FmtSpec f;
  f.code = 3;
  f.bits = 64;
  std::vector<uint8_t> data;
  for (double d : {0.125, -0.5}) {
    uint64_t u;
    std::memcpy(&u, &d, 8);
    PutU32(data, static_cast<uint32_t>(u));
    PutU32(data, static_cast<uint32_t>(u >> 32));
  }
  auto r = Decode(MakeWav(f, data));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.125f);
  EXPECT_FLOAT_EQ(r->samples[1], -0.5f);
}

TEST(WavDecode, ExtensiblePcm24With20ValidBits) {
  FmtSpec f;
  f.extensible = true;
  f.sub_code = 1;
  f.bits = 24;
  f.valid_bits = 20;
  auto r = Decode(MakeWav(f, {0x00, 0x00, 0x40}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 1u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.5f);
}

TEST(WavDecode, ExtensibleFloatStereo) {
  FmtSpec f;
  f.extensible = true;
  f.sub_code = 3;
  f.bits = 32;
  f.channels = 2;
  auto r = Decode(MakeWav(f, Float32({0.5f, 0.25f})));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 1u);
  EXPECT_FLOAT_EQ(r->samples[0], 0.375f);
}

TEST(WavDecode, SkipsOtherChunksAndHonoursOddPadding) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "LIST", {'I', 'N', 'F', 'O', 'x'});  // odd size: a pad byte follows
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "fact", {1, 0, 0, 0});
  PutChunk(chunks, "data", Pcm16({100, 200}));
  PutChunk(chunks, "id3 ", {1, 2, 3});
  auto r = Decode(Riff(chunks));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->samples.size(), 2u);
  EXPECT_FLOAT_EQ(r->samples[1], 200.0f / 32768.0f);
}

TEST(WavDecode, FmtAfterData) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "data", Pcm16({1, 2, 3}));
  PutChunk(chunks, "fmt ", FmtBody({}));
  auto r = Decode(Riff(chunks));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->samples.size(), 3u);
}

TEST(WavDecode, OddDataChunkIsLastWithoutPadByte) {
  FmtSpec f;
  f.bits = 8;
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody(f));
  PutId(chunks, "data");
  PutU32(chunks, 3);
  chunks.insert(chunks.end(), {128, 129, 130});  // no pad byte at the end of the file
  auto r = Decode(Riff(chunks));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->samples.size(), 3u);
}

TEST(WavDecode, StreamingDataSizeReadsToEndAndDropsPartialFrame) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutId(chunks, "data");
  PutU32(chunks, 0xFFFFFFFFu);
  std::vector<uint8_t> pcm = Pcm16({10, 20, 30});
  chunks.insert(chunks.end(), pcm.begin(), pcm.end());
  chunks.push_back(0x7F);  // half a frame
  auto r = Decode(Riff(chunks, 0xFFFFFFFFu));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->samples.size(), 3u);
}

TEST(WavDecode, RiffSizeBeyondFileIsAcceptedWhenChunksFit) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1, 2}));
  auto r = Decode(Riff(chunks, 4 + chunks.size() + 1000));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->samples.size(), 2u);
}

TEST(WavDecode, BytesAfterRiffChunkAreIgnored) {
  std::vector<uint8_t> bytes = MakeWav({}, Pcm16({1, 2}));
  bytes.insert(bytes.end(), {'T', 'A', 'G', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  auto r = Decode(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->samples.size(), 2u);
}

TEST(WavDecode, TrailingZeroBytesInsideRiffAreIgnored) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1, 2}));
  chunks.insert(chunks.end(), {0, 0, 0});
  auto r = Decode(Riff(chunks));
  ASSERT_TRUE(r.ok()) << r.status().message();
}

// --- rejections ----------------------------------------------------------------------------------------

TEST(WavReject, TooShortAndNull) {
  ExpectError({}, "too short");
  ExpectError({'R', 'I', 'F', 'F'}, "too short");
  EXPECT_FALSE(DecodeWav(nullptr, 100).ok());
}

TEST(WavReject, WrongMagic) {
  std::vector<uint8_t> b = MakeWav({}, Pcm16({1}));
  std::vector<uint8_t> not_riff = b;
  std::memcpy(not_riff.data(), "OggS", 4);
  ExpectError(not_riff, "missing RIFF header");
  std::vector<uint8_t> rifx = b;
  std::memcpy(rifx.data(), "RIFX", 4);
  ExpectError(rifx, "RIFX");
  std::vector<uint8_t> rf64 = b;
  std::memcpy(rf64.data(), "RF64", 4);
  ExpectError(rf64, "RF64");
  std::vector<uint8_t> avi = b;
  std::memcpy(avi.data() + 8, "AVI ", 4);
  ExpectError(avi, "'AVI '");
  std::vector<uint8_t> binary = b;
  binary[8] = 0x01;
  ExpectError(binary, "0x01");
}

TEST(WavReject, MissingChunks) {
  std::vector<uint8_t> only_fmt;
  PutChunk(only_fmt, "fmt ", FmtBody({}));
  ExpectError(Riff(only_fmt), "missing data chunk");
  std::vector<uint8_t> only_data;
  PutChunk(only_data, "data", Pcm16({1}));
  ExpectError(Riff(only_data), "missing fmt chunk");
  ExpectError(Riff({}), "missing fmt chunk");
}

TEST(WavReject, DuplicateChunks) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1}));
  PutChunk(chunks, "data", Pcm16({1}));
  ExpectError(Riff(chunks), "more than one data chunk");
  chunks.clear();
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1}));
  ExpectError(Riff(chunks), "more than one fmt chunk");
}

TEST(WavReject, TruncatedDataChunk) {
  std::vector<uint8_t> b = MakeWav({}, Pcm16({1, 2, 3, 4}));
  b.resize(b.size() - 3);
  ExpectError(b, "truncated");
}

TEST(WavReject, ChunkPastTheEndOfTheRiffChunk) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1, 2, 3, 4}));
  ExpectError(Riff(chunks, 4 + chunks.size() - 4), "remain in the RIFF chunk (its size field is too small)");
}

TEST(WavReject, ChunkPastTheEnd) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1, 2}));
  PutId(chunks, "LIST");
  PutU32(chunks, 100);
  chunks.insert(chunks.end(), {1, 2, 3});
  ExpectError(Riff(chunks), "'LIST' at offset");
}

TEST(WavReject, HugeDeclaredSizesAreCheckedBeforeUse) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutId(chunks, "data");
  PutU32(chunks, 0x7FFFFFF0u);
  chunks.insert(chunks.end(), 64, 0);
  ExpectError(Riff(chunks), "'data' at offset 36 declares 2147483632 bytes but only 64 remain (truncated file?)");
  std::vector<uint8_t> huge_fmt;
  PutId(huge_fmt, "fmt ");
  PutU32(huge_fmt, 0xFFFFFFF0u);
  ExpectError(Riff(huge_fmt), "'fmt '");
}

TEST(WavReject, TruncatedChunkHeader) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutChunk(chunks, "data", Pcm16({1}));
  chunks.insert(chunks.end(), {'L', 'I', 'S'});
  ExpectError(Riff(chunks), "truncated chunk header");
}

TEST(WavReject, TinyRiffSize) { ExpectError(Riff({}, 2), "RIFF chunk size 2"); }

TEST(WavReject, ShortFmtChunk) {
  std::vector<uint8_t> chunks;
  std::vector<uint8_t> fmt = FmtBody({});
  fmt.resize(14);
  PutChunk(chunks, "fmt ", fmt);
  PutChunk(chunks, "data", Pcm16({1}));
  ExpectError(Riff(chunks), "fmt chunk is 14 bytes");
}

TEST(WavReject, BlockAlignMismatch) {
  FmtSpec f;
  f.channels = 2;
  f.block_align = 2;
  ExpectError(MakeWav(f, Pcm16({1, 2})), "block_align 2 does not match 2 channels x 2 bytes = 4");
}

TEST(WavReject, UnsupportedFormatCodesAreNamed) {
  FmtSpec f;
  f.code = 2;
  f.bits = 4;
  f.block_align = 256;
  ExpectError(MakeWav(f, std::vector<uint8_t>(256)), "unsupported WAV format code 0x0002 (Microsoft ADPCM)");
  f.code = 7;
  f.bits = 8;
  f.block_align = -1;
  ExpectError(MakeWav(f, {1, 2}), "0x0007 (mu-law)");
  f.code = 0x1234;
  ExpectError(MakeWav(f, {1, 2}), "0x1234");
}

TEST(WavReject, UnsupportedBitDepths) {
  FmtSpec f;
  f.bits = 12;
  f.block_align = 2;
  ExpectError(MakeWav(f, {1, 2}), "unsupported PCM bit depth 12");
  FmtSpec g;
  g.code = 3;
  g.bits = 16;
  ExpectError(MakeWav(g, {1, 2}), "unsupported IEEE float bit depth 16");
  FmtSpec zero;
  zero.bits = 0;
  zero.block_align = 0;
  ExpectError(MakeWav(zero, {}), "bit depth 0");
}

TEST(WavReject, ZeroChannels) {
  FmtSpec f;
  f.channels = 0;
  ExpectError(MakeWav(f, Pcm16({1})), "zero channels");
}

TEST(WavReject, SampleRateOutOfRange) {
  FmtSpec f;
  f.rate = 0;
  ExpectError(MakeWav(f, Pcm16({1})), "sample rate 0 Hz");
  f.rate = 999;
  ExpectError(MakeWav(f, Pcm16({1})), "sample rate 999 Hz");
  f.rate = 384001;
  ExpectError(MakeWav(f, Pcm16({1})), "384001");
  f.rate = 384000;
  EXPECT_TRUE(Decode(MakeWav(f, Pcm16({1}))).ok());
  f.rate = 1000;
  EXPECT_TRUE(Decode(MakeWav(f, Pcm16({1}))).ok());
}

TEST(WavReject, EmptyData) { ExpectError(MakeWav({}, {}), "no audio samples"); }

TEST(WavReject, StreamingDataShorterThanOneFrame) {
  std::vector<uint8_t> chunks;
  PutChunk(chunks, "fmt ", FmtBody({}));
  PutId(chunks, "data");
  PutU32(chunks, 0xFFFFFFFFu);
  chunks.push_back(1);
  ExpectError(Riff(chunks), "no audio samples");
}

TEST(WavReject, PartialFrame) {
  FmtSpec f;
  f.channels = 2;
  ExpectError(MakeWav(f, Pcm16({1, 2, 3})), "not a whole number of frames (block_align 4)");
}

TEST(WavReject, NonFiniteOrAbsurdFloatSamplesNameTheSample) {
  FmtSpec f;
  f.code = 3;
  f.bits = 32;
  ExpectError(MakeWav(f, Float32({0.0f, 0.1f, std::numeric_limits<float>::quiet_NaN()})),
              "float sample 2 (channel 0) is NaN");
  f.channels = 2;
  ExpectError(MakeWav(f, Float32({0.0f, 0.1f, 0.2f, -std::numeric_limits<float>::infinity()})),
              "float sample 1 (channel 1) is infinite");
  FmtSpec d;
  d.code = 3;
  d.bits = 64;
  std::vector<uint8_t> data;
  double big = 1e300;
  uint64_t u;
  std::memcpy(&u, &big, 8);
  PutU32(data, static_cast<uint32_t>(u));
  PutU32(data, static_cast<uint32_t>(u >> 32));
  ExpectError(MakeWav(d, data), "float sample 0 (channel 0) has magnitude");
  FmtSpec g;
  g.code = 3;
  g.bits = 32;
  ExpectError(MakeWav(g, Float32({0.5f, 3.4e38f})), "float sample 1 (channel 0) has magnitude");
  auto int16_scaled = Decode(MakeWav(g, Float32({32767.0f, -32768.0f})));  // accepted: some writers do this
  EXPECT_TRUE(int16_scaled.ok()) << int16_scaled.status().message();
}

TEST(WavReject, ExtensibleProblems) {
  FmtSpec f;
  f.extensible = true;
  f.bad_guid = true;
  ExpectError(MakeWav(f, Pcm16({1})), "sub-format");
  FmtSpec g;
  g.extensible = true;
  g.valid_bits = 24;
  ExpectError(MakeWav(g, Pcm16({1})), "24 valid bits in a 16-bit container");
  FmtSpec h;
  h.extensible = true;
  h.sub_code = 2;
  ExpectError(MakeWav(h, Pcm16({1})), "format code 0x0002");
  std::vector<uint8_t> chunks;
  std::vector<uint8_t> fmt = FmtBody(h);
  fmt.resize(24);
  PutChunk(chunks, "fmt ", fmt);
  PutChunk(chunks, "data", Pcm16({1}));
  ExpectError(Riff(chunks), "40 are required");
  chunks.clear();
  fmt = FmtBody(h);
  fmt[16] = 10;  // extension size
  PutChunk(chunks, "fmt ", fmt);
  PutChunk(chunks, "data", Pcm16({1}));
  ExpectError(Riff(chunks), "22 are required");
}

// --- files ----------------------------------------------------------------------------------------------

std::string TempPath(const std::string& name) { return std::string(EARSHOT_BINARY_DIR) + "/" + name; }

bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

TEST(WavFile, ReadAndResampleTo16k) {
  FmtSpec f;
  f.rate = 48000;
  f.channels = 2;
  std::vector<int16_t> v(2 * 4800, 8192);  // 0.1 s of DC at 0.25
  const std::string path = TempPath("audio_wav_test_48k.wav");
  ASSERT_TRUE(WriteFile(path, MakeWav(f, Pcm16(v))));
  auto raw = ReadWavFile(path);
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(raw->sample_rate, 48000);
  EXPECT_EQ(raw->samples.size(), 4800u);
  auto audio = LoadAudio16k(path);
  ASSERT_TRUE(audio.ok()) << audio.status().message();
  ASSERT_EQ(audio->size(), 1600u);
  EXPECT_NEAR((*audio)[800], 0.25f, 1e-4f);
  std::remove(path.c_str());
}

TEST(WavFile, SixteenKilohertzPassesThrough) {
  const std::string path = TempPath("audio_wav_test_16k.wav");
  ASSERT_TRUE(WriteFile(path, MakeWav({}, Pcm16({1, 2, 3}))));
  auto audio = LoadAudio16k(path);
  ASSERT_TRUE(audio.ok()) << audio.status().message();
  ASSERT_EQ(audio->size(), 3u);
  EXPECT_FLOAT_EQ((*audio)[2], 3.0f / 32768.0f);
  std::remove(path.c_str());
}

TEST(WavFile, ErrorsNameThePath) {
  auto missing = ReadWavFile(TempPath("no_such_file.wav"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_file.wav"), std::string::npos);
  const std::string path = TempPath("audio_wav_test_bad.wav");
  ASSERT_TRUE(WriteFile(path, {'n', 'o', 't', ' ', 'a', ' ', 'w', 'a', 'v', 'e', '!', '!'}));
  auto bad = LoadAudio16k(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("audio_wav_test_bad.wav: not a WAV file"), std::string::npos)
      << bad.status().message();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace earshot
