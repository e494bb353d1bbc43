// Durations as docker prints them (go-units HumanDuration), for the CLI's
// columns and netd's container status ("Up 5 seconds", "Exited (0) About a
// minute ago") alike.
#pragma once

#include <string>

namespace skiff {

// "Less than a second", "1 second", "5 seconds", "About a minute",
// "3 minutes", "About an hour", "2 hours", "3 days", "2 weeks", ...
std::string humanDuration(double seconds);

}  // namespace skiff
