// The engine's thread pool: persistent workers that split matrix products and attention heads with the
// calling thread.
//
//   EARSHOT_RETURN_IF_ERROR(SetThreadCount(2));
//   ParallelFor(n_tasks, [&](int task) { ... });   // returns when every task has run
//
// Threads exist natively and in WebAssembly builds compiled with -pthread (__EMSCRIPTEN_PTHREADS__); other
// builds run everything on the caller and accept only one thread. Work is always cut by output (each output
// element is computed by one task with the same arithmetic at every thread count), so results are bit for bit
// those of one thread.
//
// Workers are created by SetThreadCount and live until the next resize or program exit. Between jobs they spin
// briefly (decoding issues many small jobs back to back), then sleep. Tasks are claimed dynamically, so a
// worker that is slow to wake (or descheduled on a busy machine) never holds the caller up: the caller runs
// whatever nobody has claimed.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/status.h"

namespace earshot {

// A non-owning reference to a callable, valid for the duration of the call it is passed to (lambdas,
// std::function and function pointers convert implicitly).
template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same<std::decay_t<F>, FunctionRef>::value>>
  FunctionRef(const F& f)  // NOLINT: implicit by design
      : object_(static_cast<const void*>(&f)), call_([](const void* o, Args... args) -> R {
          return (*static_cast<const F*>(o))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  const void* object_;
  R (*call_)(const void*, Args...);
};

// Sets the number of threads the engine uses (the caller included: 1 = the caller only), engine-wide. Joins or
// starts workers as needed. Fails for n outside [1, MaxThreadCount()], from inside a parallel task, or when the
// system refuses to start a thread (the count then stays as it was).
Status SetThreadCount(int n);
int ThreadCount();
// 1 in builds without threads; otherwise a fixed cap (16 natively; in WebAssembly the pre-started worker pool
// plus the caller, since workers beyond it could only start once the caller returns to the event loop).
int MaxThreadCount();

// Runs fn(task) for every task in [0, n_tasks) on the pool and the calling thread; returns when all are done.
// Called from inside a task (or while another thread is using the pool) it runs the tasks inline, in order.
void ParallelFor(int n_tasks, FunctionRef<void(int)> fn);

// Runs fn(unit, slot) for every unit in [0, n_units) on at most n_slots threads at once. A slot index is used
// by one thread at a time, so per-slot scratch (slot * size) needs no locking; units are handed out in order
// as threads become free.
void ParallelForSlots(int n_units, int n_slots, FunctionRef<void(int, int)> fn);

// The number of threads a ParallelFor started here would use: 1 inside a task or with one thread.
int ParallelWidth();

// How many tasks `work` (in multiply-adds or comparable units) is worth cutting into, given at most `max_units`
// independent pieces: 1 when the work is too small to pay for the hand-off, else a few per thread (slack for
// threads that start late). Kernels use it to decide whether and how finely to split.
int TaskCountFor(int64_t work, int64_t max_units);

// The smallest amount of work worth a task of its own (default tuned for the kernels). Tests set 1 to force
// every kernel to split even the smallest products.
void SetMinTaskWork(int64_t work);
int64_t MinTaskWork();

}  // namespace earshot
