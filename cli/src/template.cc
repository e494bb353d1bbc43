#include "skiff/cli/template.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "skiff/cli/format.h"

namespace skiff::cli {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// docker replaces the two-character escapes before parsing, so positions in
// error messages count a tab as one byte, as Go's do.
std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == 't' || text[i + 1] == 'n')) {
      out += text[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Go's position "line:col" of byte `offset` (col is 0-based on line 1, as
// text/template's ErrorContext prints it).
std::string position(const std::string& text, size_t offset) {
  const std::string before = text.substr(0, offset);
  const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
  const size_t nl = before.rfind('\n');
  const size_t col = nl == std::string::npos ? offset : offset - (nl + 1);
  return std::to_string(line) + ":" + std::to_string(col);
}

std::string lineOf(const std::string& text, size_t offset) {
  const std::string before = text.substr(0, offset);
  return std::to_string(1 + std::count(before.begin(), before.end(), '\n'));
}

}  // namespace

Result<Template> Template::parse(std::string_view formatIn, const std::vector<Field>& fields) {
  Template tmpl;
  std::string_view format = formatIn;
  constexpr std::string_view kTable = "table";
  if (format.substr(0, kTable.size()) == kTable &&
      (format.size() == kTable.size() || std::isspace(static_cast<unsigned char>(format[kTable.size()])))) {
    tmpl.table_ = true;
    format.remove_prefix(kTable.size());
  }
  const std::string text = unescape(tmpl.table_ ? trim(format) : format);
  for (const auto& field : fields) tmpl.headers_[field.name] = field.header;

  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      tmpl.pieces_.push_back({Piece::Kind::kText, text.substr(pos)});
      break;
    }
    if (open > pos) tmpl.pieces_.push_back({Piece::Kind::kText, text.substr(pos, open - pos)});
    const size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return Error::msg("template: :" + lineOf(text, open) + ": unclosed action");
    }
    // Offsets of the words inside the action, for Go-like error positions.
    size_t cursor = open + 2;
    auto nextWord = [&](size_t* at) {
      while (cursor < close && std::isspace(static_cast<unsigned char>(text[cursor]))) ++cursor;
      *at = cursor;
      const size_t start = cursor;
      while (cursor < close && !std::isspace(static_cast<unsigned char>(text[cursor]))) ++cursor;
      return text.substr(start, cursor - start);
    };
    size_t at1 = 0, at2 = 0, at3 = 0;
    const std::string first = nextWord(&at1);
    const std::string second = nextWord(&at2);
    const std::string third = nextWord(&at3);
    if (first.empty()) return Error::msg("template: :" + lineOf(text, open) + ": missing value for command");
    if (!third.empty()) {
      return Error::msg("template: :" + lineOf(text, open) + ": unsupported action {{" +
                        std::string(trim(text.substr(open + 2, close - open - 2))) + "}}");
    }

    std::string fieldWord = first;
    size_t fieldAt = at1;
    Piece piece;
    if (first[0] == '.') {
      if (!second.empty()) {
        return Error::msg("template: :" + lineOf(text, open) + ": can't give argument to non-function " + first);
      }
      piece.kind = first == "." ? Piece::Kind::kJsonRow : Piece::Kind::kField;
    } else if (first == "json" || first == "upper" || first == "lower") {
      if (second.empty() || second[0] != '.') {
        return Error::msg("template: :" + lineOf(text, open) + ": wrong number of args for " + first +
                          ": want 1 got 0");
      }
      fieldWord = second;
      fieldAt = at2;
      if (first == "json") {
        piece.kind = second == "." ? Piece::Kind::kJsonRow : Piece::Kind::kJsonField;
      } else {
        piece.kind = first == "upper" ? Piece::Kind::kUpper : Piece::Kind::kLower;
      }
    } else {
      return Error::msg("template: :" + lineOf(text, open) + ": function \"" + first + "\" not defined");
    }

    if (piece.kind != Piece::Kind::kJsonRow) {
      const std::string name = fieldWord.substr(1);
      if (!tmpl.headers_.count(name)) {
        // Go names the first field it cannot evaluate: ".Foo.Bar" -> Foo.
        const std::string firstName = name.substr(0, name.find('.'));
        return Error::msg("template: :" + position(text, fieldAt) + ": executing \"\" at <" + fieldWord +
                          ">: can't evaluate field " + firstName);
      }
      piece.text = name;
    }
    tmpl.pieces_.push_back(std::move(piece));
    pos = close + 2;
  }
  return tmpl;
}

std::string Template::renderOne(const Row& row) const {
  std::string out;
  for (const auto& piece : pieces_) {
    auto value = [&]() -> std::string {
      auto it = row.find(piece.text);
      return it == row.end() ? std::string() : it->second;
    };
    switch (piece.kind) {
      case Piece::Kind::kText:
        out += piece.text;
        break;
      case Piece::Kind::kField:
        out += value();
        break;
      case Piece::Kind::kJsonField:
        out += nlohmann::json(value()).dump();
        break;
      case Piece::Kind::kJsonRow:
        out += nlohmann::json(row).dump();
        break;
      case Piece::Kind::kUpper: {
        std::string v = value();
        for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out += v;
        break;
      }
      case Piece::Kind::kLower: {
        std::string v = value();
        for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out += v;
        break;
      }
    }
  }
  return out;
}

std::string Template::renderHeader() const {
  // docker renders the header through the same template with each field
  // replaced by its header text.
  Row header;
  for (const auto& [name, text] : headers_) header[name] = text;
  std::string out;
  for (const auto& piece : pieces_) {
    if (piece.kind == Piece::Kind::kText) {
      out += piece.text;
    } else if (piece.kind != Piece::Kind::kJsonRow) {
      out += header[piece.text];
    }
  }
  return out;
}

std::string Template::render(const std::vector<Row>& rows) const {
  if (!table_) {
    std::string out;
    for (const auto& row : rows) out += renderOne(row) + "\n";
    return out;
  }
  std::vector<std::string> lines;
  lines.push_back(renderHeader());
  for (const auto& row : rows) lines.push_back(renderOne(row));
  // A row may span several lines (a "\n" in the template); align each.
  std::vector<std::string> split;
  for (const auto& line : lines) {
    size_t start = 0;
    while (true) {
      const size_t nl = line.find('\n', start);
      split.push_back(line.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  return alignTabs(split);
}

namespace {

// Follows ".A.B" through nested objects; nullptr when a key is missing.
const nlohmann::json* lookupPath(const nlohmann::json& object, std::string_view path) {
  const nlohmann::json* at = &object;
  size_t pos = 1;  // past the leading '.'
  while (pos < path.size()) {
    size_t dot = path.find('.', pos);
    std::string key(path.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return at;
}

std::string plainText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "<nil>";
  return value.dump();
}

}  // namespace

Result<std::string> renderInspectFormat(std::string_view format, const nlohmann::json& object) {
  std::string out;
  size_t pos = 0;
  while (pos < format.size()) {
    size_t open = format.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(format.substr(pos));
      break;
    }
    out.append(format.substr(pos, open - pos));
    size_t close = format.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Error::msg("template: :1: unclosed action");
    }
    std::string_view action = format.substr(open + 2, close - open - 2);
    while (!action.empty() && action.front() == ' ') action.remove_prefix(1);
    while (!action.empty() && action.back() == ' ') action.remove_suffix(1);
    bool asJson = false;
    if (action.starts_with("json ")) {
      asJson = true;
      action.remove_prefix(5);
      while (!action.empty() && action.front() == ' ') action.remove_prefix(1);
    }
    if (action.empty() || action.front() != '.') {
      return Error::msg("template: :1:" + std::to_string(open + 3) + ": function \"" +
                        std::string(action.substr(0, action.find(' '))) + "\" not defined");
    }
    const nlohmann::json* value = lookupPath(object, action);
    if (value == nullptr) {
      out += asJson ? "null" : "<no value>";
    } else {
      out += asJson ? value->dump() : plainText(*value);
    }
    pos = close + 2;
  }
  return out;
}

}  // namespace skiff::cli
