// File-reading half of the WAV reader, kept apart from DecodeWav so that builds without a file system (the
// browser module decodes bytes handed over by JavaScript) do not pull in stdio file access.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "audio/resample.h"
#include "audio/wav.h"

namespace earshot {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

Expected<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::Error("cannot open: " + std::string(std::strerror(errno)));
  if (std::fseek(file.get(), 0, SEEK_END) != 0) return Status::Error("cannot seek (not a regular file?)");
  long size = std::ftell(file.get());
  if (size < 0) return Status::Error("cannot determine the file size");
  if (static_cast<unsigned long>(size) > kMaxWavFileBytes) {
    return Status::Error("file is " + std::to_string(size) + " bytes; the limit is " +
                         std::to_string(kMaxWavFileBytes));
  }
  std::rewind(file.get());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    return Status::Error("read error");
  }
  return bytes;
}

}  // namespace

Expected<PcmAudio> ReadWavFile(const std::string& path) {
  Expected<std::vector<uint8_t>> bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status().With(path);
  Expected<PcmAudio> audio = DecodeWav(bytes->data(), bytes->size());
  if (!audio.ok()) return audio.status().With(path);
  return audio;
}

Expected<std::vector<float>> LoadAudio16k(const std::string& path) {
  EARSHOT_ASSIGN_OR_RETURN(PcmAudio audio, ReadWavFile(path));
  if (audio.sample_rate == 16000) return std::move(audio.samples);
  Expected<std::vector<float>> resampled =
      Resample(audio.samples.data(), audio.samples.size(), audio.sample_rate, 16000);
  if (!resampled.ok()) return resampled.status().With(path);
  return resampled;
}

}  // namespace earshot
