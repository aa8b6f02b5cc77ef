// Self-attention key/value cache of the decoder: per layer, per row (beam), per position, d values.
#pragma once

#include <cstddef>
#include <vector>

#include "core/status.h"
#include "kernels/float_buffer.h"

namespace earshot {

class KvCache {
 public:
  // Room for `max_rows` rows of `max_positions` positions, all layers. Length starts at 0.
  Status Allocate(int n_layers, int max_rows, int max_positions, int d);

  int length() const { return length_; }
  int max_rows() const { return max_rows_; }
  int max_positions() const { return max_positions_; }
  void set_length(int length) { length_ = length; }
  void Clear() { length_ = 0; }

  float* keys(int layer, int row) { return Slot(0, layer, row); }
  float* values(int layer, int row) { return Slot(1, layer, row); }
  size_t row_stride() const { return static_cast<size_t>(d_); }  // floats between positions

  // Row i becomes a copy of old row source_rows[i] (first `length` positions only). Rows that keep their
  // own contents are not touched, and only the filled part is copied.
  Status Reorder(const std::vector<int>& source_rows);

 private:
  float* Slot(int kv, int layer, int row) {
    return data_.data() + ((static_cast<size_t>(kv) * n_layers_ + layer) * max_rows_ + row) *
                              static_cast<size_t>(max_positions_) * d_;
  }

  FloatBuffer data_;
  FloatBuffer staging_;  // rows being moved, so that sources are read before they are overwritten
  int n_layers_ = 0, max_rows_ = 0, max_positions_ = 0, d_ = 0, length_ = 0;
};

}  // namespace earshot
