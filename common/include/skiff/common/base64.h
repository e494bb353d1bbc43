#pragma once
// Base64 (RFC 4648, standard alphabet, '=' padding) for bytes that travel
// inside JSON: image layers a worker fetches from the manager. Pure.

#include <optional>
#include <string>
#include <string_view>

namespace skiff {

std::string base64Encode(std::string_view bytes);
// nullopt for anything that is not canonical base64 (bad characters, bad
// length, bits after the padding).
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace skiff
