// Reading and writing .safetensors files (the Hugging Face tensor container): an 8-byte little-endian header
// length, a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then
// the data. Every offset, size and shape is checked against the file before anything is read or allocated.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace earshot {

struct SafeTensorInfo {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", ... as written
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
  int64_t numel() const;
};

class SafeTensorsFile {
 public:
  static Expected<SafeTensorsFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // In header order.
  const std::vector<SafeTensorInfo>& tensors() const { return tensors_; }
  const SafeTensorInfo* Find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor converted to float32 (from F32, F16, BF16 or F64); an error for other dtypes.
  Expected<std::vector<float>> ReadFloat32(const std::string& name) const;
  // The tensor's raw little-endian bytes.
  Expected<std::vector<uint8_t>> ReadRaw(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<std::FILE> file_;
  uint64_t data_start_ = 0;
  std::vector<SafeTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
size_t SafeTensorDTypeSize(const std::string& dtype);

struct SafeTensorToWrite {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Float values stored as F32, F16, BF16 (round to nearest even) or F64.
SafeTensorToWrite MakeSafeTensor(const std::string& name, const std::vector<int64_t>& shape,
                                 const std::vector<float>& values, const std::string& dtype = "F32");

Status WriteSafeTensors(const std::string& path, const std::vector<SafeTensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace earshot
