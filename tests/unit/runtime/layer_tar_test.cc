// Layers as gzip tars (runtime/src/layer_tar.h): what pack() writes is read
// by GNU tar and is the same bytes for the same files; what GNU tar and
// docker's conventions write unpacks into the tree a container must see.
#include "layer_tar.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "image_fs.h"
#include "tar_helpers.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;
using testing::gunzip;
using testing::TarEntry;
using testing::tarOf;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& p, const std::string& content, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  fs::permissions(p, mode);
}

// stdout of a shell command (the tools are GNU tar and coreutils).
std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

struct stat lstatOf(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st;
}

class LayerTarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-layer-tar-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { layertar::removeUnpacked(base_.string()); }

  fs::path dir(const std::string& name) {
    fs::path p = base_ / name;
    fs::create_directories(p);
    return p;
  }

  fs::path base_;
};

TEST_F(LayerTarTest, PackIsCanonicalAndGnuTarReadsIt) {
  // The same tree made in another order, at other times: the same bytes.
  fs::path a = dir("a"), b = dir("b");
  put(a / "x" / "one", "1\n");
  put(a / "two", "2\n", fs::perms(0755));
  fs::create_symlink("two", a / "link");
  put(b / "two", "2\n", fs::perms(0755));
  fs::create_symlink("two", b / "link");
  put(b / "x" / "one", "1\n");
  fs::permissions(a / "x", fs::perms(0755));
  fs::permissions(b / "x", fs::perms(0755));
  fs::last_write_time(b / "two", fs::file_time_type::clock::now() - std::chrono::hours(50));
  auto pa = layertar::pack(a.string());
  auto pb = layertar::pack(b.string());
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pa->blob, pb->blob);
  EXPECT_EQ(pa->diffId, "sha256:" + imagefs::sha256Hex(gunzip(pa->blob)));
  EXPECT_EQ(pa->digest, "sha256:" + imagefs::sha256Hex(pa->blob));
  EXPECT_EQ(pa->blob.substr(4, 4), std::string(4, '\0')) << "no time in the gzip header";

  // GNU tar lists it: walk order, numeric owners, time 0, modes.
  std::ofstream(base_ / "a.tar.gz", std::ios::binary) << pa->blob;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  const std::string owner = std::to_string(uid) + "/" + std::to_string(gid);
  std::string listing = run("tar --numeric-owner --utc -tvzf " + (base_ / "a.tar.gz").string() + " | tr -s ' '");
  EXPECT_EQ(listing, "lrwxrwxrwx " + owner + " 0 1970-01-01 00:00 link -> two\n" +  //
                         "-rwxr-xr-x " + owner + " 2 1970-01-01 00:00 two\n" +      //
                         "drwxr-xr-x " + owner + " 0 1970-01-01 00:00 x/\n" +       //
                         "-rw-r--r-- " + owner + " 2 1970-01-01 00:00 x/one\n");

  fs::permissions(b / "two", fs::perms(0700));
  EXPECT_NE(layertar::pack(b.string())->diffId, pa->diffId) << "a mode is content";
  fs::permissions(b / "two", fs::perms(0755));
  put(b / "x" / "one", "changed\n");
  EXPECT_NE(layertar::pack(b.string())->diffId, pa->diffId);
  EXPECT_FALSE(layertar::pack((base_ / "missing").string()).ok());
}

TEST_F(LayerTarTest, UnpacksWhatGnuTarWrites) {
  // Parents GNU tar does not list, a hard link pair, a symlink, modes.
  fs::path src = dir("src");
  put(src / "deep" / "a" / "b" / "file", "deep\n", fs::perms(0600));
  put(src / "hl1", "same inode\n", fs::perms(0640));
  fs::create_hard_link(src / "hl1", src / "hl2");
  fs::create_symlink("/etc/passwd", src / "abs-link");
  const fs::path blob = base_ / "layer.tar.gz";
  run("tar --owner=1234 --group=5678 -czf " + blob.string() + " -C " + src.string() +
      " deep/a/b/file hl1 hl2 abs-link");
  const std::string bytes = slurp(blob);
  ASSERT_FALSE(bytes.empty());

  fs::path out = dir("out");
  auto got = layertar::unpack(bytes, out.string());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, "sha256:" + imagefs::sha256Hex(gunzip(bytes)));
  EXPECT_EQ(*layertar::diffIdOf(bytes), *got);

  EXPECT_EQ(slurp(out / "deep" / "a" / "b" / "file"), "deep\n");
  EXPECT_EQ(lstatOf(out / "deep" / "a" / "b" / "file").st_mode & 07777, 0600u);
  for (const char* parent : {"deep", "deep/a", "deep/a/b"}) {
    EXPECT_TRUE(S_ISDIR(lstatOf(out / parent).st_mode)) << parent;
    EXPECT_EQ(lstatOf(out / parent).st_mode & 07777, 0755u) << parent << " made as docker makes it";
  }
  EXPECT_EQ(lstatOf(out / "hl1").st_ino, lstatOf(out / "hl2").st_ino) << "a hard link stays one";
  EXPECT_EQ(lstatOf(out / "hl2").st_nlink, 2u);
  EXPECT_EQ(fs::read_symlink(out / "abs-link"), "/etc/passwd") << "a symlink is stored, never followed";
  if (::geteuid() == 0) {
    EXPECT_EQ(lstatOf(out / "hl1").st_uid, 1234u);
    EXPECT_EQ(lstatOf(out / "hl1").st_gid, 5678u);
  }
}

TEST_F(LayerTarTest, LaterEntriesReplaceEarlierOnes) {
  fs::path out = dir("out");
  auto got = layertar::unpack(tarOf({{TarEntry::kFile, "x", "first"},
                                     {TarEntry::kFile, "x", "second"},
                                     {TarEntry::kDir, "d", "", 0755},
                                     {TarEntry::kFile, "d/in", "gone with d"},
                                     {TarEntry::kFile, "d", "now a file"}}),
                              out.string());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(slurp(out / "x"), "second");
  EXPECT_EQ(slurp(out / "d"), "now a file");
}

TEST_F(LayerTarTest, WhiteoutsBecomeOverlayfsOnesAndBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts are device nodes and trusted xattrs: root only";
  fs::path out = dir("out");
  auto got = layertar::unpack(tarOf({{TarEntry::kFile, ".wh.old", ""},
                                     {TarEntry::kDir, "d", "", 0755},
                                     {TarEntry::kFile, "d/.wh..wh..opq", ""},
                                     {TarEntry::kFile, "d/new", "n"}}),
                              out.string());
  ASSERT_TRUE(got.ok()) << got.error().message;
  struct stat wh = lstatOf(out / "old");
  EXPECT_TRUE(S_ISCHR(wh.st_mode));
  EXPECT_EQ(wh.st_rdev, makedev(0, 0));
  char v[4] = {};
  EXPECT_EQ(::lgetxattr((out / "d").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(fs::exists(fs::symlink_status(out / ".wh.old")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(out / "d" / ".wh..wh..opq")));

  auto packed = layertar::pack(out.string());
  ASSERT_TRUE(packed.ok()) << packed.error().message;
  std::ofstream(base_ / "again.tar.gz", std::ios::binary) << packed->blob;
  EXPECT_EQ(run("tar -tzf " + (base_ / "again.tar.gz").string()), "d/\nd/.wh..wh..opq\nd/new\n.wh.old\n");

  // A layer cannot forge overlayfs metadata by xattr.
  fs::path forged = dir("forged");
  put(base_ / "src" / "f", "x");
  ASSERT_EQ(::lsetxattr((base_ / "src" / "f").c_str(), "trusted.overlay.redirect", "/etc", 4, 0), 0);
  run("tar --xattrs --xattrs-include='*' -czf " + (base_ / "x.tar.gz").string() + " -C " + (base_ / "src").string() +
      " f");
  ASSERT_TRUE(layertar::unpack(slurp(base_ / "x.tar.gz"), forged.string()).ok());
  EXPECT_EQ(::lgetxattr((forged / "f").c_str(), "trusted.overlay.redirect", v, sizeof v), -1);
}

TEST_F(LayerTarTest, CorruptGzipIsRefused) {
  fs::path src = dir("src");
  put(src / "f", std::string(10000, 'z'));
  auto packed = layertar::pack(src.string());
  ASSERT_TRUE(packed.ok());
  std::string bad = packed->blob;
  bad[bad.size() / 2] ^= 0x55;
  auto got = layertar::unpack(bad, dir("out").string());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message.rfind("invalid layer: ", 0), 0u) << got.error().message;
  auto trailing = layertar::diffIdOf(packed->blob + "junk");
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().message, "invalid layer: 4 bytes of trailing data after the gzip stream");
}

}  // namespace
}  // namespace skiff::runtime
