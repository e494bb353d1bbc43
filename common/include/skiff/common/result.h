#pragma once
// Result<T>: the return type of every call that touches the kernel or the
// file system. It carries either a value or an Error that says which call
// failed, on which object, and why (errno text or the kernel's extack).
// No exceptions cross a libuv callback or the proxy's data path; Result is how
// failures travel there instead.

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace skiff {

struct Error {
  int code = 0;         // errno-style code (positive), 0 when not from errno
  std::string message;  // full sentence context: "mount overlay on /x: No such file or directory"

  // "what: strerror(code)"; the usual way to turn a failed syscall into an Error.
  static Error fromErrno(const std::string& what, int err = errno);
  static Error msg(std::string text, int err = 0) { return Error{err, std::move(text)}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status okStatus() { return Status(); }

}  // namespace skiff

// Propagates an error from an expression yielding Result<...>.
#define SKIFF_TRY(expr)                                            \
  do {                                                             \
    auto skiff_try_result_ = (expr);                               \
    if (!skiff_try_result_.ok()) return skiff_try_result_.error(); \
  } while (0)
