// WAV decoding from memory. Layout reference: the RIFF/WAVE format (little-endian chunks, word-aligned with a
// pad byte after odd-sized chunks) and WAVE_FORMAT_EXTENSIBLE (a 40-byte fmt chunk whose sub-format GUID
// carries the real format code).
#include "audio/wav.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

namespace earshot {
namespace {

constexpr uint16_t kFormatPcm = 0x0001;
constexpr uint16_t kFormatFloat = 0x0003;
constexpr uint16_t kFormatExtensible = 0xFFFE;
constexpr uint32_t kStreamingSize = 0xFFFFFFFFu;

// Bytes 2..15 of KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT; bytes 0..1 hold the format code.
constexpr uint8_t kSubFormatGuidTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                            0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t ReadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Chunk ids come from the file: show them quoted when printable, as hex otherwise.
std::string ChunkIdForMessage(const uint8_t* id) {
  bool printable = true;
  for (int i = 0; i < 4; ++i) printable = printable && id[i] >= 0x20 && id[i] < 0x7F;
  if (printable) return "'" + std::string(reinterpret_cast<const char*>(id), 4) + "'";
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%02X%02X%02X%02X", id[0], id[1], id[2], id[3]);
  return hex;
}

std::string Hex16(uint16_t v) {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%04X", v);
  return hex;
}

const char* FormatCodeName(uint16_t code) {
  switch (code) {
    case 0x0000: return "unknown";
    case 0x0002: return "Microsoft ADPCM";
    case 0x0006: return "A-law";
    case 0x0007: return "mu-law";
    case 0x0011: return "IMA ADPCM";
    case 0x0031: return "GSM 6.10";
    case 0x0050: return "MPEG";
    case 0x0055: return "MPEG Layer 3";
    case 0x00FF: return "AAC";
    case 0xF1AC: return "FLAC";
    default: return "unrecognised";
  }
}

bool IdIs(const uint8_t* id, const char* name) { return std::memcmp(id, name, 4) == 0; }

struct FormatInfo {
  uint16_t code = 0;  // PCM or float, after resolving EXTENSIBLE
  int channels = 0;
  int sample_rate = 0;
  int block_align = 0;
  int bits = 0;  // container bits per sample
};

Expected<FormatInfo> ParseFormat(const uint8_t* body, uint32_t size) {
  if (size < 16) {
    return Status::Error("fmt chunk is " + std::to_string(size) + " bytes; at least 16 are required");
  }
  FormatInfo info;
  uint16_t code = ReadU16(body);
  info.channels = ReadU16(body + 2);
  uint32_t rate = ReadU32(body + 4);
  // body + 8 holds the byte rate: redundant (rate * block_align), and often wrong in files from simple
  // writers, so it is not checked.
  info.block_align = ReadU16(body + 12);
  info.bits = ReadU16(body + 14);

  if (code == kFormatExtensible) {
    if (size < 40) {
      return Status::Error("WAVE_FORMAT_EXTENSIBLE fmt chunk is " + std::to_string(size) +
                           " bytes; 40 are required");
    }
    uint16_t extension_size = ReadU16(body + 16);
    if (extension_size < 22) {
      return Status::Error("WAVE_FORMAT_EXTENSIBLE extension is " + std::to_string(extension_size) +
                           " bytes; 22 are required");
    }
    int valid_bits = ReadU16(body + 18);
    const uint8_t* guid = body + 24;
    if (std::memcmp(guid + 2, kSubFormatGuidTail, sizeof(kSubFormatGuidTail)) != 0) {
      return Status::Error("unsupported WAVE_FORMAT_EXTENSIBLE sub-format (not a standard PCM/float GUID)");
    }
    code = ReadU16(guid);
    // Fewer valid bits than the container are stored left-justified, so decoding the full container is
    // right; more valid bits than the container is a broken header. 0 means "same as the container".
    if (valid_bits > info.bits) {
      return Status::Error("WAVE_FORMAT_EXTENSIBLE declares " + std::to_string(valid_bits) +
                           " valid bits in a " + std::to_string(info.bits) + "-bit container");
    }
  }

  if (code == kFormatPcm) {
    if (info.bits != 8 && info.bits != 16 && info.bits != 24 && info.bits != 32) {
      return Status::Error("unsupported PCM bit depth " + std::to_string(info.bits) +
                           " (supported: 8, 16, 24, 32)");
    }
  } else if (code == kFormatFloat) {
    if (info.bits != 32 && info.bits != 64) {
      return Status::Error("unsupported IEEE float bit depth " + std::to_string(info.bits) +
                           " (supported: 32, 64)");
    }
  } else {
    return Status::Error("unsupported WAV format code " + Hex16(code) + " (" + FormatCodeName(code) +
                         "); supported: PCM (0x0001), IEEE float (0x0003) and WAVE_FORMAT_EXTENSIBLE with "
                         "either");
  }
  info.code = code;

  if (info.channels == 0) return Status::Error("fmt chunk declares zero channels");
  if (rate < static_cast<uint32_t>(kMinWavSampleRate) || rate > static_cast<uint32_t>(kMaxWavSampleRate)) {
    return Status::Error("sample rate " + std::to_string(rate) + " Hz is outside the supported range " +
                         std::to_string(kMinWavSampleRate) + ".." + std::to_string(kMaxWavSampleRate) + " Hz");
  }
  info.sample_rate = static_cast<int>(rate);
  int expected_align = info.channels * (info.bits / 8);
  if (info.block_align != expected_align) {
    return Status::Error("block_align " + std::to_string(info.block_align) + " does not match " +
                         std::to_string(info.channels) + " channels x " + std::to_string(info.bits / 8) +
                         " bytes = " + std::to_string(expected_align));
  }
  return info;
}

// One sample of the given container format, scaled to nominal [-1, 1].
double DecodeSample(const uint8_t* p, const FormatInfo& f) {
  if (f.code == kFormatFloat) {
    if (f.bits == 32) {
      uint32_t u = ReadU32(p);
      float v;
      std::memcpy(&v, &u, sizeof(v));
      return v;
    }
    uint64_t u = static_cast<uint64_t>(ReadU32(p)) | (static_cast<uint64_t>(ReadU32(p + 4)) << 32);
    double v;
    std::memcpy(&v, &u, sizeof(v));
    return v;
  }
  switch (f.bits) {
    case 8: return (static_cast<int>(p[0]) - 128) / 128.0;  // 8-bit PCM is unsigned
    case 16: return static_cast<int16_t>(ReadU16(p)) / 32768.0;
    case 24: {
      int32_t v = static_cast<int32_t>(static_cast<uint32_t>(p[0]) << 8 | static_cast<uint32_t>(p[1]) << 16 |
                                       static_cast<uint32_t>(p[2]) << 24) >> 8;  // sign-extend
      return v / 8388608.0;
    }
    default: return static_cast<int32_t>(ReadU32(p)) / 2147483648.0;
  }
}

// A chunk that does not fit: either the file is cut short, or (when bytes follow the RIFF chunk) the RIFF
// size is wrong.
Status OverrunError(const uint8_t* id, size_t offset, uint32_t declared, size_t available, bool riff_ends_early) {
  return Status::Error("chunk " + ChunkIdForMessage(id) + " at offset " + std::to_string(offset) + " declares " +
                       std::to_string(declared) + " bytes but only " + std::to_string(available) + " remain " +
                       (riff_ends_early ? "in the RIFF chunk (its size field is too small)" : "(truncated file?)"));
}

}  // namespace

Expected<PcmAudio> DecodeWav(const uint8_t* bytes, size_t size) {
  if (bytes == nullptr || size < 12) {
    return Status::Error("not a WAV file: " + std::to_string(size) + " bytes is too short for a RIFF header");
  }
  if (!IdIs(bytes, "RIFF")) {
    if (IdIs(bytes, "RIFX")) return Status::Error("big-endian WAV (RIFX) is not supported");
    if (IdIs(bytes, "RF64")) return Status::Error("RF64 WAV is not supported");
    return Status::Error("not a WAV file: missing RIFF header");
  }
  if (!IdIs(bytes + 8, "WAVE")) {
    return Status::Error("not a WAV file: RIFF form type is " + ChunkIdForMessage(bytes + 8) + ", not 'WAVE'");
  }

  // The chunk walk stops at the end of the RIFF chunk or of the bytes present, whichever comes first.
  // Bytes after the RIFF chunk (tags some tools append) are ignored. A RIFF size beyond the bytes present is
  // not an error by itself (streaming writers leave it unset); the chunks themselves must then fit.
  const uint64_t riff_size = ReadU32(bytes + 4);
  if (riff_size < 4) return Status::Error("RIFF chunk size " + std::to_string(riff_size) + " is too small");
  const size_t end = static_cast<size_t>(std::min<uint64_t>(size, riff_size + 8));

  const uint8_t* fmt_body = nullptr;
  uint32_t fmt_size = 0;
  const uint8_t* data_body = nullptr;
  size_t data_size = 0;
  bool data_streaming = false;

  size_t pos = 12;
  while (pos < end) {
    const size_t remaining = end - pos;
    if (remaining < 8) {
      // A few zero bytes at the very end are padding some writers add; anything else is a cut-off header.
      bool all_zero = true;
      for (size_t i = pos; i < end; ++i) all_zero = all_zero && bytes[i] == 0;
      if (all_zero) break;
      return Status::Error("truncated chunk header at offset " + std::to_string(pos));
    }
    const uint8_t* id = bytes + pos;
    const uint32_t chunk_size = ReadU32(bytes + pos + 4);
    const uint8_t* body = bytes + pos + 8;
    const size_t available = remaining - 8;

    if (IdIs(id, "data")) {
      if (data_body != nullptr) return Status::Error("more than one data chunk");
      data_body = body;
      if (chunk_size == kStreamingSize) {
        // Writers that stream to a pipe cannot seek back to fill in the size and leave 0xFFFFFFFF: for the
        // data chunk only, that means "up to the end of the file" (a trailing partial frame is dropped).
        data_size = available;
        data_streaming = true;
        break;
      }
      if (chunk_size > available) {
        // A truncated data chunk is rejected rather than silently shortened: a cut-off download should
        // not transcribe as if it were complete.
        return OverrunError(id, pos, chunk_size, available, end < size);
      }
      data_size = chunk_size;
    } else {
      if (chunk_size > available) return OverrunError(id, pos, chunk_size, available, end < size);
      if (IdIs(id, "fmt ")) {
        if (fmt_body != nullptr) return Status::Error("more than one fmt chunk");
        fmt_body = body;
        fmt_size = chunk_size;
      }
    }
    // Odd-sized chunks are followed by a pad byte; a missing pad byte after the last chunk is tolerated.
    pos += 8 + static_cast<size_t>(chunk_size) + (chunk_size & 1u);
  }

  if (fmt_body == nullptr) return Status::Error("missing fmt chunk");
  if (data_body == nullptr) return Status::Error("missing data chunk");
  Expected<FormatInfo> parsed = ParseFormat(fmt_body, fmt_size);
  if (!parsed.ok()) return parsed.status();
  const FormatInfo& format = parsed.value();

  const size_t align = static_cast<size_t>(format.block_align);
  if (data_streaming) {
    data_size -= data_size % align;
  } else if (data_size % align != 0) {
    return Status::Error("data chunk size " + std::to_string(data_size) +
                         " is not a whole number of frames (block_align " + std::to_string(align) + ")");
  }
  const size_t frames = data_size / align;
  if (frames == 0) return Status::Error("no audio samples (empty data chunk)");

  PcmAudio audio;
  audio.sample_rate = format.sample_rate;
  audio.source_channels = format.channels;
  audio.source_bits = format.bits;
  audio.samples.resize(frames);  // bounded by the bytes present, never by a declared size

  const size_t bytes_per_sample = static_cast<size_t>(format.bits / 8);
  const double inverse_channels = 1.0 / format.channels;
  const bool is_float = format.code == kFormatFloat;
  for (size_t frame = 0; frame < frames; ++frame) {
    const uint8_t* p = data_body + frame * align;
    double sum = 0.0;
    for (int channel = 0; channel < format.channels; ++channel, p += bytes_per_sample) {
      double v = DecodeSample(p, format);
      // Non-finite or absurd samples would poison every feature downstream; reject them, never guess.
      if (is_float && !(std::fabs(v) <= kMaxFloatWavMagnitude)) {
        const std::string where =
            "float sample " + std::to_string(frame) + " (channel " + std::to_string(channel) + ")";
        if (std::isnan(v)) return Status::Error(where + " is NaN");
        if (std::isinf(v)) return Status::Error(where + " is infinite");
        return Status::Error(where + " has magnitude " + std::to_string(std::fabs(v)) +
                             "; float samples are expected in about [-1, 1]");
      }
      sum += v;
    }
    audio.samples[frame] = static_cast<float>(sum * inverse_channels);
  }
  return audio;
}

}  // namespace earshot
