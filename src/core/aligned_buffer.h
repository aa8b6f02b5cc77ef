// An owned, 64-byte aligned byte buffer: model files are read into one so that tensor data (16-byte aligned
// inside the file) can be used in place by SIMD kernels.
//
// Every AlignedBuffer (the model bytes, FloatBuffer scratch, caches) is counted in AlignedBuffer::LiveBytes() and
// PeakBytes(): the engine's large allocations, so tests and the bindings can account for memory per phase.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace earshot {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  // Allocation failure leaves an empty buffer: callers check ok() so that out-of-memory is an error, not an abort.
  explicit AlignedBuffer(size_t size) { Allocate(size); }
  AlignedBuffer(const void* bytes, size_t size) {
    if (Allocate(size) && size) std::memcpy(data_, bytes, size);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept { *this = std::move(o); }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      Free();
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
      std::swap(failed_, o.failed_);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { Free(); }

  bool ok() const { return !failed_; }
  // Bytes held by all live buffers (rounded up to the alignment, as allocated), and their high-water mark
  // since the last ResetPeakBytes().
  static size_t LiveBytes() { return live_bytes_.load(std::memory_order_relaxed); }
  static size_t PeakBytes() { return peak_bytes_.load(std::memory_order_relaxed); }
  static void ResetPeakBytes() { peak_bytes_.store(LiveBytes(), std::memory_order_relaxed); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  bool Allocate(size_t size) {
    size_ = 0;
    if (size == 0) return true;
    const size_t rounded = Rounded(size);
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, rounded));
    failed_ = data_ == nullptr;
    if (failed_) return false;
    size_ = size;
    Count(rounded);
    return true;
  }
  void Free() {
    if (data_) live_bytes_.fetch_sub(Rounded(size_), std::memory_order_relaxed);
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    failed_ = false;
  }
  static size_t Rounded(size_t size) { return (size + kAlignment - 1) / kAlignment * kAlignment; }
  static void Count(size_t bytes) {
    const size_t live = live_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    size_t peak = peak_bytes_.load(std::memory_order_relaxed);
    while (live > peak && !peak_bytes_.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
    }
  }

  static inline std::atomic<size_t> live_bytes_{0};
  static inline std::atomic<size_t> peak_bytes_{0};

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool failed_ = false;
};

}  // namespace earshot
