#pragma once
// What went wrong with a request, as a kind the caller can act on, apart from
// the text a user reads. The API maps kinds to HTTP statuses in one place
// (httpStatus); nothing chooses a status by searching an error's text.

#include <string>
#include <variant>

namespace skiff::netd {

enum class ErrorKind {
  kInvalid,       // the request is wrong: a bad name, value or spec      -> 400
  kUnauthorized,  // a cluster peer that is not (or no longer) a member   -> 401
  kForbidden,     // a join token that is not valid                       -> 403
  kNotFound,      // no such service, stack, node, image, container       -> 404
  kNotAllowed,    // a route that does not take this method               -> 405
  kConflict,      // the state forbids it: in use, exists, not in a swarm -> 409
  kUnavailable,   // not now or not here: not a manager, shutting down    -> 503
  kBadGateway,    // the manager answered something that makes no sense   -> 502
  kInternal,      // the node failed: a store or kernel call              -> 500
};

int httpStatus(ErrorKind kind);
// The kind of an error a peer answered with its HTTP status (a worker relays
// the manager's refusal of a join as the manager meant it).
ErrorKind kindOfStatus(int status);

// An error a user sees: its kind and the message.
struct ApiError {
  ErrorKind kind;
  std::string message;
};

template <typename T>
using ApiResult = std::variant<T, ApiError>;

}  // namespace skiff::netd
