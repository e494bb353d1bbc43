#pragma once
// The pure parts every `ls`/`ps` command shares: what it was given on the
// command line, which template it prints with (-q wins over --format, no
// --format is the view's table), and how a filter goes into the request's
// query string. The commands themselves (flags, daemon call, printing) are
// built from these in cli/src/commands.h, so each is one line in main.cc.

#include <string>
#include <vector>

#include "skiff/cli/template.h"
#include "skiff/cli/views.h"
#include "skiff/common/result.h"

namespace skiff::cli {

// What an `ls`/`ps` was given; a command uses the fields it has flags for.
struct ListFlags {
  std::string format;  // --format
  bool quiet = false;  // -q
  bool all = false;    // -a (container ls)
  bool noTrunc = false;
  std::string target;  // the STACK or SERVICE of a `ps`
};

// The text of the template a list prints with.
const std::string& listFormatText(const ListView& view, const ListFlags& flags);

// That template, parsed against the view's fields (the error is the one to
// print: a typo in --format is reported before the daemon is asked).
[[nodiscard]] Result<Template> listTemplate(const ListView& view, const ListFlags& flags);

// "key=value" with the value percent-encoded (RFC 3986 unreserved bytes kept).
std::string queryParam(const std::string& key, const std::string& value);

}  // namespace skiff::cli
