// Errors cross the engine's API as values, never as exceptions: the WebAssembly build must hand every
// failure (corrupt model, bad audio, out of memory) back to JavaScript as a message.
#pragma once

#include <cassert>
#include <string>
#include <utility>

namespace earshot {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message), true); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

  // Prefixes context ("loading model: ") to an error; no-op on success.
  Status With(const std::string& context) const {
    return ok() ? *this : Error(context + ": " + message_);
  }

 private:
  Status(std::string message, bool failed) : message_(std::move(message)), failed_(failed) {}
  std::string message_;
  bool failed_ = false;
};

// A value or the Status explaining why there is none.
template <class T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)), has_value_(true) {}  // NOLINT: implicit by design
  Expected(Status error) : status_(std::move(error)) {                 // NOLINT: implicit by design
    assert(!status_.ok() && "Expected built from an ok Status");
    if (status_.ok()) status_ = Status::Error("internal error: empty result");
  }

  bool ok() const { return has_value_; }
  const Status& status() const { return status_; }
  T& value() & { assert(has_value_); return value_; }
  const T& value() const& { assert(has_value_); return value_; }
  T&& value() && { assert(has_value_); return std::move(value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  T value_{};
  Status status_;
  bool has_value_ = false;
};

}  // namespace earshot

// Returns early from a function returning Status or Expected<...> when `expr` fails.
#define EARSHOT_RETURN_IF_ERROR(expr)            \
  do {                                           \
    ::earshot::Status earshot_status_ = (expr);  \
    if (!earshot_status_.ok()) return earshot_status_; \
  } while (0)

#define EARSHOT_CONCAT_INNER(a, b) a##b
#define EARSHOT_CONCAT(a, b) EARSHOT_CONCAT_INNER(a, b)
// Declares `lhs` from an Expected, returning its Status on failure.
#define EARSHOT_ASSIGN_OR_RETURN(lhs, expr) \
  EARSHOT_ASSIGN_OR_RETURN_IMPL(EARSHOT_CONCAT(earshot_expected_, __LINE__), lhs, expr)
#define EARSHOT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
