#include "skiff/netd/errors.h"

namespace skiff::netd {

int httpStatus(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid:
      return 400;
    case ErrorKind::kUnauthorized:
      return 401;
    case ErrorKind::kForbidden:
      return 403;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kNotAllowed:
      return 405;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kBadGateway:
      return 502;
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

ErrorKind kindOfStatus(int status) {
  switch (status) {
    case 400:
      return ErrorKind::kInvalid;
    case 401:
      return ErrorKind::kUnauthorized;
    case 403:
      return ErrorKind::kForbidden;
    case 404:
      return ErrorKind::kNotFound;
    case 405:
      return ErrorKind::kNotAllowed;
    case 409:
      return ErrorKind::kConflict;
    case 503:
      return ErrorKind::kUnavailable;
    case 502:
      return ErrorKind::kBadGateway;
    default:
      return status >= 400 && status < 500 ? ErrorKind::kInvalid : ErrorKind::kInternal;
  }
}

}  // namespace skiff::netd
