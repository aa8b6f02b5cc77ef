// Self-attention key/value cache of the decoder: per layer, per row (beam), per position, d values.
//
// Memory: each (layer, keys|values) pair is its own slab [max_rows][capacity][d], so no single allocation is
// as large as the whole cache (the slabs can reuse blocks the encoder freed), and capacity grows with the
// decoded length (EnsurePositions) instead of being sized for the longest possible decode up front.
#pragma once

#include <cstddef>
#include <vector>

#include "core/status.h"
#include "kernels/float_buffer.h"

namespace earshot {

class KvCache {
 public:
  // Positions are added in steps of this many (bounded by max_positions), so a decode grows the cache a
  // few times, not once per token.
  static constexpr int kGrowthStep = 128;

  // Sets the cache's limits: `max_rows` rows of up to `max_positions` positions, all layers. Allocates
  // nothing (see EnsurePositions). Length starts at 0.
  Status Allocate(int n_layers, int max_rows, int max_positions, int d);

  // Makes room for `positions` positions per row (<= max_positions), keeping the cached ones. Growing moves
  // one slab at a time, so it needs at most one slab of extra memory while it runs.
  Status EnsurePositions(int positions);

  int length() const { return length_; }
  int max_rows() const { return max_rows_; }
  int max_positions() const { return max_positions_; }
  int capacity() const { return capacity_; }  // positions allocated per row
  size_t allocated_floats() const;            // all slabs together
  void set_length(int length) { length_ = length; }
  void Clear() { length_ = 0; }

  float* keys(int layer, int row) { return Slot(0, layer, row); }
  float* values(int layer, int row) { return Slot(1, layer, row); }
  size_t row_stride() const { return static_cast<size_t>(d_); }  // floats between positions

  // Row i becomes a copy of old row source_rows[i] (first `length` positions only). Rows that keep their
  // own contents are not touched, only the filled part is copied, and rows are moved in place (a row is
  // parked in staging only to break a cycle of moves).
  Status Reorder(const std::vector<int>& source_rows);

 private:
  FloatBuffer& Slab(int kv, int layer) { return slabs_[static_cast<size_t>(kv) * n_layers_ + layer]; }
  float* Slot(int kv, int layer, int row) {
    return Slab(kv, layer).data() + static_cast<size_t>(row) * capacity_ * d_;
  }

  std::vector<FloatBuffer> slabs_;  // [keys|values][layer], each [max_rows][capacity][d]
  FloatBuffer staging_;             // rows parked while a cycle of moves is broken (usually none or one)
  int n_layers_ = 0, max_rows_ = 0, max_positions_ = 0, d_ = 0, length_ = 0, capacity_ = 0;
};

}  // namespace earshot
