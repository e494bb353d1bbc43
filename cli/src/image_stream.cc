// Archives on stdout and stdin, through a private temporary folder.

#include "image_stream.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <vector>

namespace skiff::cli {
namespace {

namespace fs = std::filesystem;

// A folder only its owner reads (mkdtemp: 0700), removed with what is in it.
class TempDir {
 public:
  static std::optional<TempDir> make() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/skiff-archive.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "Error: cannot make a temporary folder " << pattern << ": " << std::strerror(errno) << "\n";
      return std::nullopt;
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Copies in to out; false (the reason on stderr) when either fails. *bytes:
// how much went across.
bool copyStream(std::istream& in, std::ostream& out, const std::string& what, uint64_t* bytes = nullptr) {
  std::vector<char> buf(1 << 16);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    out.write(buf.data(), n);
    if (!out) break;
    total += static_cast<uint64_t>(n);
  }
  out.flush();
  if (bytes != nullptr) *bytes = total;
  if (!out || in.bad()) {
    std::cerr << "Error: " << what << ": " << std::strerror(errno) << "\n";
    return false;
  }
  return true;
}

}  // namespace

int saveToStdout(const Daemon& daemon, const std::vector<std::string>& refs) {
  if (::isatty(STDOUT_FILENO) == 1) {
    std::cerr << "Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n";
    return 1;
  }
  auto dir = TempDir::make();
  if (!dir) return 1;
  const std::string file = dir->file("images.tar");
  if (!daemon.call("POST", "/v1/images/save", nlohmann::json{{"names", refs}, {"output", file}})) return 1;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "Error: open " << file << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  return copyStream(in, std::cout, "write to stdout") ? 0 : 1;
}

int loadFromStdin(const Daemon& daemon) {
  if (::isatty(STDIN_FILENO) == 1) {
    std::cerr << "Error: requested load from stdin, but stdin is empty\n";
    return 1;
  }
  auto dir = TempDir::make();
  if (!dir) return 1;
  const std::string file = dir->file("images.tar");
  {
    std::ofstream out(file, std::ios::binary);
    uint64_t bytes = 0;
    if (!out || !copyStream(std::cin, out, "read stdin into " + file, &bytes)) return 1;
    if (bytes == 0) {
      std::cerr << "Error: requested load from stdin, but stdin is empty\n";
      return 1;
    }
  }
  auto answer = daemon.call("POST", "/v1/images/load", nlohmann::json{{"input", file}});
  if (!answer) return 1;
  printMessages(*answer, "log");
  return 0;
}

}  // namespace skiff::cli
