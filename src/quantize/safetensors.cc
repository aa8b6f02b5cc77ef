#include "quantize/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "kernels/f16.h"

namespace earshot {
namespace {

// bfloat16 is the upper half of a float32.
float BFloat16ToF32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

namespace {

using json = nlohmann::json;

// Real headers are a few hundred KiB at most; this bounds what a hostile file can make us allocate.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int64_t kMaxElements = int64_t{1} << 40;

Status ParseTensorEntry(const std::string& name, const json& entry, uint64_t data_bytes, SafeTensorInfo* out) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) return Status::Error(where + ": header entry is not an object");
  auto dtype = entry.find("dtype");
  auto shape = entry.find("shape");
  auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) return Status::Error(where + ": missing dtype");
  if (shape == entry.end() || !shape->is_array()) return Status::Error(where + ": missing shape");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    return Status::Error(where + ": data_offsets must be two unsigned integers");
  }
  out->name = name;
  out->dtype = dtype->get<std::string>();
  const size_t elem = SafeTensorDTypeSize(out->dtype);
  if (elem == 0) return Status::Error(where + ": unknown dtype '" + out->dtype + "'");
  if (shape->size() > 8) return Status::Error(where + ": rank " + std::to_string(shape->size()) + " is too high");
  int64_t numel = 1;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned()) return Status::Error(where + ": shape holds a value that is not a size");
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(kMaxElements)) return Status::Error(where + ": dimension too large");
    out->shape.push_back(static_cast<int64_t>(v));
    if (v != 0 && numel > kMaxElements / static_cast<int64_t>(v)) return Status::Error(where + ": too many elements");
    numel *= static_cast<int64_t>(v);
  }
  out->begin = (*offsets)[0].get<uint64_t>();
  out->end = (*offsets)[1].get<uint64_t>();
  if (out->begin > out->end || out->end > data_bytes) {
    return Status::Error(where + ": data_offsets [" + std::to_string(out->begin) + ", " + std::to_string(out->end) +
                         "] fall outside the " + std::to_string(data_bytes) + "-byte data section");
  }
  if (out->end - out->begin != static_cast<uint64_t>(numel) * elem) {
    return Status::Error(where + ": " + std::to_string(out->end - out->begin) + " bytes for " + out->dtype +
                         " shape of " + std::to_string(numel) + " elements");
  }
  return Status::Ok();
}

}  // namespace

int64_t SafeTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t SafeTensorDTypeSize(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

Expected<SafeTensorsFile> SafeTensorsFile::Open(const std::string& path) {
  const std::string where = "safetensors '" + path + "'";
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::Error(where + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::Error(where + ": not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::FILE* raw = std::fopen(path.c_str(), "rb");
  if (!raw) return Status::Error(where + ": cannot open: " + std::strerror(errno));
  SafeTensorsFile f;
  f.path_ = path;
  f.file_.reset(raw, [](std::FILE* p) { std::fclose(p); });

  uint8_t len_bytes[8];
  if (file_size < 8 || std::fread(len_bytes, 1, 8, raw) != 8) return Status::Error(where + ": file too short");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len < 2 || header_len > kMaxHeaderBytes || header_len > file_size - 8) {
    return Status::Error(where + ": header length " + std::to_string(header_len) + " does not fit the " +
                         std::to_string(file_size) + "-byte file");
  }
  std::string header(static_cast<size_t>(header_len), '\0');
  if (std::fread(&header[0], 1, header.size(), raw) != header.size()) {
    return Status::Error(where + ": cannot read the header");
  }
  f.data_start_ = 8 + header_len;
  const uint64_t data_bytes = file_size - f.data_start_;

  json root;
  try {
    root = json::parse(header);
  } catch (const std::exception& e) {
    return Status::Error(where + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) return Status::Error(where + ": header is not a JSON object");
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Status::Error(where + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (m->is_string()) f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    SafeTensorInfo info;
    EARSHOT_RETURN_IF_ERROR(ParseTensorEntry(it.key(), *it, data_bytes, &info).With(where));
    f.index_[info.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(info));
  }
  // Tensors must not share bytes (the format requires a packed, non-overlapping data section).
  std::vector<const SafeTensorInfo*> by_offset;
  for (const SafeTensorInfo& t : f.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafeTensorInfo* a, const SafeTensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return Status::Error(where + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                           "' overlap");
    }
  }
  return f;
}

const SafeTensorInfo* SafeTensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Expected<std::vector<uint8_t>> SafeTensorsFile::ReadRaw(const std::string& name) const {
  const SafeTensorInfo* t = Find(name);
  if (!t) return Status::Error("safetensors '" + path_ + "': no tensor '" + name + "'");
  std::vector<uint8_t> bytes;
  const uint64_t n = t->end - t->begin;
  try {
    bytes.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return Status::Error("out of memory reading tensor '" + name + "' (" + std::to_string(n) + " bytes)");
  }
  if (n == 0) return bytes;
  if (fseeko(file_.get(), static_cast<off_t>(data_start_ + t->begin), SEEK_SET) != 0 ||
      std::fread(bytes.data(), 1, bytes.size(), file_.get()) != bytes.size()) {
    return Status::Error("safetensors '" + path_ + "': cannot read tensor '" + name + "'");
  }
  return bytes;
}

Expected<std::vector<float>> SafeTensorsFile::ReadFloat32(const std::string& name) const {
  const SafeTensorInfo* t = Find(name);
  if (!t) return Status::Error("safetensors '" + path_ + "': no tensor '" + name + "'");
  if (t->dtype != "F32" && t->dtype != "F16" && t->dtype != "BF16" && t->dtype != "F64") {
    return Status::Error("tensor '" + name + "' has dtype " + t->dtype + "; only F32, F16, BF16 and F64 are supported");
  }
  EARSHOT_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, ReadRaw(name));
  const size_t n = static_cast<size_t>(t->numel());
  std::vector<float> out(n);
  const uint8_t* p = raw.data();
  if (t->dtype == "F32") {
    std::memcpy(out.data(), p, n * 4);
  } else if (t->dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    const bool bf16 = t->dtype == "BF16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = bf16 ? BFloat16ToF32(h) : F16ToF32(h);
    }
  }
  return out;
}

SafeTensorToWrite MakeSafeTensor(const std::string& name, const std::vector<int64_t>& shape,
                                 const std::vector<float>& values, const std::string& dtype) {
  SafeTensorToWrite t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  const size_t n = values.size();
  if (dtype == "F16" || dtype == "BF16") {
    t.data.resize(2 * n);
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      if (dtype == "F16") {
        h = F32ToF16(values[i]);
      } else {  // round to nearest even on the upper 16 bits (NaN kept quiet)
        uint32_t u;
        std::memcpy(&u, &values[i], 4);
        h = (u & 0x7FFFFFFF) > 0x7F800000 ? static_cast<uint16_t>((u >> 16) | 0x40)
                                          : static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
      }
      std::memcpy(&t.data[2 * i], &h, 2);
    }
  } else if (dtype == "F64") {
    t.data.resize(8 * n);
    for (size_t i = 0; i < n; ++i) {
      const double d = values[i];
      std::memcpy(&t.data[8 * i], &d, 8);
    }
  } else {
    t.dtype = "F32";
    t.data.resize(4 * n);
    if (n) std::memcpy(t.data.data(), values.data(), 4 * n);
  }
  return t;
}

Status WriteSafeTensors(const std::string& path, const std::vector<SafeTensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafeTensorToWrite& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::Error("cannot create '" + path + "': " + std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  // Data in the same order as the offsets assigned above (JSON object order is irrelevant).
  for (const SafeTensorToWrite& t : tensors) {
    if (ok && !t.data.empty()) ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::Error("cannot write '" + path + "'");
  return Status::Ok();
}

}  // namespace earshot
