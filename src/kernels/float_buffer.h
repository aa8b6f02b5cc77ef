// A growable float scratch buffer whose allocation failure is a Status, not an exception or an abort
// (the WebAssembly build runs with ABORTING_MALLOC=0 and without exception handling).
#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include "core/aligned_buffer.h"
#include "core/status.h"

namespace earshot {

class FloatBuffer {
 public:
  // Ensures room for n floats. Growing discards the contents.
  Status Reserve(size_t n, const char* what = "scratch buffer") {
    if (n <= capacity_) return Status::Ok();
    if (n > std::numeric_limits<size_t>::max() / sizeof(float))
      return Status::Error(std::string("out of memory: ") + what + " is too large");
    AlignedBuffer fresh(n * sizeof(float));
    if (!fresh.ok())
      return Status::Error(std::string("out of memory allocating ") + what + " (" +
                           std::to_string(n * sizeof(float) / 1024) + " KiB)");
    buffer_ = std::move(fresh);
    capacity_ = n;
    return Status::Ok();
  }
  // Gives the memory back (a later Reserve allocates again).
  void Release() {
    buffer_ = AlignedBuffer();
    capacity_ = 0;
  }
  float* data() { return reinterpret_cast<float*>(buffer_.data()); }
  const float* data() const { return reinterpret_cast<const float*>(buffer_.data()); }
  size_t capacity() const { return capacity_; }

 private:
  AlignedBuffer buffer_;
  size_t capacity_ = 0;
};

}  // namespace earshot
