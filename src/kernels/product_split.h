// How a matrix product y[M, N] is cut into tasks for the thread pool: a grid of row ranges x column ranges
// whose edges fall on the kernels' own block boundaries. Outputs are partitioned, never reductions, so every
// element is computed by the same arithmetic whatever the cut.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/thread_pool.h"

namespace earshot {

class ProductSplit {
 public:
  // `work_per_output` is the cost of one output element (K multiply-adds). Columns are cut first (each task
  // then reads only its part of the weights), rows only when there are too few column blocks.
  ProductSplit(int M, int N, int64_t work_per_output, int row_grain, int col_grain)
      : M_(M), N_(N), row_grain_(row_grain), col_grain_(col_grain) {
    const int64_t row_units = (M + row_grain - 1) / row_grain, col_units = (N + col_grain - 1) / col_grain;
    const int64_t work = static_cast<int64_t>(M) * N * work_per_output;
    const int tasks = TaskCountFor(work, row_units * col_units);
    col_tasks_ = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(tasks, col_units)));
    row_tasks_ = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(tasks / col_tasks_, row_units)));
  }

  int tasks() const { return row_tasks_ * col_tasks_; }

  // Rows [m0, m1) and columns [n0, n1) of task t (m0 a multiple of row_grain, n0 of col_grain).
  void Range(int t, int* m0, int* m1, int* n0, int* n1) const {
    Cut(t / col_tasks_, row_tasks_, M_, row_grain_, m0, m1);
    Cut(t % col_tasks_, col_tasks_, N_, col_grain_, n0, n1);
  }

 private:
  static void Cut(int i, int parts, int size, int grain, int* lo, int* hi) {
    const int64_t units = (size + grain - 1) / grain;
    *lo = static_cast<int>(std::min<int64_t>(size, units * i / parts * grain));
    *hi = static_cast<int>(std::min<int64_t>(size, units * (i + 1) / parts * grain));
  }

  int M_, N_, row_grain_, col_grain_;
  int row_tasks_ = 1, col_tasks_ = 1;
};

}  // namespace earshot
