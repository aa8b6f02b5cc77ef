// The thread pool and the kernels split over it: every task runs exactly once (nested calls, resizes,
// concurrent callers), and products, attention and whole transcriptions are bit for bit those of one thread.
// Builds without threads (the single-thread WebAssembly module) check that only one thread is accepted and skip
// the rest.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "decode/transcriber.h"
#include "kernels/attention.h"
#include "kernels/f16.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "kernels/qgemm.h"
#include "model/model.h"
#include "unit/attention_args.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

// Every test leaves the engine as it found it: one thread, the default task size.
class ThreadPoolTest : public ::testing::Test {
 protected:
  void TearDown() override {
    SetMinTaskWork(0);
    EXPECT_TRUE(SetThreadCount(1).ok());
  }
};

#define SKIP_WITHOUT_THREADS(n)                                                                          \
  if (MaxThreadCount() < (n)) GTEST_SKIP() << "this build runs at most " << MaxThreadCount() << " thread(s)"

// Runs ParallelFor and checks that each task ran once.
void ExpectEachTaskOnce(int n_tasks) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n_tasks));
  for (auto& h : hits) h.store(0);
  ParallelFor(n_tasks, [&](int t) { hits[static_cast<size_t>(t)].fetch_add(1); });
  for (int t = 0; t < n_tasks; ++t)
    ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << "task " << t << " of " << n_tasks;
}

TEST_F(ThreadPoolTest, ThreadCountLimits) {
  EXPECT_GE(MaxThreadCount(), 1);
  EXPECT_EQ(ThreadCount(), 1);
  EXPECT_TRUE(SetThreadCount(1).ok());
  EXPECT_FALSE(SetThreadCount(0).ok());
  EXPECT_FALSE(SetThreadCount(-3).ok());
  EXPECT_FALSE(SetThreadCount(MaxThreadCount() + 1).ok());
  if (MaxThreadCount() == 1) {
    const Status s = SetThreadCount(2);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("thread"), std::string::npos) << s.message();
  }
  EXPECT_EQ(ThreadCount(), 1);
}

TEST_F(ThreadPoolTest, SingleThreadRunsTasksInOrder) {
  std::vector<int> order;
  ParallelFor(5, [&](int t) { order.push_back(t); });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  ParallelFor(0, [&](int) { ADD_FAILURE() << "no task expected"; });
}

TEST_F(ThreadPoolTest, EveryTaskRunsExactlyOnce) {
  for (int threads = 1; threads <= std::min(4, MaxThreadCount()); ++threads) {
    ASSERT_TRUE(SetThreadCount(threads).ok());
    EXPECT_EQ(ThreadCount(), threads);
    for (int n_tasks : {0, 1, 2, 3, 5, 8, 17, 64, 1000}) ExpectEachTaskOnce(n_tasks);
    // Many small jobs back to back: workers join jobs while others close.
    for (int rep = 0; rep < 300; ++rep) ExpectEachTaskOnce(1 + rep % 9);
  }
}

TEST_F(ThreadPoolTest, WorkersShareTheTasks) {
  SKIP_WITHOUT_THREADS(2);
  ASSERT_TRUE(SetThreadCount(2).ok());
  // Tasks wait (bounded) for a second thread: with one, the caller would run them all. The bound is wall time, and
  // generous: on a loaded machine a worker can wait tens of milliseconds to be scheduled at all.
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> helped{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!helped.load() && std::chrono::steady_clock::now() < deadline) {
    ParallelFor(8, [&](int) {
      if (std::this_thread::get_id() != caller) helped.store(true);
      const auto task_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
      while (!helped.load() && std::chrono::steady_clock::now() < task_end) {
      }
    });
  }
  EXPECT_TRUE(helped.load());
}

TEST_F(ThreadPoolTest, NestedCallsRunInline) {
  SKIP_WITHOUT_THREADS(2);
  ASSERT_TRUE(SetThreadCount(3 <= MaxThreadCount() ? 3 : 2).ok());
  constexpr int kOuter = 6, kInner = 7;
  std::vector<std::atomic<int>> hits(kOuter * kInner);
  for (auto& h : hits) h.store(0);
  ParallelFor(kOuter, [&](int i) {
    EXPECT_EQ(ParallelWidth(), 1);
    std::vector<int> order;
    ParallelFor(kInner, [&](int j) {
      order.push_back(j);  // inline on this thread, so no race
      hits[static_cast<size_t>(i * kInner + j)].fetch_add(1);
    });
    EXPECT_EQ(order.size(), static_cast<size_t>(kInner));
    // Resizing from inside a task is refused rather than deadlocking.
    EXPECT_FALSE(SetThreadCount(1).ok());
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_EQ(ParallelWidth(), ThreadCount());
}

TEST_F(ThreadPoolTest, ResizeKeepsWorking) {
  SKIP_WITHOUT_THREADS(3);
  for (int threads : {2, 3, 1, 3, 2, 2, 1, 2}) {
    ASSERT_TRUE(SetThreadCount(threads).ok());
    EXPECT_EQ(ThreadCount(), threads);
    for (int n_tasks : {1, 2, 9, 100}) ExpectEachTaskOnce(n_tasks);
  }
}

TEST_F(ThreadPoolTest, ConcurrentCallersBothFinish) {
  SKIP_WITHOUT_THREADS(2);
  ASSERT_TRUE(SetThreadCount(2).ok());
  // Two threads outside the pool issue jobs at once: one gets the pool, the other runs inline.
  std::atomic<int> total{0};
  auto issue = [&] {
    for (int rep = 0; rep < 200; ++rep) ParallelFor(10, [&](int) { total.fetch_add(1); });
  };
  std::thread other(issue);
  issue();
  other.join();
  EXPECT_EQ(total.load(), 2 * 200 * 10);
}

TEST_F(ThreadPoolTest, SlotsAreExclusive) {
  for (int threads = 1; threads <= std::min(3, MaxThreadCount()); ++threads) {
    ASSERT_TRUE(SetThreadCount(threads).ok());
    for (int n_slots : {1, 2, 3, 5}) {
      constexpr int kUnits = 200;
      std::vector<std::atomic<int>> busy(static_cast<size_t>(n_slots)), hits(kUnits);
      for (auto& b : busy) b.store(0);
      for (auto& h : hits) h.store(0);
      std::atomic<bool> overlap{false};
      ParallelForSlots(kUnits, n_slots, [&](int unit, int slot) {
        ASSERT_GE(slot, 0);
        ASSERT_LT(slot, n_slots);
        if (busy[static_cast<size_t>(slot)].fetch_add(1) != 0) overlap.store(true);
        hits[static_cast<size_t>(unit)].fetch_add(1);
        busy[static_cast<size_t>(slot)].fetch_sub(1);
      });
      EXPECT_FALSE(overlap.load()) << n_slots << " slots, " << threads << " threads";
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

TEST_F(ThreadPoolTest, TaskCountFollowsWork) {
  EXPECT_EQ(TaskCountFor(int64_t{1} << 40, 1000), 1);  // one thread: never split
  SKIP_WITHOUT_THREADS(2);
  ASSERT_TRUE(SetThreadCount(2).ok());
  EXPECT_EQ(TaskCountFor(MinTaskWork() - 1, 1000), 1);  // too small to pay
  EXPECT_EQ(TaskCountFor(int64_t{1} << 40, 1), 1);      // nothing to split
  const int many = TaskCountFor(int64_t{1} << 40, 1000);
  EXPECT_GE(many, 2);
  EXPECT_EQ(many % 2, 0);  // whole rounds
  EXPECT_LE(TaskCountFor(int64_t{1} << 40, 3), 3);
}

// ---- kernels: bit-identical at every thread count ------------------------------------------------------------

// A weight matrix [N, K] in one dtype, as Linear receives it from a model (quantized ones packed).
struct TestWeight {
  std::vector<uint8_t> plain, plain_scales;
  AlignedBuffer packed;
  TensorRef ref;
};

std::unique_ptr<TestWeight> MakeWeight(DType dtype, int N, int K, int group, uint32_t seed) {
  auto w = std::make_unique<TestWeight>();
  testutil::TestRng rng(seed);
  std::vector<float> values(static_cast<size_t>(N) * K);
  for (float& v : values) v = rng.Uniform() / 4;
  TensorData t = testutil::EncodeTestTensor("w", {N, K}, values, dtype);
  if (dtype == DType::I4 && group > 0) {  // re-encode with the group size asked for
    EXPECT_EQ(K % group, 0);
    t.group_size = group;
    t.data.assign(values.size() / 2, 0);
    t.scales.assign(static_cast<size_t>(N) * (K / group) * 2, 0);
    for (size_t i = 0; i < values.size(); ++i) {
      const int q = static_cast<int>(rng.Next() % 16) - 8;
      t.data[i / 2] |= static_cast<uint8_t>((q & 0xF) << (i % 2 ? 4 : 0));
    }
    for (size_t g = 0; g < t.scales.size() / 2; ++g) {
      const uint16_t h = F32ToF16(0.01f + 0.001f * static_cast<float>(g % 7));
      std::memcpy(&t.scales[2 * g], &h, 2);
    }
  }
  w->plain = std::move(t.data);
  w->plain_scales = std::move(t.scales);
  TensorRef& r = w->ref;
  r.name = "w";
  r.dtype = dtype;
  r.shape = {N, K};
  r.group_size = t.group_size;
  r.data = w->plain.data();
  r.nbytes = w->plain.size();
  r.scales = w->plain_scales.empty() ? nullptr : w->plain_scales.data();
  r.scales_nbytes = w->plain_scales.size();
  if (dtype == DType::I8 || dtype == DType::I4) {
    auto packed = RepackQuantizedTensor(r, &w->packed);
    EXPECT_TRUE(packed.ok()) << packed.status().message();
    if (packed.ok()) r = packed.value();
  }
  EXPECT_TRUE(CheckLinearWeight(r, N, K).ok());
  return w;
}

struct LinearCase {
  DType dtype;
  int M, N, K, group;
};

std::string Describe(const LinearCase& c) {
  static const char* names[] = {"F32", "F16", "I8", "I4"};
  const int d = c.dtype == DType::F32 ? 0 : c.dtype == DType::F16 ? 1 : c.dtype == DType::I8 ? 2 : 3;
  return std::string(names[d]) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
         " K=" + std::to_string(c.K);
}

// Linear with bias, GELU and an in-place residual (y starts as the residual), at the current thread count.
std::vector<float> RunLinear(const LinearCase& c, const TestWeight& w, uint32_t seed) {
  testutil::TestRng rng(seed);
  const size_t ldx = static_cast<size_t>(c.K) + 3, ldy = static_cast<size_t>(c.N) + 1;
  std::vector<float> x(static_cast<size_t>(c.M) * ldx), bias(static_cast<size_t>(c.N)),
      y(static_cast<size_t>(c.M) * ldy);
  for (float& v : x) v = rng.Uniform();
  for (float& v : bias) v = rng.Uniform() / 8;
  for (float& v : y) v = rng.Uniform();
  GemmEpilogue ep;
  ep.bias = bias.data();
  ep.gelu = true;
  ep.residual = y.data();
  ep.ld_residual = ldy;
  const Status s = Linear(x.data(), c.M, ldx, w.ref, y.data(), ldy, ep);
  EXPECT_TRUE(s.ok()) << s.message();
  return y;
}

void ExpectBitIdentical(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t ua, ub;
    std::memcpy(&ua, &a[i], 4);
    std::memcpy(&ub, &b[i], 4);
    ASSERT_EQ(ua, ub) << what << ": element " << i << " " << a[i] << " vs " << b[i];
  }
}

const LinearCase kLinearCases[] = {
    // GEMV shapes (decoding), GEMM shapes spanning several row blocks, odd sizes and tails everywhere.
    {DType::F32, 1, 37, 45, 0},   {DType::F32, 5, 70, 33, 0},  {DType::F32, 131, 53, 19, 0},
    {DType::F16, 1, 41, 29, 0},   {DType::F16, 3, 66, 40, 0},  {DType::F16, 129, 35, 24, 0},
    {DType::I8, 1, 39, 45, 0},    {DType::I8, 5, 70, 33, 0},   {DType::I8, 133, 61, 50, 0},
    {DType::I4, 1, 37, 64, 32},   {DType::I4, 5, 70, 96, 32},  {DType::I4, 131, 45, 64, 32},
    {DType::I4, 7, 22, 24, 8},    {DType::I4, 67, 13, 40, 8},
};

TEST_F(ThreadPoolTest, LinearIsBitIdenticalAcrossThreadCounts) {
  SKIP_WITHOUT_THREADS(3);
  uint32_t seed = 100;
  for (const LinearCase& c : kLinearCases) {
    ++seed;
    const auto w = MakeWeight(c.dtype, c.N, c.K, c.group, seed);
    ASSERT_TRUE(SetThreadCount(1).ok());
    const std::vector<float> one = RunLinear(c, *w, seed);
    for (int threads : {2, 3}) {
      ASSERT_TRUE(SetThreadCount(threads).ok());
      // Default task size (small shapes stay whole), then the finest split possible.
      for (int64_t min_work : {int64_t{0}, int64_t{1}}) {
        SetMinTaskWork(min_work);
        ExpectBitIdentical(RunLinear(c, *w, seed), one,
                           Describe(c) + ", " + std::to_string(threads) + " threads, min work " +
                               std::to_string(min_work));
      }
      SetMinTaskWork(0);
    }
  }
}

TEST_F(ThreadPoolTest, LargeProductsSplitWithDefaultSettings) {
  SKIP_WITHOUT_THREADS(2);
  // Big enough that the default task size splits them (both by columns and, for I8, rows).
  for (const LinearCase& c : {LinearCase{DType::I8, 200, 260, 384, 0}, LinearCase{DType::F32, 70, 300, 128, 0},
                              LinearCase{DType::I4, 2, 2048, 256, 32}}) {
    const auto w = MakeWeight(c.dtype, c.N, c.K, c.group, 7);
    ASSERT_TRUE(SetThreadCount(1).ok());
    const std::vector<float> one = RunLinear(c, *w, 8);
    ASSERT_TRUE(SetThreadCount(2).ok());
    ExpectBitIdentical(RunLinear(c, *w, 8), one, Describe(c) + ", 2 threads");
  }
}

std::vector<float> RunAttention(int n_q, int n_kv, int n_head, int d_head, int causal_offset, int slots,
                                uint32_t seed, bool integer_products = false) {
  testutil::TestRng rng(seed);
  const size_t d = static_cast<size_t>(n_head) * d_head;
  std::vector<float> q(n_q * d), k(n_kv * d), v(n_kv * d), out(n_q * d, 0.0f);
  for (float& x : q) x = rng.Uniform();
  for (float& x : k) x = rng.Uniform();
  for (float& x : v) x = rng.Uniform();
  std::vector<float> scratch(AttentionScratchSize(n_q, n_kv) * slots);
  AttentionArgs a = testutil::MakeAttentionArgs(n_q, n_kv, n_head, d_head, q.data(), d, k.data(), d, v.data(), d,
                                                out.data(), d, causal_offset);
  a.integer_products = integer_products;
  Attention(a, scratch.data(), slots);
  return out;
}

// Prepared keys and values (the decoder's cross-attention): (head, query block) units split among threads.
TEST_F(ThreadPoolTest, PreparedIntegerAttentionSplitsBitIdentically) {
  SKIP_WITHOUT_THREADS(3);
  for (int n_q : {1, 5, 70}) {
    const int n_kv = 151, n_head = 6, d_head = 16;
    const size_t d = static_cast<size_t>(n_head) * d_head;
    testutil::TestRng rng(9);
    std::vector<float> q(n_q * d), k(n_kv * d), v(n_kv * d);
    for (float& x : q) x = rng.Uniform();
    for (float& x : k) x = rng.Uniform();
    for (float& x : v) x = rng.Uniform();
    auto run = [&](int slots) {
      IntegerKeyValues kv;
      EXPECT_TRUE(kv.Prepare(n_kv, n_head, d_head, k.data(), d, v.data(), d));
      std::vector<float> out(n_q * d, 0.0f);
      AttentionArgs a = testutil::MakeAttentionArgs(n_q, n_kv, n_head, d_head, q.data(), d, nullptr, d, nullptr, d,
                                                    out.data(), d);
      EXPECT_TRUE(AttentionIntegerPrepared(a, kv, slots));
      return out;
    };
    ASSERT_TRUE(SetThreadCount(1).ok());
    const auto one = run(1);
    for (int threads : {2, 3}) {
      ASSERT_TRUE(SetThreadCount(threads).ok());
      SetMinTaskWork(1);
      for (int slots : {1, 2, 4})
        ExpectBitIdentical(run(slots), one, "prepared attention n_q=" + std::to_string(n_q) + ", " +
                                                std::to_string(threads) + " threads, " + std::to_string(slots) +
                                                " slots");
      SetMinTaskWork(0);
    }
  }
}

TEST_F(ThreadPoolTest, AttentionHeadsSplitBitIdentically) {
  SKIP_WITHOUT_THREADS(3);
  struct Case {
    int n_q, n_kv, n_head, d_head, causal_offset;
  };
  // The integer products (the encoder of quantized models) split query blocks among threads the same way.
  for (bool integer : {false, true}) {
    for (const Case& c : {Case{70, 67, 3, 5, -1}, Case{130, 130, 4, 8, 0}, Case{5, 40, 6, 16, -1},
                          Case{3, 12, 5, 4, 9}, Case{200, 150, 2, 64, -1}}) {
      ASSERT_TRUE(SetThreadCount(1).ok());
      const auto one = RunAttention(c.n_q, c.n_kv, c.n_head, c.d_head, c.causal_offset, 1, 3, integer);
      for (int threads : {2, 3}) {
        ASSERT_TRUE(SetThreadCount(threads).ok());
        SetMinTaskWork(1);
        for (int slots : {1, 2, 3, 4})
          ExpectBitIdentical(RunAttention(c.n_q, c.n_kv, c.n_head, c.d_head, c.causal_offset, slots, 3, integer), one,
                             "attention n_q=" + std::to_string(c.n_q) + ", " + std::to_string(threads) +
                                 " threads, " + std::to_string(slots) + " slots" + (integer ? ", integer" : ""));
        SetMinTaskWork(0);
      }
    }
  }
}

TEST_F(ThreadPoolTest, LogSoftmaxIsBitIdenticalAcrossThreadCounts) {
  SKIP_WITHOUT_THREADS(3);
  for (int n : {100, 2048, 2049, 51865}) {
    testutil::TestRng rng(static_cast<uint32_t>(n));
    std::vector<float> row(static_cast<size_t>(n));
    for (float& v : row) v = 12.0f * rng.Uniform();
    for (size_t i = 3; i < row.size(); i += 97) row[i] = -std::numeric_limits<float>::infinity();  // suppressed
    ASSERT_TRUE(SetThreadCount(1).ok());
    std::vector<float> one = row;
    LogSoftmax(one.data(), n);
    double total = 0;
    for (float v : one) total += std::exp(static_cast<double>(v));
    EXPECT_NEAR(total, 1.0, 1e-5) << n;
    for (int threads : {2, 3}) {
      ASSERT_TRUE(SetThreadCount(threads).ok());
      for (int64_t min_work : {int64_t{0}, int64_t{1}}) {
        SetMinTaskWork(min_work);
        std::vector<float> many = row;
        LogSoftmax(many.data(), n);
        ExpectBitIdentical(many, one, "log-softmax of " + std::to_string(n) + ", " + std::to_string(threads) +
                                          " threads");
      }
      SetMinTaskWork(0);
    }
  }
}

// ---- a whole transcription ------------------------------------------------------------------------------------

std::vector<float> Tone(size_t n, uint32_t seed) {
  testutil::TestRng rng(seed);
  std::vector<float> pcm(n);
  for (size_t i = 0; i < n; ++i)
    pcm[i] = 0.3f * std::sin(6.2831853f * 330.0f * i / 16000.0f) + 0.05f * rng.Uniform();
  return pcm;
}

Transcript TranscribeWith(const Transcriber& t, const std::vector<float>& pcm, int beam) {
  DecodeOptions o;
  o.beam_size = beam;
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : Transcript{};
}

TEST_F(ThreadPoolTest, TranscriptionIsBitIdenticalWithTwoThreads) {
  SKIP_WITHOUT_THREADS(2);
  // Wide enough for the I4 SIMD path (groups of 64) and several heads per thread.
  HyperParams hp = testutil::TinyHyperParams();
  hp.n_audio_state = hp.n_text_state = 64;
  hp.n_audio_head = hp.n_text_head = 4;
  const auto pcm = Tone(6000, 5);
  for (DType dtype : {DType::F32, DType::I8, DType::I4}) {
    auto model = Model::FromBuffer(MakeRandomTinyModel(hp, 21, dtype));
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto t = Transcriber::Create(model.value());
    ASSERT_TRUE(t.ok()) << t.status().message();
    for (int beam : {1, 3}) {
      ASSERT_TRUE(SetThreadCount(1).ok());
      const Transcript one = TranscribeWith(*t, pcm, beam);
      ASSERT_FALSE(one.tokens.empty());
      ASSERT_TRUE(SetThreadCount(2).ok());
      SetMinTaskWork(1);  // split every product, attention and LayerNorm the model has
      const Transcript two = TranscribeWith(*t, pcm, beam);
      SetMinTaskWork(0);
      ASSERT_EQ(two.tokens.size(), one.tokens.size());
      for (size_t i = 0; i < one.tokens.size(); ++i) {
        EXPECT_EQ(two.tokens[i].id, one.tokens[i].id) << "token " << i;
        uint32_t a, b;
        std::memcpy(&a, &one.tokens[i].logprob, 4);
        std::memcpy(&b, &two.tokens[i].logprob, 4);
        EXPECT_EQ(a, b) << "log-prob of token " << i << ": " << one.tokens[i].logprob << " vs "
                        << two.tokens[i].logprob;
      }
      EXPECT_EQ(two.text, one.text);
      EXPECT_EQ(std::memcmp(&two.no_speech_prob, &one.no_speech_prob, 4), 0);
      EXPECT_EQ(std::memcmp(&two.avg_logprob, &one.avg_logprob, 4), 0);
    }
  }
}

}  // namespace
}  // namespace earshot
