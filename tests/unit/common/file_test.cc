// Whole-file reads and atomic writes, in a temp dir.
#include "skiff/common/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "skiff/common/fd.h"

namespace skiff {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/skiff-file-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path_ = made ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(ReadFile, ReturnsWholeContentLargerThanOneChunk) {
  TempDir d;
  ASSERT_FALSE(d.path().empty());
  // 200 KiB with a pattern, so a lost or repeated chunk changes the text.
  std::string content;
  for (int i = 0; content.size() < 200 * 1024; ++i) content += std::to_string(i) + ",";
  ASSERT_TRUE(writeFileAtomic(d.file("big"), content).ok());
  auto read = readFile(d.file("big"));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->size(), content.size());
  EXPECT_EQ(*read, content);
}

TEST(ReadFile, EmptyFileIsEmptyString) {
  TempDir d;
  ASSERT_TRUE(writeFileAtomic(d.file("empty"), "").ok());
  auto read = readFile(d.file("empty"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "");
}

TEST(ReadFile, MissingFileNamesPathAndErrno) {
  TempDir d;
  auto read = readFile(d.file("nope"));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ENOENT);
  EXPECT_EQ(read.error().message.rfind("open " + d.file("nope"), 0), 0u) << read.error().message;
}

TEST(ReadFile, DirectoryIsReadError) {
  TempDir d;
  auto read = readFile(d.path().string());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, EISDIR);
  EXPECT_EQ(read.error().message.rfind("read " + d.path().string(), 0), 0u) << read.error().message;
}

TEST(WriteFileAtomic, ReplacesWholeAndLeavesNoTempFile) {
  TempDir d;
  const std::string p = d.file("f.json");
  ASSERT_TRUE(writeFileAtomic(p, "first, longer content").ok());
  ASSERT_TRUE(writeFileAtomic(p, "second").ok());
  EXPECT_EQ(*readFile(p), "second");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644 & ~mask);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "no temp file left behind";
}

TEST(WriteFileAtomic, MissingDirectoryFailsWithoutCreatingAnything) {
  TempDir d;
  auto written = writeFileAtomic(d.file("no/dir"), "x");
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ENOENT);
  EXPECT_FALSE(fs::exists(d.path() / "no"));
}

TEST(ReadChunks, SinkErrorStopsTheReadAndIsReturned) {
  TempDir d;
  ASSERT_TRUE(writeFileAtomic(d.file("f"), std::string(100000, 'x')).ok());
  UniqueFd fd(::open(d.file("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  int calls = 0;
  auto status = readChunks(fd.get(), "f", [&calls](std::string_view) -> Status {
    ++calls;
    return Error::msg("stop here");
  });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "stop here");
  EXPECT_EQ(calls, 1);
}

TEST(WriteAll, WritesEverythingThroughAPipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd readEnd(p[0]), writeEnd(p[1]);
  ASSERT_TRUE(writeAll(writeEnd.get(), "hello pipe", "pipe").ok());
  writeEnd = UniqueFd();
  std::string got;
  ASSERT_TRUE(readChunks(readEnd.get(), "pipe", [&got](std::string_view c) {
                got.append(c);
                return okStatus();
              }).ok());
  EXPECT_EQ(got, "hello pipe");
}

}  // namespace
}  // namespace skiff
