// Helpers shared by the importers' sources: JSON files with typed, well-explained field access, and the tensor
// listing of a folder's safetensors (single file or shards).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "quantize/importers.h"

namespace earshot {

using Json = nlohmann::json;

std::string JoinPath(const std::string& dir, const std::string& name);
bool FileExists(const std::string& path);
bool IsDirectory(const std::string& path);
std::string BaseName(const std::string& path);

// Parses a JSON file; a clear error (naming the file) when missing or malformed.
Expected<Json> ReadJsonFile(const std::string& path);

// Typed access to a JSON object's fields; errors name the file and the key.
class JsonFields {
 public:
  JsonFields(const Json& object, std::string where) : object_(object), where_(std::move(where)) {}
  bool Has(const std::string& key) const;
  Status Int(const std::string& key, int* out, bool required) const;
  Status Bool(const std::string& key, bool* out) const;
  Status String(const std::string& key, std::string* out) const;
  Status IntList(const std::string& key, std::vector<int>* out) const;
  const Json* Get(const std::string& key) const;  // null when absent
  const std::string& where() const { return where_; }

 private:
  const Json& object_;
  std::string where_;
};

// All tensors of DIR/model.safetensors, or of the shards listed in DIR/model.safetensors.index.json, keyed by
// their name in the checkpoint. The files stay open through the returned readers.
Expected<std::map<std::string, SourceTensor>> ListSafetensors(const std::string& dir);

}  // namespace earshot
