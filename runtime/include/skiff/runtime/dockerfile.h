#pragma once
// Dockerfile subset: the pure half of `skiff image build`.
//
// Design note: parsing is split in two steps, as in moby/buildkit's parser.
// parseDockerfile() only finds instructions (comments, `\` continuations,
// keyword, leading `--flags`, JSON-array arguments) and rejects what skiff can
// never build (RUN, SHELL, unknown keywords) with the line that names it.
// What an instruction *means* depends on build state (ARG/ENV values, the base
// image), so the builder in image_store.cc applies it, using the word lexer
// below for quoting and `$VAR` substitution. Nothing here touches the file
// system, so every function is unit-tested and fuzzed
// (tests/fuzz/dockerfile_fuzz.cc). No exceptions escape these functions.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/runtime/stack.h"

namespace skiff::runtime::dockerfile {

struct Instruction {
  int line = 0;         // 1-based line where the instruction starts
  std::string keyword;  // upper case: "COPY"
  // Leading `--name=value` flags (COPY, ADD, FROM, HEALTHCHECK only, as in docker).
  std::vector<std::pair<std::string, std::string>> flags;
  std::string args;  // the rest, continuation lines joined, trimmed
  // Set when args is a JSON array of strings (exec form of CMD/ENTRYPOINT,
  // JSON form of COPY/ADD).
  std::optional<std::vector<std::string>> json;
};

// Finds the instructions of a Dockerfile. Errors read
// `line N: RUN is not supported (skiff builds images without running containers)`
// or `line N: unknown instruction: FOO`.
[[nodiscard]] Result<std::vector<Instruction>> parseDockerfile(std::string_view text);

using Vars = std::map<std::string, std::string>;

// Shell-like lexing as docker does for Dockerfile arguments: single and
// double quotes, backslash escapes, `$VAR`, `${VAR}`, `${VAR:-default}`,
// `${VAR:+alt}`; unset variables expand to "". lexWords splits on unquoted
// whitespace; lexWord keeps whitespace (for `ENV K some value`).
[[nodiscard]] Result<std::vector<std::string>> lexWords(std::string_view text, const Vars& vars);
[[nodiscard]] Result<std::string> lexWord(std::string_view text, const Vars& vars);

// HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
// [--start-interval=D] [--retries=N] CMD command (exec form: a JSON array;
// shell form: the rest of the line, run by /bin/sh -c) or HEALTHCHECK NONE.
// As docker: no variable substitution; a duration of 0 keeps the default
// (30s, 30s, 0s; retries 0 keeps 3); --start-interval is checked but not
// kept (Healthcheck has no such field yet). Test is ["CMD", args...],
// ["CMD-SHELL", "command"] or ["NONE"] (then disable is set). Errors name
// the line: `line 4: HEALTHCHECK --interval=5x: unknown unit "x" in duration "5x"`.
[[nodiscard]] Result<Healthcheck> parseHealthcheck(const Instruction& ins);

// True when the instruction keyword is one skiff accepts but ignores (with a
// warning in the build log), e.g. VOLUME or STOPSIGNAL.
bool isIgnoredInstruction(std::string_view keyword);

}  // namespace skiff::runtime::dockerfile
