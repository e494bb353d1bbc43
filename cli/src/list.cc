#include "skiff/cli/list.h"

#include <cctype>

namespace skiff::cli {

const std::string& listFormatText(const ListView& view, const ListFlags& flags) {
  if (flags.quiet) return view.quietFormat;
  return flags.format.empty() ? view.defaultFormat : flags.format;
}

Result<Template> listTemplate(const ListView& view, const ListFlags& flags) {
  return Template::parse(listFormatText(view, flags), view.fields);
}

std::string queryParam(const std::string& key, const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return key + "=" + out;
}

}  // namespace skiff::cli
