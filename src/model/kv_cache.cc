#include "model/kv_cache.h"

#include <cstring>
#include <limits>
#include <string>

namespace earshot {

Status KvCache::Allocate(int n_layers, int max_rows, int max_positions, int d) {
  if (n_layers < 1 || max_rows < 1 || max_positions < 1 || d < 1)
    return Status::Error("invalid key/value cache size");
  const double total = 2.0 * n_layers * max_rows * static_cast<double>(max_positions) * d;
  if (total > static_cast<double>(std::numeric_limits<size_t>::max() / sizeof(float)) || total > 1e10)
    return Status::Error("key/value cache would be too large");
  EARSHOT_RETURN_IF_ERROR(data_.Reserve(static_cast<size_t>(total), "the decoder's key/value cache"));
  n_layers_ = n_layers;
  max_rows_ = max_rows;
  max_positions_ = max_positions;
  d_ = d;
  length_ = 0;
  return Status::Ok();
}

Status KvCache::Reorder(const std::vector<int>& source_rows) {
  const int n = static_cast<int>(source_rows.size());
  if (n > max_rows_) return Status::Error("beam reorder: more rows than the cache holds");
  for (int src : source_rows)
    if (src < 0 || src >= max_rows_) return Status::Error("beam reorder: source row out of range");
  std::vector<int> moved;
  for (int i = 0; i < n; ++i)
    if (source_rows[i] != i) moved.push_back(i);
  if (moved.empty() || length_ == 0) return Status::Ok();
  const size_t row_floats = static_cast<size_t>(length_) * d_;
  EARSHOT_RETURN_IF_ERROR(staging_.Reserve(moved.size() * row_floats, "the beam reorder buffer"));
  for (int kv = 0; kv < 2; ++kv) {
    for (int layer = 0; layer < n_layers_; ++layer) {
      // Gather every moved row's source first: a source may itself be overwritten by this reorder.
      for (size_t j = 0; j < moved.size(); ++j)
        std::memcpy(staging_.data() + j * row_floats, Slot(kv, layer, source_rows[moved[j]]),
                    row_floats * sizeof(float));
      for (size_t j = 0; j < moved.size(); ++j)
        std::memcpy(Slot(kv, layer, moved[j]), staging_.data() + j * row_floats, row_floats * sizeof(float));
    }
  }
  return Status::Ok();
}

}  // namespace earshot
