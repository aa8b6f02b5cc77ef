#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <string>

#if !defined(__EMSCRIPTEN__) || defined(__EMSCRIPTEN_PTHREADS__)
#define EARSHOT_HAS_THREADS 1
#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#else
#define EARSHOT_HAS_THREADS 0
#endif

namespace earshot {
namespace {

// Below this many multiply-adds a task costs more to hand over than to run (a spinning worker needs about a
// microsecond to pick one up; an int8 kernel does a few hundred thousand multiply-adds in ten).
constexpr int64_t kDefaultMinTaskWork = 256 * 1024;
// Tasks per thread when work allows: slack for a thread that starts late or is descheduled.
constexpr int kTasksPerThread = 4;

std::atomic<int64_t> g_min_task_work{kDefaultMinTaskWork};

void RunInline(int n_tasks, FunctionRef<void(int)> fn) {
  for (int i = 0; i < n_tasks; ++i) fn(i);
}

#if EARSHOT_HAS_THREADS

// Set while this thread runs a task (nested ParallelFor calls then run inline).
thread_local bool t_in_task = false;

#ifndef EARSHOT_WASM_MAX_THREADS
#define EARSHOT_WASM_MAX_THREADS 8
#endif
#if defined(__EMSCRIPTEN__)
constexpr int kMaxThreads = EARSHOT_WASM_MAX_THREADS;
// WebAssembly thread stacks come out of the heap (2 MB each by default): tasks only run kernels, whose deepest
// frames hold a few KB, so a small stack keeps the page's memory close to the single-thread build's.
constexpr size_t kWorkerStackBytes = 256 * 1024;
#else
constexpr int kMaxThreads = 16;
constexpr size_t kWorkerStackBytes = 0;  // the system default (address space, committed as used)
#endif

// How long an idle worker spins before it sleeps: longer than the gaps between the products of one decoder
// step, including a worker's wait for the caller's last task of a large product (tiny.en's logits: tasks of
// about half a millisecond), far shorter than the pause between two utterances. At 200 us a 30-s beam-5
// transcription slept about twice per decoder step, each time paying a wake-up (slow and erratic in browsers).
constexpr std::chrono::microseconds kWorkerSpin{2000};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Workers and the caller meet in one 64-bit word: the job's generation (high 32 bits), a "closed" flag, and
// the number of workers inside the job. A worker enters only an open job it has not seen, by incrementing the
// count; the caller closes the job once its tasks are done and the count is back to zero. The job's fields
// are therefore written only while nobody can read them.
class ThreadPool {
 public:
  ~ThreadPool() {
    std::lock_guard<std::mutex> lock(dispatch_);
    StopWorkers();
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  Status Resize(int n) {
    if (t_in_task) return Status::Error("the thread count cannot change inside a parallel task");
    std::lock_guard<std::mutex> lock(dispatch_);
    if (n == threads()) return Status::Ok();
    StopWorkers();
    stop_.store(false, std::memory_order_relaxed);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (kWorkerStackBytes) pthread_attr_setstacksize(&attr, kWorkerStackBytes);
    for (int i = 1; i < n; ++i) {
      pthread_t thread;
      const int rc = pthread_create(&thread, &attr, &ThreadPool::WorkerMain, this);
      if (rc != 0) {
        pthread_attr_destroy(&attr);
        StopWorkers();
        return Status::Error("cannot start thread " + std::to_string(i + 1) + " of " + std::to_string(n) + ": " +
                             std::strerror(rc));
      }
      workers_.push_back(thread);
    }
    pthread_attr_destroy(&attr);
    threads_.store(n, std::memory_order_relaxed);
    return Status::Ok();
  }

  void Run(int n_tasks, FunctionRef<void(int)> fn) {
    if (n_tasks <= 1 || t_in_task || threads() <= 1) return RunInline(n_tasks, fn);
    std::unique_lock<std::mutex> lock(dispatch_, std::try_to_lock);
    if (!lock.owns_lock() || workers_.empty()) return RunInline(n_tasks, fn);  // another thread has the pool

    // The job is closed and empty here: nobody reads these fields until the state below opens it.
    job_ = &fn;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    remaining_.store(n_tasks, std::memory_order_relaxed);
    const uint64_t open = static_cast<uint64_t>(++generation_) << 32;
    Publish(open);

    DoTasks();
    for (int spins = 0; remaining_.load(std::memory_order_acquire) != 0; ++spins) Backoff(spins);
    // Wait for workers still inside (each about to find no task left), then close the job.
    uint64_t expected = open;
    for (int spins = 0; !state_.compare_exchange_weak(expected, open | kClosed, std::memory_order_acquire,
                                                      std::memory_order_relaxed);
         ++spins) {
      expected = open;
      Backoff(spins);
    }
    job_ = nullptr;
  }

 private:
  static constexpr uint64_t kClosed = uint64_t{1} << 31;

  static uint32_t Generation(uint64_t state) { return static_cast<uint32_t>(state >> 32); }

  // Waiting for workers: natively spin with a pause, then let other threads (a worker finishing our task) have
  // the core. In WebAssembly there is no pause, and sched_yield runs the thread's queue of proxied calls (two
  // mutex operations, microseconds each time): spin on the atomic, yielding only now and then so that a call
  // proxied to this thread still runs.
  static void Backoff(int spins) {
#if defined(__EMSCRIPTEN__)
    if (spins % 4096 == 4095) sched_yield();
#else
    if (spins < 64) {
      CpuRelax();
    } else {
      sched_yield();
    }
#endif
  }

  static void* WorkerMain(void* self) {
    static_cast<ThreadPool*>(self)->WorkerLoop();
    return nullptr;
  }

  // Stores a new state and wakes sleeping workers. A worker goes to sleep only after announcing itself in
  // sleepers_ and re-reading the state (both sequentially consistent), so either it sees the new state or
  // this sees it asleep and notifies under the mutex it waits with.
  void Publish(uint64_t state) {
    state_.store(state, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }
      wake_.notify_all();
    }
  }

  // Called with dispatch_ held. Leaves no workers and the job closed.
  void StopWorkers() {
    if (workers_.empty()) return;
    stop_.store(true, std::memory_order_relaxed);
    Publish((static_cast<uint64_t>(++generation_) << 32) | kClosed);
    for (pthread_t t : workers_) pthread_join(t, nullptr);
    workers_.clear();
    threads_.store(1, std::memory_order_relaxed);
  }

  uint64_t WaitForNewGeneration(uint32_t seen) {
    const auto start = std::chrono::steady_clock::now();
    for (int spins = 1;; ++spins) {
      const uint64_t s = state_.load(std::memory_order_acquire);
      if (Generation(s) != seen) return s;
      CpuRelax();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() - start > kWorkerSpin) break;
    }
    std::unique_lock<std::mutex> lock(sleep_mutex_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    uint64_t s;
    while (Generation(s = state_.load(std::memory_order_seq_cst)) == seen) wake_.wait(lock);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return s;
  }

  void WorkerLoop() {
    // Started while the pool is closed (under dispatch_): the current generation is not a job.
    // A worker that starts late may already have missed its stop: check before every wait.
    uint32_t seen = Generation(state_.load(std::memory_order_acquire));
    for (;;) {
      if (stop_.load(std::memory_order_relaxed)) return;
      uint64_t s = WaitForNewGeneration(seen);
      seen = Generation(s);
      if (stop_.load(std::memory_order_relaxed)) return;
      // Enter the job unless it has closed (or been replaced) in the meantime.
      while (Generation(s) == seen && !(s & kClosed)) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
          DoTasks();
          state_.fetch_sub(1, std::memory_order_release);
          break;
        }
      }
    }
  }

  void DoTasks() {
    t_in_task = true;
    const FunctionRef<void(int)>& fn = *job_;
    for (;;) {
      const int task = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (task >= n_tasks_) break;
      fn(task);
      remaining_.fetch_sub(1, std::memory_order_release);
    }
    t_in_task = false;
  }

  std::mutex dispatch_;  // held by the thread running a job, and by Resize
  std::vector<pthread_t> workers_;
  std::atomic<int> threads_{1};
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;  // written under dispatch_ only

  std::atomic<uint64_t> state_{kClosed};
  const FunctionRef<void(int)>* job_ = nullptr;
  int n_tasks_ = 0;
  alignas(64) std::atomic<int> next_task_{0};
  alignas(64) std::atomic<int> remaining_{0};

  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

ThreadPool& Pool() {
  static ThreadPool pool;
  return pool;
}

#endif  // EARSHOT_HAS_THREADS

}  // namespace

#if EARSHOT_HAS_THREADS

int MaxThreadCount() { return kMaxThreads; }
int ThreadCount() { return Pool().threads(); }

Status SetThreadCount(int n) {
  if (n < 1 || n > kMaxThreads)
    return Status::Error("thread count " + std::to_string(n) + " is outside 1.." + std::to_string(kMaxThreads));
  return Pool().Resize(n);
}

void ParallelFor(int n_tasks, FunctionRef<void(int)> fn) { Pool().Run(n_tasks, fn); }

int ParallelWidth() { return t_in_task ? 1 : ThreadCount(); }

#else  // no threads in this build

int MaxThreadCount() { return 1; }
int ThreadCount() { return 1; }

Status SetThreadCount(int n) {
  if (n == 1) return Status::Ok();
  return Status::Error("this build has no thread support (the WebAssembly module without pthreads): only 1 "
                       "thread is possible, " + std::to_string(n) + " were asked for");
}

void ParallelFor(int n_tasks, FunctionRef<void(int)> fn) { RunInline(n_tasks, fn); }

int ParallelWidth() { return 1; }

#endif

void ParallelForSlots(int n_units, int n_slots, FunctionRef<void(int, int)> fn) {
  if (n_units <= 0) return;
  n_slots = std::max(1, std::min({n_slots, n_units, ParallelWidth()}));
  if (n_slots == 1) {
    for (int u = 0; u < n_units; ++u) fn(u, 0);
    return;
  }
  std::atomic<int> next{0};
  ParallelFor(n_slots, [&](int slot) {
    for (int u; (u = next.fetch_add(1, std::memory_order_relaxed)) < n_units;) fn(u, slot);
  });
}

int TaskCountFor(int64_t work, int64_t max_units) {
  const int width = ParallelWidth();
  if (width <= 1 || max_units <= 1) return 1;
  const int64_t by_work = work / std::max<int64_t>(1, g_min_task_work.load(std::memory_order_relaxed));
  int64_t tasks = std::min({by_work, max_units, static_cast<int64_t>(width) * kTasksPerThread});
  // Whole rounds of tasks keep threads evenly loaded; fewer tasks than threads leave some idle.
  if (tasks > width) tasks -= tasks % width;
  return static_cast<int>(std::max<int64_t>(1, tasks));
}

void SetMinTaskWork(int64_t work) {
  g_min_task_work.store(work > 0 ? work : kDefaultMinTaskWork, std::memory_order_relaxed);
}
int64_t MinTaskWork() { return g_min_task_work.load(std::memory_order_relaxed); }

}  // namespace earshot
