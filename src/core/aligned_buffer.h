// An owned, 64-byte aligned byte buffer: model files are read into one so that tensor data (16-byte aligned
// inside the file) can be used in place by SIMD kernels.
#pragma once

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
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  bool Allocate(size_t size) {
    size_ = 0;
    if (size == 0) return true;
    size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, rounded));
    failed_ = data_ == nullptr;
    if (failed_) return false;
    size_ = size;
    return true;
  }
  void Free() { std::free(data_); data_ = nullptr; size_ = 0; failed_ = false; }

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool failed_ = false;
};

}  // namespace earshot
