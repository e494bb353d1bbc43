#include "skiff/common/duration.h"

#include <cstdint>

namespace skiff {

std::string humanDuration(double secondsIn) {
  const auto seconds = static_cast<int64_t>(secondsIn);
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return std::to_string(seconds) + " seconds";
  const int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return std::to_string(minutes) + " minutes";
  // go-units rounds hours to the nearest one.
  const auto hours = static_cast<int64_t>(secondsIn / 3600.0 + 0.5);
  if (hours == 1) return "About an hour";
  if (hours < 48) return std::to_string(hours) + " hours";
  if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
  if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
  return std::to_string(static_cast<int64_t>(secondsIn / 3600.0) / 24 / 365) + " years";
}

}  // namespace skiff
