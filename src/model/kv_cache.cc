#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "core/thread_pool.h"

namespace earshot {

Status KvCache::Allocate(int n_layers, int max_rows, int max_positions, int d) {
  if (n_layers < 1 || max_rows < 1 || max_positions < 1 || d < 1)
    return Status::Error("invalid key/value cache size");
  const double total = 2.0 * n_layers * max_rows * static_cast<double>(max_positions) * d;
  if (total > static_cast<double>(std::numeric_limits<size_t>::max() / sizeof(float)) || total > 1e10)
    return Status::Error("key/value cache would be too large");
  slabs_.clear();
  slabs_.resize(static_cast<size_t>(2) * n_layers);
  staging_ = FloatBuffer();
  n_layers_ = n_layers;
  max_rows_ = max_rows;
  max_positions_ = max_positions;
  d_ = d;
  length_ = 0;
  capacity_ = 0;
  return Status::Ok();
}

size_t KvCache::allocated_floats() const {
  size_t total = 0;
  for (const FloatBuffer& s : slabs_) total += s.capacity();
  return total;
}

Status KvCache::EnsurePositions(int positions) {
  if (positions <= capacity_) return Status::Ok();
  if (positions > max_positions_)
    return Status::Error("key/value cache: " + std::to_string(positions) + " positions exceed the limit of " +
                         std::to_string(max_positions_));
  // Round up to the growth step; the last step stops at max_positions.
  const int grown = std::min(max_positions_, (positions + kGrowthStep - 1) / kGrowthStep * kGrowthStep);
  const size_t slab_floats = static_cast<size_t>(max_rows_) * grown * d_;
  const size_t old_row = static_cast<size_t>(capacity_) * d_, new_row = static_cast<size_t>(grown) * d_;
  const size_t kept = static_cast<size_t>(length_) * d_;
  for (FloatBuffer& slab : slabs_) {
    FloatBuffer fresh;
    EARSHOT_RETURN_IF_ERROR(fresh.Reserve(slab_floats, "the decoder's key/value cache"));
    if (kept > 0)
      for (int r = 0; r < max_rows_; ++r)
        std::memcpy(fresh.data() + r * new_row, slab.data() + r * old_row, kept * sizeof(float));
    slab = std::move(fresh);  // frees the old slab before the next one grows
  }
  capacity_ = grown;
  return Status::Ok();
}

Status KvCache::Reorder(const std::vector<int>& source_rows) {
  const int n = static_cast<int>(source_rows.size());
  if (n > max_rows_) return Status::Error("beam reorder: more rows than the cache holds");
  for (int src : source_rows)
    if (src < 0 || src >= max_rows_) return Status::Error("beam reorder: source row out of range");
  if (length_ == 0) return Status::Ok();

  // Plan the moves once (the same for every slab) so that each row is overwritten only after every row
  // that reads it has been written; a cycle of rows is broken by parking one row in a staging slot. Beam
  // search rarely forms cycles, so staging holds one row where a copy of every moved row used to be made.
  struct Move {
    int dst, src;  // rows >= 0; staging slot s as -1 - s
  };
  std::vector<Move> plan;
  std::vector<int> pending, source(source_rows);
  std::vector<int> readers(static_cast<size_t>(max_rows_), 0), slot_readers;
  for (int i = 0; i < n; ++i)
    if (source[i] != i) {
      pending.push_back(i);
      ++readers[source[i]];
    }
  if (pending.empty()) return Status::Ok();
  int slots = 0;
  while (!pending.empty()) {
    auto ready = std::find_if(pending.begin(), pending.end(), [&](int row) { return readers[row] == 0; });
    if (ready == pending.end()) {
      // Every pending row is still read by another: park the first one.
      const int row = pending.front();
      int slot = static_cast<int>(std::find(slot_readers.begin(), slot_readers.end(), 0) - slot_readers.begin());
      if (slot == static_cast<int>(slot_readers.size())) slot_readers.push_back(0);
      slots = std::max(slots, slot + 1);
      plan.push_back({-1 - slot, row});
      for (int i : pending)
        if (source[i] == row) {
          source[i] = -1 - slot;
          ++slot_readers[slot];
        }
      readers[row] = 0;
      continue;
    }
    const int row = *ready;
    plan.push_back({row, source[row]});
    if (source[row] >= 0)
      --readers[source[row]];
    else
      --slot_readers[-1 - source[row]];
    pending.erase(ready);
  }

  const size_t row_floats = static_cast<size_t>(length_) * d_;
  // Slabs (the keys or the values of one layer) are independent: threads take whole slabs, each thread with its
  // own staging slots. (Late in a long beam search the moves copy megabytes per step.)
  const int n_slabs = 2 * n_layers_;
  const int64_t copied = static_cast<int64_t>(plan.size()) * n_slabs * static_cast<int64_t>(row_floats);
  const int lanes = std::max(1, std::min({TaskCountFor(copied, n_slabs), ParallelWidth(), n_slabs}));
  // Sized by capacity, not length, so that it is not reallocated at every step.
  const size_t slot_stride = static_cast<size_t>(capacity_) * d_;
  EARSHOT_RETURN_IF_ERROR(
      staging_.Reserve(static_cast<size_t>(slots) * lanes * slot_stride, "the beam reorder buffer"));
  ParallelForSlots(n_slabs, lanes, [&](int slab, int lane) {
    const int kv = slab / n_layers_, layer = slab % n_layers_;
    float* staging = staging_.data() + static_cast<size_t>(lane) * slots * slot_stride;
    auto at = [&](int code) {
      return code >= 0 ? Slot(kv, layer, code) : staging + static_cast<size_t>(-1 - code) * slot_stride;
    };
    for (const Move& m : plan) std::memcpy(at(m.dst), at(m.src), row_floats * sizeof(float));
  });
  return Status::Ok();
}

}  // namespace earshot
