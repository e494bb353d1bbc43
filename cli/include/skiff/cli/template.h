#pragma once
// The `--format` templates of the ls commands: the subset of Go's
// text/template that docker users write. Supported: literal text, `\t` and
// `\n` escapes, `{{.Field}}`, `{{json .}}` (the row as a JSON object),
// `{{json .Field}}`, `{{upper .Field}}`, `{{lower .Field}}`, and the `table `
// prefix, which prints a header row and aligns columns as docker does.
// Fields are checked when the template is parsed, so a typo is reported even
// when there are no rows, with Go's wording:
//   template: :1:2: executing "" at <.Foo>: can't evaluate field Foo
// Pure; single-threaded use.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::cli {

// One row of an ls command: field name ("Name") -> cell text.
using Row = std::map<std::string, std::string>;

// A field a command offers, with its table header ("Name" -> "NAME").
struct Field {
  std::string name;
  std::string header;
};

class Template {
 public:
  [[nodiscard]] static Result<Template> parse(std::string_view format, const std::vector<Field>& fields);

  bool isTable() const { return table_; }

  // The whole output: header (table only), one line per row, columns
  // aligned for tables.
  std::string render(const std::vector<Row>& rows) const;

 private:
  struct Piece {
    enum class Kind { kText, kField, kJsonRow, kJsonField, kUpper, kLower };
    Kind kind = Kind::kText;
    std::string text;  // literal text, or the field name
  };

  std::string renderOne(const Row& row) const;
  std::string renderHeader() const;

  bool table_ = false;
  std::vector<Piece> pieces_;
  std::map<std::string, std::string> headers_;
};

// `inspect --format`: docker's `{{.State.Pid}}` over one inspected object.
// Actions: `{{.A.B}}` (strings raw, numbers and booleans as text, objects and
// lists as JSON, a missing key as Go prints it: `<no value>`), `{{json .A}}`,
// `{{.}}` / `{{json .}}` (the whole object). Unclosed or unknown actions are
// errors in Go's wording. Pure.
[[nodiscard]] Result<std::string> renderInspectFormat(std::string_view format, const nlohmann::json& object);

}  // namespace skiff::cli
