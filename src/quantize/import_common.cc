// Pieces shared by the checkpoint and Whisper importers.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "kernels/f16.h"
#include "quantize/import_util.h"
#include "quantize/importers.h"
#include "quantize/quantize_uniform.h"
#include "quantize/safetensors.h"

namespace earshot {

// ---- files and JSON -----------------------------------------------------------------------------------------

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Expected<Json> ReadJsonFile(const std::string& path) {
  if (!FileExists(path)) return Status::Error("'" + path + "' is missing");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot open '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return Json::parse(text.str());
  } catch (const std::exception& e) {
    return Status::Error("'" + path + "' is not valid JSON (" + e.what() + ")");
  }
}

bool JsonFields::Has(const std::string& key) const { return Get(key) != nullptr; }

const Json* JsonFields::Get(const std::string& key) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() || it->is_null() ? nullptr : &*it;
}

Status JsonFields::Int(const std::string& key, int* out, bool required) const {
  const Json* v = Get(key);
  if (!v) return required ? Status::Error(where_ + ": \"" + key + "\" is missing") : Status::Ok();
  if (!v->is_number_integer() || v->get<int64_t>() < INT32_MIN || v->get<int64_t>() > INT32_MAX) {
    return Status::Error(where_ + ": \"" + key + "\" must be an integer, not " + v->dump());
  }
  *out = v->get<int>();
  return Status::Ok();
}

Status JsonFields::Bool(const std::string& key, bool* out) const {
  const Json* v = Get(key);
  if (!v) return Status::Ok();
  if (!v->is_boolean()) return Status::Error(where_ + ": \"" + key + "\" must be true or false");
  *out = v->get<bool>();
  return Status::Ok();
}

Status JsonFields::String(const std::string& key, std::string* out) const {
  const Json* v = Get(key);
  if (!v) return Status::Ok();
  if (!v->is_string()) return Status::Error(where_ + ": \"" + key + "\" must be a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status JsonFields::IntList(const std::string& key, std::vector<int>* out) const {
  const Json* v = Get(key);
  if (!v) return Status::Ok();
  if (!v->is_array()) return Status::Error(where_ + ": \"" + key + "\" must be a list of integers");
  out->clear();
  for (const Json& x : *v) {
    if (!x.is_number_integer() || x.get<int64_t>() < INT32_MIN || x.get<int64_t>() > INT32_MAX) {
      return Status::Error(where_ + ": \"" + key + "\" holds " + x.dump() + ", not an integer");
    }
    out->push_back(x.get<int>());
  }
  return Status::Ok();
}

// ---- safetensors sources ------------------------------------------------------------------------------------

namespace {

Status AddFileTensors(const std::shared_ptr<SafeTensorsFile>& file, const std::set<std::string>* only,
                      std::map<std::string, SourceTensor>* out) {
  for (const SafeTensorInfo& info : file->tensors()) {
    if (only && !only->count(info.name)) continue;
    if (out->count(info.name)) {
      return Status::Error("tensor '" + info.name + "' appears in more than one file (" + file->path() + ")");
    }
    SourceTensor t;
    t.source_name = info.name;
    t.dtype = info.dtype;
    t.shape = info.shape;
    const std::string name = info.name;
    t.read = [file, name]() { return file->ReadFloat32(name); };
    out->emplace(info.name, std::move(t));
  }
  return Status::Ok();
}

}  // namespace

Expected<std::map<std::string, SourceTensor>> ListSafetensors(const std::string& dir) {
  std::map<std::string, SourceTensor> out;
  const std::string single = JoinPath(dir, "model.safetensors");
  const std::string index_path = JoinPath(dir, "model.safetensors.index.json");
  if (FileExists(single)) {
    EARSHOT_ASSIGN_OR_RETURN(SafeTensorsFile file, SafeTensorsFile::Open(single));
    EARSHOT_RETURN_IF_ERROR(AddFileTensors(std::make_shared<SafeTensorsFile>(std::move(file)), nullptr, &out));
    return out;
  }
  if (!FileExists(index_path)) {
    std::string hint;
    if (FileExists(JoinPath(dir, "pytorch_model.bin"))) {
      hint =
          " (only pytorch_model.bin is there: PyTorch pickles are not read; save the model with "
          "safe_serialization=True)";
    }
    return Status::Error("'" + dir + "' has neither model.safetensors nor model.safetensors.index.json" + hint);
  }
  EARSHOT_ASSIGN_OR_RETURN(Json index, ReadJsonFile(index_path));
  const Json* map = index.is_object() && index.contains("weight_map") ? &index["weight_map"] : nullptr;
  if (!map || !map->is_object() || map->empty()) {
    return Status::Error("'" + index_path + "' has no \"weight_map\" object");
  }
  std::map<std::string, std::set<std::string>> names_by_file;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it->is_string()) return Status::Error("'" + index_path + "': the shard of '" + it.key() + "' is not a string");
    const std::string shard = it->get<std::string>();
    // Shards live next to the index: no paths, so a hostile index cannot point elsewhere.
    if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
        shard == "." || shard == "..") {
      return Status::Error("'" + index_path + "': shard name '" + shard + "' is not a plain file name");
    }
    names_by_file[shard].insert(it.key());
  }
  for (const auto& [shard, names] : names_by_file) {
    EARSHOT_ASSIGN_OR_RETURN(SafeTensorsFile file, SafeTensorsFile::Open(JoinPath(dir, shard)));
    auto shared = std::make_shared<SafeTensorsFile>(std::move(file));
    for (const std::string& n : names) {
      if (!shared->Find(n))
        return Status::Error("'" + index_path + "' places '" + n + "' in " + shard + ", which lacks it");
    }
    EARSHOT_RETURN_IF_ERROR(AddFileTensors(shared, &names, &out));
  }
  return out;
}

// ---- tensor conversion ----------------------------------------------------------------------------------

std::vector<float> WhisperSinusoids(int length, int channels) {
  std::vector<float> out(static_cast<size_t>(length) * channels);
  const int half = channels / 2;
  // Evaluated as PyTorch does: the increment in double, rounded once to float, then float arithmetic.
  const float neg_increment = static_cast<float>(-std::log(10000.0) / (half - 1));
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = std::exp(neg_increment * static_cast<float>(i));
  for (int t = 0; t < length; ++t) {
    for (int i = 0; i < half; ++i) {
      const float x = static_cast<float>(t) * inv[i];
      out[static_cast<size_t>(t) * channels + i] = std::sin(x);
      out[static_cast<size_t>(t) * channels + half + i] = std::cos(x);
    }
  }
  return out;
}

namespace {

// How far a stored copy of the sinusoids may be from ours: float32 evaluation differences, or the rounding of
// a lower-precision checkpoint.
float SinusoidTolerance(const std::string& dtype) {
  if (dtype == "F16") return 1e-3f;
  if (dtype == "BF16") return 4e-3f;
  return 1e-5f;
}

// The angle at position t is t * inv_timescale in float32; one ulp of difference in inv_timescale between
// exp() implementations moves it by up to ~t * 1.2e-7, which is also the change in sin/cos. Hence a tolerance
// that grows with the position (6e-4 at position 1500, far below what a learned embedding differs by).
bool MatchesSinusoids(const std::vector<float>& values, int length, int channels, float tolerance) {
  if (channels < 4 || channels % 2 != 0) return false;
  const std::vector<float> expected = WhisperSinusoids(length, channels);
  if (expected.size() != values.size()) return false;
  for (int t = 0; t < length; ++t) {
    const float tol = tolerance + 4e-7f * static_cast<float>(t);
    for (int c = 0; c < channels; ++c) {
      const size_t i = static_cast<size_t>(t) * channels + c;
      if (!(std::fabs(values[i] - expected[i]) <= tol)) return false;
    }
  }
  return true;
}

Expected<TensorData> EncodeFloats(const std::string& name, const std::vector<int64_t>& shape,
                                  const std::vector<float>& values, DType dtype) {
  TensorData t;
  t.name = name;
  t.shape = shape;
  t.dtype = dtype;
  if (dtype == DType::F32) {
    t.data.resize(values.size() * 4);
    if (!values.empty()) std::memcpy(t.data.data(), values.data(), values.size() * 4);
    return t;
  }
  t.data.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::fabs(values[i]) > 65504.0f) {
      return Status::Error("tensor '" + name + "' holds " + std::to_string(values[i]) +
                           ", beyond the f16 range: import with --dtype f32");
    }
    const uint16_t h = F32ToF16(values[i]);
    std::memcpy(&t.data[2 * i], &h, 2);
  }
  return t;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Described(const SourceTensor& src, const std::string& canonical) {
  return src.source_name == canonical ? "'" + canonical + "'" : "'" + src.source_name + "' ('" + canonical + "')";
}

}  // namespace

Expected<std::vector<TensorData>> ConvertCheckpointTensors(const HyperParams& hp,
                                                           const std::map<std::string, SourceTensor>& source,
                                                           const ImportOptions& options,
                                                           std::vector<std::string>* notes) {
  const bool quantize = options.matrix_dtype == DType::I8 || options.matrix_dtype == DType::I4;
  if (quantize && options.matrix_dtype == DType::I4 &&
      (options.group_size < 2 || options.group_size % 2 != 0)) {
    return Status::Error("the int4 group size must be even, not " + std::to_string(options.group_size));
  }
  const std::vector<TensorSpec> specs = ExpectedTensorSpecs(hp);
  std::map<std::string, const TensorSpec*> by_name;
  for (const TensorSpec& s : specs) by_name[s.name] = &s;

  for (const auto& [name, src] : source) {
    if (by_name.count(name)) continue;
    const bool key_bias = EndsWith(name, ".key.bias") && by_name.count(name.substr(0, name.size() - 5) + ".weight");
    if (!key_bias) {
      return Status::Error("unknown tensor " + Described(src, name) +
                           " (not part of a Whisper model with these hyper-parameters)");
    }
    // Whisper's key projections have no bias; a zero one (e.g. from a generic Linear) changes nothing.
    EARSHOT_ASSIGN_OR_RETURN(std::vector<float> bias, src.read());
    for (float b : bias) {
      if (b != 0.0f) {
        return Status::Error("tensor " + Described(src, name) +
                             " is not zero: Whisper's key projection has no bias, so this model is not supported");
      }
    }
    notes->push_back("dropped the all-zero key bias " + src.source_name);
  }

  std::vector<TensorData> out;
  for (const TensorSpec& spec : specs) {
    auto it = source.find(spec.name);
    if (it == source.end()) {
      if (spec.required) return Status::Error("the checkpoint lacks tensor '" + spec.name + "'");
      continue;
    }
    const SourceTensor& src = it->second;
    if (src.shape != spec.shape) {
      return Status::Error("tensor " + Described(src, spec.name) + " has shape " + ShapeToString(src.shape) +
                           "; these hyper-parameters need " + ShapeToString(spec.shape));
    }
    EARSHOT_ASSIGN_OR_RETURN(std::vector<float> values, src.read());
    for (float v : values) {
      if (!std::isfinite(v)) return Status::Error("tensor " + Described(src, spec.name) + " holds NaN or infinity");
    }
    if (spec.name == "encoder.positional_embedding" &&
        MatchesSinusoids(values, hp.n_audio_ctx, hp.n_audio_state, SinusoidTolerance(src.dtype))) {
      notes->push_back(
          "dropped encoder.positional_embedding: it equals Whisper's sinusoids, which the engine computes");
      continue;
    }
    if (quantize && IsQuantizableRole(spec.role)) {
      std::string why;
      const DType q = UniformTensorDType(spec.role, static_cast<int64_t>(values.size()) / spec.shape[0],
                                         options.matrix_dtype, options.group_size, &why);
      if (!why.empty()) notes->push_back(spec.name + ": " + why);
      EARSHOT_ASSIGN_OR_RETURN(TensorData t, QuantizeUniform(spec.name, spec.shape, values, q, options.group_size));
      out.push_back(std::move(t));
      continue;
    }
    const DType dtype = !IsMatrixRole(spec.role) ? DType::F32 : quantize ? DType::F16 : options.matrix_dtype;
    EARSHOT_ASSIGN_OR_RETURN(TensorData t, EncodeFloats(spec.name, spec.shape, values, dtype));
    out.push_back(std::move(t));
  }
  return out;
}

Status CheckModelFits(const HyperParams& hp, const ImportOptions& options) {
  uint64_t bytes = 0;
  for (const TensorSpec& s : ExpectedTensorSpecs(hp)) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    bytes += n * ((IsMatrixRole(s.role) && options.matrix_dtype != DType::F32) ? 2 : 4) + 64;
  }
  bytes += static_cast<uint64_t>(hp.n_vocab) * 16 + (1 << 20);  // vocabulary and metadata, generously
  if (bytes > kMaxModelFileBytes) {
    return Status::Error("this model needs about " + std::to_string(bytes >> 20) + " MiB as " +
                         DTypeName(options.matrix_dtype) +
                         ", over the 2 GB limit of .earshot files (FlatBuffers offsets) and of what a wasm32 "
                         "browser page can hold; use a smaller model" +
                         (options.matrix_dtype == DType::F32 ? " or --dtype f16" : ""));
  }
  return Status::Ok();
}

Status WriteModelFile(const ImportedModel& model, const std::string& path) {
  EARSHOT_ASSIGN_OR_RETURN(AlignedBuffer bytes, SerializeModel(model.meta, model.tensors));
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::Error("cannot create '" + tmp + "': " + std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    return Status::Error("cannot write '" + path + "' (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::Error("cannot rename '" + tmp + "' to '" + path + "': " + reason);
  }
  return Status::Ok();
}

}  // namespace earshot
