// The decoder's key/value cache: on-demand growth in steps (contents kept), reordering (also split across
// threads) after growth, limits;
// and AlignedBuffer's live/peak byte counters that the memory accounting relies on.
#include <gtest/gtest.h>

#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "model/kv_cache.h"

namespace earshot {
namespace {

constexpr int kLayers = 2, kRows = 3, kD = 4;

// A value that names its place: (kv, layer, row, position, channel).
float Tag(int kv, int layer, int row, int pos, int i) {
  return static_cast<float>(kv * 100000 + layer * 10000 + row * 1000 + pos * 10 + i);
}

void Fill(KvCache* c, int from, int to) {
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < kLayers; ++l)
      for (int r = 0; r < kRows; ++r) {
        float* p = kv ? c->values(l, r) : c->keys(l, r);
        for (int t = from; t < to; ++t)
          for (int i = 0; i < kD; ++i) p[t * c->row_stride() + i] = Tag(kv, l, r, t, i);
      }
  c->set_length(to);
}

// Row r at position t holds row source[r]'s tag.
void ExpectRows(KvCache* c, const std::vector<int>& source, int length) {
  for (int kv = 0; kv < 2; ++kv)
    for (int l = 0; l < kLayers; ++l)
      for (size_t r = 0; r < source.size(); ++r) {
        const float* p = kv ? c->values(l, static_cast<int>(r)) : c->keys(l, static_cast<int>(r));
        for (int t = 0; t < length; ++t)
          for (int i = 0; i < kD; ++i)
            ASSERT_EQ(p[t * c->row_stride() + i], Tag(kv, l, source[r], t, i))
                << "kv " << kv << " layer " << l << " row " << r << " pos " << t;
      }
}

TEST(KvCache, AllocatesOnDemandInSteps) {
  KvCache c;
  const int limit = 2 * KvCache::kGrowthStep + 30;
  ASSERT_TRUE(c.Allocate(kLayers, kRows, limit, kD).ok());
  EXPECT_EQ(c.capacity(), 0);
  EXPECT_EQ(c.allocated_floats(), 0u);
  ASSERT_TRUE(c.EnsurePositions(5).ok());
  EXPECT_EQ(c.capacity(), KvCache::kGrowthStep);
  const size_t per_position = static_cast<size_t>(2) * kLayers * kRows * kD;
  EXPECT_EQ(c.allocated_floats(), per_position * KvCache::kGrowthStep);
  ASSERT_TRUE(c.EnsurePositions(KvCache::kGrowthStep).ok());  // fits: no change
  EXPECT_EQ(c.capacity(), KvCache::kGrowthStep);
  ASSERT_TRUE(c.EnsurePositions(KvCache::kGrowthStep + 1).ok());
  EXPECT_EQ(c.capacity(), 2 * KvCache::kGrowthStep);
  ASSERT_TRUE(c.EnsurePositions(2 * KvCache::kGrowthStep + 1).ok());  // the last step stops at the limit
  EXPECT_EQ(c.capacity(), limit);
  EXPECT_EQ(c.allocated_floats(), per_position * limit);
  EXPECT_FALSE(c.EnsurePositions(limit + 1).ok());
  EXPECT_EQ(c.capacity(), limit);
}

TEST(KvCache, GrowingKeepsEveryRowsContents) {
  KvCache c;
  const int step = KvCache::kGrowthStep;
  ASSERT_TRUE(c.Allocate(kLayers, kRows, 3 * step, kD).ok());
  ASSERT_TRUE(c.EnsurePositions(10).ok());
  Fill(&c, 0, 10);
  ASSERT_TRUE(c.EnsurePositions(step + 2).ok());
  ExpectRows(&c, {0, 1, 2}, 10);
  Fill(&c, 10, step + 2);
  ASSERT_TRUE(c.EnsurePositions(3 * step).ok());
  ExpectRows(&c, {0, 1, 2}, step + 2);
}

TEST(KvCache, ReorderAfterGrowth) {
  KvCache c;
  ASSERT_TRUE(c.Allocate(kLayers, kRows, 200, kD).ok());
  ASSERT_TRUE(c.EnsurePositions(10).ok());
  Fill(&c, 0, 10);
  ASSERT_TRUE(c.EnsurePositions(150).ok());
  Fill(&c, 10, 70);
  ASSERT_TRUE(c.Reorder({2, 0, 0}).ok());  // row 0 takes row 2, rows 1 and 2 take old row 0
  ExpectRows(&c, {2, 0, 0}, 70);
  ASSERT_TRUE(c.Reorder({1}).ok());  // one row left: old row 1 (which held row 0)
  ExpectRows(&c, {0}, 70);
  EXPECT_FALSE(c.Reorder({0, 1, 2, 0}).ok());  // more rows than the cache holds
  EXPECT_FALSE(c.Reorder({3}).ok());
}

// Every source pattern of up to four rows (fan-out, dropped rows, swaps, longer cycles) against a copy of
// the old rows, with one thread and with two splitting the layers (each with its own staging for cycles).
TEST(KvCache, ReorderMatchesACopyForEveryPattern) {
  constexpr int kMax = 4, kLayersHere = 3;
  for (int threads : {1, 2}) {
    if (threads > MaxThreadCount()) continue;
    ASSERT_TRUE(SetThreadCount(threads).ok());
    SetMinTaskWork(threads > 1 ? 1 : 0);  // split even these small copies
    for (int n = 1; n <= kMax; ++n) {
      int patterns = 1;
      for (int i = 0; i < n; ++i) patterns *= kMax;
      for (int p = 0; p < patterns; ++p) {
        std::vector<int> src(n);
        for (int i = 0, code = p; i < n; ++i, code /= kMax) src[i] = code % kMax;
        KvCache c;
        ASSERT_TRUE(c.Allocate(kLayersHere, kMax, 8, 2).ok());
        ASSERT_TRUE(c.EnsurePositions(5).ok());
        for (int kv = 0; kv < 2; ++kv)
          for (int l = 0; l < kLayersHere; ++l)
            for (int r = 0; r < kMax; ++r)
              for (int t = 0; t < 8 * 2; ++t) (kv ? c.values(l, r) : c.keys(l, r))[t] = Tag(kv, l, r, t, 0);
        c.set_length(5);
        ASSERT_TRUE(c.Reorder(src).ok());
        for (int kv = 0; kv < 2; ++kv)
          for (int l = 0; l < kLayersHere; ++l)
            for (int r = 0; r < kMax; ++r) {
              const int from = r < n ? src[r] : r;  // rows past the new count are left alone
              const float* row = kv ? c.values(l, r) : c.keys(l, r);
              for (int t = 0; t < 5 * 2; ++t)
                ASSERT_EQ(row[t], Tag(kv, l, from, t, 0)) << "pattern " << p << " n " << n << " threads " << threads;
              for (int t = 5 * 2; t < 8 * 2; ++t) ASSERT_EQ(row[t], Tag(kv, l, r, t, 0));  // unfilled part untouched
            }
      }
    }
  }
  SetMinTaskWork(0);
  EXPECT_TRUE(SetThreadCount(1).ok());
}

TEST(KvCache, RejectsBadSizes) {
  KvCache c;
  EXPECT_FALSE(c.Allocate(0, 1, 1, 1).ok());
  EXPECT_FALSE(c.Allocate(1, 1, 1, 0).ok());
  EXPECT_FALSE(c.Allocate(1000, 1000, 100000, 1000).ok());  // declared far beyond any memory
}

TEST(AlignedBuffer, CountsLiveAndPeakBytes) {
  const size_t live0 = AlignedBuffer::LiveBytes();
  AlignedBuffer::ResetPeakBytes();
  EXPECT_EQ(AlignedBuffer::PeakBytes(), live0);
  {
    AlignedBuffer a(100);  // rounded up to the alignment
    EXPECT_EQ(AlignedBuffer::LiveBytes(), live0 + 128);
    AlignedBuffer b(64);
    EXPECT_EQ(AlignedBuffer::LiveBytes(), live0 + 192);
    AlignedBuffer moved(std::move(a));
    EXPECT_EQ(AlignedBuffer::LiveBytes(), live0 + 192);
    b = AlignedBuffer();
    EXPECT_EQ(AlignedBuffer::LiveBytes(), live0 + 128);
  }
  EXPECT_EQ(AlignedBuffer::LiveBytes(), live0);
  EXPECT_EQ(AlignedBuffer::PeakBytes(), live0 + 192);
  AlignedBuffer::ResetPeakBytes();
  EXPECT_EQ(AlignedBuffer::PeakBytes(), live0);
}

}  // namespace
}  // namespace earshot
