// ImageStore: builds from a temp context into a temp data root (no root
// needed), then checks what a user of `skiff image ...` and the container
// runtime would look at: ids, tags, files and modes in the layer dirs, errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "image_fs.h"
#include "skiff/runtime/image.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;

// What the builder writes as "architecture" in an image config (docker's GOARCH names).
#if defined(__x86_64__)
constexpr const char* kArch = "amd64";
#elif defined(__aarch64__)
constexpr const char* kArch = "arm64";
#else
constexpr const char* kArch = "unknown";
#endif

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-image-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ctx_ = base_ / "ctx";
    data_ = base_ / "data";
    fs::create_directories(ctx_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  void write(const std::string& rel, const std::string& content, fs::perms mode = fs::perms(0644)) {
    fs::path p = ctx_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    fs::permissions(p, mode);
  }
  // The getstartedlab context: the repo's real Dockerfile with a stand-in
  // for the hello binary (the test must not depend on building it).
  void getStartedLab() {
    write("Dockerfile", slurp(fs::path(SKIFF_EXAMPLES_DIR) / "getstartedlab" / "Dockerfile"));
    write("hello", "#!fake hello binary\n", fs::perms(0755));
  }
  size_t storedLayers() const {
    size_t n = 0;
    if (fs::exists(data_ / "images" / "layers")) {
      for (const auto& e : fs::directory_iterator(data_ / "images" / "layers")) n += e.is_directory() ? 1 : 0;
    }
    return n;
  }
  Result<ImageRecord> build(ImageStore& store, const std::string& dockerfile, const std::string& tag = "app:1") {
    write("Dockerfile", dockerfile);
    return store.build(ctx_.string(), tag, &log_);
  }

  fs::path base_, ctx_, data_;
  std::vector<std::string> log_;
};

TEST_F(ImageStoreTest, BuildsTheGetStartedLabImage) {
  getStartedLab();
  ImageStore store(data_.string());
  auto img = store.build(ctx_.string(), "s3ich4n/get-started:pt02", &log_);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->id.rfind("sha256:", 0), 0u);
  EXPECT_EQ(img->id.size(), 7u + 64u);
  EXPECT_EQ(img->tags, (std::vector<std::string>{"s3ich4n/get-started:pt02"}));
  EXPECT_EQ(img->config.env, (std::vector<std::string>{"NAME=World"}));
  EXPECT_EQ(img->config.cmd, (std::vector<std::string>{"/hello", "80"}));
  EXPECT_TRUE(img->config.entrypoint.empty());
  EXPECT_EQ(img->config.exposedPorts, (std::vector<std::string>{"80/tcp"}));
  EXPECT_EQ(img->config.workingDir, "");
  EXPECT_EQ(img->config.user, "");
  EXPECT_TRUE(img->config.labels.empty());
  EXPECT_FALSE(img->config.hasShell);
  ASSERT_EQ(img->layers.size(), 1u);
  EXPECT_GT(img->created, 0);
  EXPECT_EQ(img->size, static_cast<int64_t>(std::string("#!fake hello binary\n").size()));

  auto dirs = store.layerDirs(*img);
  ASSERT_EQ(dirs.size(), 1u);
  fs::path hello = fs::path(dirs[0]) / "hello";
  EXPECT_EQ(slurp(hello), "#!fake hello binary\n");
  struct stat st {};
  ASSERT_EQ(::stat(hello.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "the binary must stay executable";

  // Read back from disk by name: the same config, field by field.
  auto again = store.resolve("s3ich4n/get-started:pt02");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, img->id);
  EXPECT_EQ(again->tags, (std::vector<std::string>{"s3ich4n/get-started:pt02"}));
  EXPECT_EQ(again->config.env, (std::vector<std::string>{"NAME=World"}));
  EXPECT_EQ(again->config.cmd, (std::vector<std::string>{"/hello", "80"}));
  EXPECT_TRUE(again->config.entrypoint.empty());
  EXPECT_EQ(again->config.exposedPorts, (std::vector<std::string>{"80/tcp"}));
  EXPECT_EQ(again->config.workingDir, "");
  EXPECT_EQ(again->config.user, "");
  EXPECT_TRUE(again->config.labels.empty());
  EXPECT_FALSE(again->config.hasShell);
  EXPECT_EQ(again->layers, img->layers);

  EXPECT_NE(std::find(log_.begin(), log_.end(), "Step 1/5 : FROM scratch"), log_.end());
  EXPECT_EQ(log_.back(), "Successfully tagged s3ich4n/get-started:pt02");
  // The on-disk files are what other tools read: valid JSON, the tag mapped.
  auto repos = nlohmann::json::parse(slurp(data_ / "images" / "repositories.json"));
  EXPECT_EQ(repos["tags"]["s3ich4n/get-started:pt02"], img->id);
  // The config file, docker's image config layout; the id is its content address.
  const fs::path configFile = data_ / "images" / "configs" / (img->id.substr(7) + ".json");
  ASSERT_TRUE(fs::exists(configFile));
  const std::string configText = slurp(configFile);
  EXPECT_EQ(img->id, "sha256:" + imagefs::sha256Hex(configText));
  auto config = nlohmann::json::parse(configText);
  EXPECT_EQ(config["architecture"], kArch);
  EXPECT_EQ(config["os"], "linux");
  EXPECT_EQ(config["config"],
            nlohmann::json::parse(R"({"Env": ["NAME=World"], "Entrypoint": [], "Cmd": ["/hello", "80"],
                                                       "WorkingDir": "", "User": "", "ExposedPorts": {"80/tcp": {}},
                                                       "Labels": {}})"));
  EXPECT_EQ(config["rootfs"]["type"], "layers");
  EXPECT_EQ(config["rootfs"]["diff_ids"], nlohmann::json(img->layers));
  EXPECT_EQ(config.size(), 4u) << "docker's keys only: " << config.dump();
  EXPECT_FALSE(img->config.hasShell) << "derived from the layers, not stored";
  // Each layer's blob beside its directory: the gzip tar the diff id names.
  for (const auto& layer : img->layers) {
    const fs::path blob = data_ / "images" / "layers" / (layer.substr(7) + ".tar.gz");
    ASSERT_TRUE(fs::exists(blob)) << blob;
    EXPECT_TRUE(fs::is_directory(data_ / "images" / "layers" / layer.substr(7)));
  }
  EXPECT_TRUE(fs::is_empty(data_ / "images" / "tmp")) << "no build leftovers";
}

TEST_F(ImageStoreTest, SameBuildTwiceGivesSameIdAndOneLayer) {
  getStartedLab();
  ImageStore store(data_.string());
  auto a = store.build(ctx_.string(), "hello", nullptr);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = store.build(ctx_.string(), "hello", nullptr);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(a->created, b->created);
  EXPECT_EQ(storedLayers(), 1u);
  EXPECT_EQ(store.list().size(), 1u);
}

TEST_F(ImageStoreTest, ChangedContentGivesNewImageAndOldOneDangles) {
  getStartedLab();
  ImageStore store(data_.string());
  auto a = store.build(ctx_.string(), "hello", nullptr);
  ASSERT_TRUE(a.ok());
  write("hello", "#!changed\n", fs::perms(0755));
  auto b = store.build(ctx_.string(), "hello", nullptr);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_NE(a->layers, b->layers);
  EXPECT_EQ(storedLayers(), 2u);
  auto list = store.list();
  ASSERT_EQ(list.size(), 2u);
  auto old = std::find_if(list.begin(), list.end(), [&](const auto& r) { return r.id == a->id; });
  ASSERT_NE(old, list.end());
  EXPECT_TRUE(old->tags.empty());
  EXPECT_EQ(store.resolve("hello:latest")->id, b->id);
  // Same bytes but another mode is other content.
  fs::permissions(ctx_ / "hello", fs::perms(0644));
  auto c = store.build(ctx_.string(), "hello", nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->layers, b->layers);
}

TEST_F(ImageStoreTest, NotFoundErrorTextIsExact) {
  ImageStore store(data_.string());
  auto r = store.resolve("nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "image nope:latest not found locally; build it with skiff image build");
  auto t = store.resolve("s3ich4n/get-started:pt02");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, "image s3ich4n/get-started:pt02 not found locally; build it with skiff image build");
  EXPECT_EQ(store.resolve("localhost:5000/app").error().message,
            "image localhost:5000/app:latest not found locally; build it with skiff image build");
  write("Dockerfile", "FROM base\nCOPY a /a\n");
  auto b = store.build(ctx_.string(), "x", nullptr);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "line 1: image base:latest not found locally; build it with skiff image build");
}

TEST_F(ImageStoreTest, TagResolveListRemove) {
  getStartedLab();
  ImageStore store(data_.string());
  auto img = store.build(ctx_.string(), "app:1", nullptr);
  ASSERT_TRUE(img.ok());
  ASSERT_TRUE(store.tag("app:1", "app").ok());
  ASSERT_TRUE(store.tag(img->id.substr(7, 12), "other/app:2").ok()) << "tag by short id";
  EXPECT_EQ(store.resolve("app")->id, img->id);
  EXPECT_EQ(store.resolve(img->id)->id, img->id);
  EXPECT_EQ(store.resolve(img->id.substr(7))->id, img->id);
  auto list = store.list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].tags, (std::vector<std::string>{"app:1", "app:latest", "other/app:2"}));

  auto bad = store.tag("app:1", "Bad/Name");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("must be lowercase"), std::string::npos);
  EXPECT_FALSE(store.tag("missing", "x").ok());

  // Removing by id while several names point at it needs force.
  auto byId = store.remove(img->id.substr(7, 12), false);
  ASSERT_FALSE(byId.ok());
  EXPECT_NE(byId.error().message.find("referenced in multiple repositories"), std::string::npos);

  // Removing a name that is not the last one only untags.
  ASSERT_TRUE(store.remove("app", false).ok());
  ASSERT_TRUE(store.remove("other/app:2", false).ok());
  EXPECT_FALSE(store.resolve("app").ok());
  EXPECT_EQ(store.resolve("app:1")->id, img->id);
  EXPECT_EQ(storedLayers(), 1u);

  // The last name takes the image and its layers with it.
  ASSERT_TRUE(store.remove("app:1", false).ok());
  EXPECT_TRUE(store.list().empty());
  EXPECT_EQ(storedLayers(), 0u);
  EXPECT_FALSE(fs::exists(data_ / "images" / "configs" / (img->id.substr(7) + ".json")));
  EXPECT_EQ(store.remove("app:1", false).error().message,
            "image app:1 not found locally; build it with skiff image build");
}

TEST_F(ImageStoreTest, RemoveRefusesImageInUseUnlessForced) {
  getStartedLab();
  std::string usedId;
  ImageStore store(data_.string(), [&](const std::string& id) { return id == usedId; });
  auto img = store.build(ctx_.string(), "app:1", nullptr);
  ASSERT_TRUE(img.ok());
  usedId = img->id;
  auto refused = store.remove("app:1", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "conflict: unable to remove image app:1 (must force) - image is being used by a "
            "service or container");
  EXPECT_TRUE(store.resolve("app:1").ok());

  // Forced: the name goes, the files stay for the running containers.
  ASSERT_TRUE(store.remove("app:1", true).ok());
  EXPECT_FALSE(store.resolve("app:1").ok());
  auto dangling = store.resolve(img->id);
  ASSERT_TRUE(dangling.ok());
  EXPECT_TRUE(dangling->tags.empty());
  EXPECT_TRUE(fs::exists(store.layerDirs(*dangling)[0]));

  usedId.clear();
  ASSERT_TRUE(store.remove(img->id, false).ok());
  EXPECT_TRUE(store.list().empty());
  EXPECT_EQ(storedLayers(), 0u);
}

TEST_F(ImageStoreTest, FromLocalImageInheritsConfigAndLayers) {
  write("hello", "hello\n", fs::perms(0755));
  write("data/page.html", "<p>hi</p>\n");
  ImageStore store(data_.string());
  auto base = build(store,
                    "FROM scratch\nCOPY hello /hello\nENV NAME=World\nEXPOSE 80\n"
                    "WORKDIR /srv\nUSER 1000\nLABEL tier=base\nCMD [\"/hello\", \"80\"]\n",
                    "base:1");
  ASSERT_TRUE(base.ok()) << base.error().message;
  auto child = build(store, "FROM base:1\nCOPY data /www\nENV MODE=prod\nEXPOSE 81/udp\n", "child");
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_EQ(child->config.env, (std::vector<std::string>{"NAME=World", "MODE=prod"}));
  EXPECT_EQ(child->config.cmd, (std::vector<std::string>{"/hello", "80"}));
  EXPECT_EQ(child->config.exposedPorts, (std::vector<std::string>{"80/tcp", "81/udp"}));
  EXPECT_EQ(child->config.workingDir, "/srv");
  EXPECT_EQ(child->config.user, "1000");
  EXPECT_EQ(child->config.labels.at("tier"), "base");
  ASSERT_EQ(child->layers.size(), 2u);
  EXPECT_EQ(child->layers[0], base->layers[0]);
  auto dirs = store.layerDirs(*child);
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_TRUE(fs::exists(fs::path(dirs[0]) / "www" / "page.html")) << "topmost first";
  EXPECT_TRUE(fs::exists(fs::path(dirs[1]) / "hello"));

  // Removing the base keeps the layer the child still uses.
  ASSERT_TRUE(store.remove("base:1", false).ok());
  EXPECT_TRUE(fs::exists(fs::path(dirs[1]) / "hello"));
  ASSERT_TRUE(store.remove("child", false).ok());
  EXPECT_EQ(storedLayers(), 0u);
}

TEST_F(ImageStoreTest, ShellFormNeedsShell) {
  write("hello", "x", fs::perms(0755));
  ImageStore store(data_.string());
  auto r = build(store, "FROM scratch\nCOPY hello /hello\n\nCMD /hello 80\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "line 4: CMD in shell form needs /bin/sh, which the image does not have; use the "
            "exec form: CMD [\"/path/to/binary\", \"arg\"]");
  auto e = build(store, "FROM scratch\nCOPY hello /hello\nENTRYPOINT /hello\n");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message.rfind("line 3: ENTRYPOINT in shell form needs /bin/sh", 0), 0u) << e.error().message;
  EXPECT_TRUE(fs::is_empty(data_ / "images" / "tmp"));

  write("sh", "#!fake shell", fs::perms(0755));
  auto ok = build(store, "FROM scratch\nCOPY sh /bin/sh\nCOPY hello /hello\nCMD /hello 80\n");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->config.hasShell);
  EXPECT_EQ(ok->config.cmd, (std::vector<std::string>{"/bin/sh", "-c", "/hello 80"}));
}

TEST_F(ImageStoreTest, EnvArgWorkdirLabelForms) {
  write("hello", "x", fs::perms(0755));
  ImageStore store(data_.string());
  auto r = build(store,
                 "ARG BASE=scratch\n"
                 "FROM $BASE\n"
                 "ARG VER=1.2\n"
                 "ENV A=$VER B=\"x y\" \\\n"
                 "    C=${MISSING:-dflt}\n"
                 "ENV D some value\n"
                 "ENV A=${A}.3\n"
                 "WORKDIR /app\n"
                 "WORKDIR sub\n"
                 "COPY hello ./\n"
                 "COPY [\"hello\", \"bin/hello2\"]\n"
                 "LABEL version=$VER \"com.example.name\"=\"my app\"\n"
                 "USER nobody\n"
                 "ENTRYPOINT [\"/app/sub/hello\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->config.env, (std::vector<std::string>{"A=1.2.3", "B=x y", "C=dflt", "D=some value"}));
  EXPECT_EQ(r->config.workingDir, "/app/sub");
  EXPECT_EQ(r->config.labels.at("version"), "1.2");
  EXPECT_EQ(r->config.labels.at("com.example.name"), "my app");
  EXPECT_EQ(r->config.user, "nobody");
  ASSERT_EQ(r->layers.size(), 2u);
  auto dirs = store.layerDirs(*r);
  EXPECT_TRUE(fs::exists(fs::path(dirs[1]) / "app" / "sub" / "hello"));
  EXPECT_TRUE(fs::exists(fs::path(dirs[0]) / "app" / "sub" / "bin" / "hello2"));
}

TEST_F(ImageStoreTest, CopyDirectoriesModesSymlinksAndDockerignore) {
  write("site/index.html", "index\n");
  write("site/cgi/run.sh", "#!/bin/sh\n", fs::perms(0750));
  write("site/secret.key", "do not ship\n");
  write("site/logs/a.log", "log\n");
  fs::create_symlink("index.html", ctx_ / "site" / "home.html");
  write(".dockerignore", "# keep secrets out\nsite/secret.key\n**/*.log\n");
  ImageStore store(data_.string());
  auto r = build(store, "FROM scratch\nCOPY site /var/www/\nCMD [\"/x\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  fs::path www = fs::path(store.layerDirs(*r)[0]) / "var" / "www";
  EXPECT_EQ(slurp(www / "index.html"), "index\n");
  EXPECT_FALSE(fs::exists(www / "secret.key"));
  EXPECT_FALSE(fs::exists(www / "logs" / "a.log"));
  EXPECT_TRUE(fs::is_symlink(www / "home.html"));
  EXPECT_EQ(fs::read_symlink(www / "home.html"), "index.html");
  struct stat st {};
  ASSERT_EQ(::stat((www / "cgi" / "run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::stat((www.parent_path()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "created parents are 0755 whatever the umask";

  auto ignored = build(store, "FROM scratch\nCOPY site/secret.key /k\n");
  ASSERT_FALSE(ignored.ok());
  EXPECT_EQ(ignored.error().message.rfind("line 2: COPY failed: file not found in build context", 0), 0u)
      << ignored.error().message;
}

TEST_F(ImageStoreTest, BuildErrorsNameTheLine) {
  write("hello", "x");
  ImageStore store(data_.string());
  auto run = build(store, "FROM scratch\nCOPY hello /hello\nRUN make\n");
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().message, "line 3: RUN is not supported (skiff builds images without running containers)");
  auto url = build(store, "FROM scratch\nADD https://example.com/x.tgz /x\n");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().message, "line 2: ADD of remote URLs is not supported");
  auto missing = build(store, "FROM scratch\nCOPY nothere /x\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "line 2: COPY failed: file not found in build context or excluded by .dockerignore: "
            "stat nothere: file does not exist");
  auto outside = build(store, "FROM scratch\nCOPY ../etc/passwd /x\n");
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.error().message, "line 2: COPY failed: forbidden path outside the build context: ../etc/passwd");
  auto noFrom = build(store, "COPY hello /hello\n");
  ASSERT_FALSE(noFrom.ok());
  EXPECT_EQ(noFrom.error().message, "line 1: COPY before FROM: a Dockerfile must start with FROM");
  auto port = build(store, "FROM scratch\nEXPOSE 99999\n");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.error().message, "line 2: EXPOSE 99999: invalid port");
  auto stages = build(store, "FROM scratch\nFROM scratch\n");
  ASSERT_FALSE(stages.ok());
  EXPECT_EQ(stages.error().message, "line 2: multi-stage builds are not supported (a second FROM)");
  auto noCtx = store.build((base_ / "absent").string(), "x", nullptr);
  EXPECT_FALSE(noCtx.ok());
  EXPECT_TRUE(store.list().empty()) << "failed builds leave no image";
  EXPECT_EQ(storedLayers(), 0u) << "failed builds leave no layer";
}

TEST_F(ImageStoreTest, CopyIntoExistingDirectoryOrDot) {
  write("hello", "x", fs::perms(0755));
  write("data/a.txt", "a");
  ImageStore store(data_.string());
  auto r = build(store,
                 "FROM scratch\nCOPY data /www\nCOPY hello /www\nWORKDIR /app\nCOPY hello .\n"
                 "CMD [\"/x\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto dirs = store.layerDirs(*r);
  ASSERT_EQ(dirs.size(), 3u);
  EXPECT_TRUE(fs::is_regular_file(fs::path(dirs[1]) / "www" / "hello"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(dirs[0]) / "app" / "hello"));
}

// `skiff image inspect` JSON: a record written out here, not built, so both
// directions are checked against text in the test.
constexpr const char* kInspectJson =
    R"({"Config":{"Cmd":["/hello","80"],"Entrypoint":["/init"],"Env":["NAME=World","MODE=prod"],)"
    R"("ExposedPorts":["80/tcp","81/udp"],"HasShell":true,"Labels":{"tier":"base"},"User":"1000",)"
    R"("WorkingDir":"/srv"},"Created":1700000000,)"
    R"("Id":"sha256:1111111111111111111111111111111111111111111111111111111111111111",)"
    R"("Layers":["sha256:2222222222222222222222222222222222222222222222222222222222222222",)"
    R"("sha256:3333333333333333333333333333333333333333333333333333333333333333"],)"
    R"("RepoTags":["app:1","app:latest"],"Size":4096})";

ImageRecord inspectRecord() {
  ImageRecord r;
  r.id = "sha256:" + std::string(64, '1');
  r.tags = {"app:1", "app:latest"};
  r.layers = {"sha256:" + std::string(64, '2'), "sha256:" + std::string(64, '3')};
  r.created = 1700000000;
  r.size = 4096;
  r.config.env = {"NAME=World", "MODE=prod"};
  r.config.entrypoint = {"/init"};
  r.config.cmd = {"/hello", "80"};
  r.config.workingDir = "/srv";
  r.config.user = "1000";
  r.config.exposedPorts = {"80/tcp", "81/udp"};
  r.config.labels = {{"tier", "base"}};
  r.config.hasShell = true;
  return r;
}

TEST(ImageJson, RecordToJsonIsTheExpectedText) { EXPECT_EQ(imageToJson(inspectRecord()).dump(), kInspectJson); }

TEST(ImageJson, JsonToRecordGivesTheExpectedFields) {
  ImageRecord back = imageFromJson(nlohmann::json::parse(kInspectJson));
  EXPECT_EQ(back.id, "sha256:1111111111111111111111111111111111111111111111111111111111111111");
  EXPECT_EQ(back.tags, (std::vector<std::string>{"app:1", "app:latest"}));
  EXPECT_EQ(back.layers,
            (std::vector<std::string>{"sha256:2222222222222222222222222222222222222222222222222222222222222222",
                                      "sha256:3333333333333333333333333333333333333333333333333333333333333333"}));
  EXPECT_EQ(back.created, 1700000000);
  EXPECT_EQ(back.size, 4096);
  EXPECT_EQ(back.config.env, (std::vector<std::string>{"NAME=World", "MODE=prod"}));
  EXPECT_EQ(back.config.entrypoint, (std::vector<std::string>{"/init"}));
  EXPECT_EQ(back.config.cmd, (std::vector<std::string>{"/hello", "80"}));
  EXPECT_EQ(back.config.workingDir, "/srv");
  EXPECT_EQ(back.config.user, "1000");
  EXPECT_EQ(back.config.exposedPorts, (std::vector<std::string>{"80/tcp", "81/udp"}));
  EXPECT_EQ(back.config.labels, (std::map<std::string, std::string>{{"tier", "base"}}));
  EXPECT_TRUE(back.config.hasShell);
  // Absent optional fields read as empty.
  ImageRecord bare = imageFromJson(nlohmann::json::parse(R"({"Id": "sha256:x", "Config": {}})"));
  EXPECT_EQ(bare.id, "sha256:x");
  EXPECT_TRUE(bare.tags.empty());
  EXPECT_TRUE(bare.layers.empty());
  EXPECT_EQ(bare.created, 0);
  EXPECT_TRUE(bare.config.cmd.empty());
  EXPECT_EQ(bare.config.workingDir, "");
  EXPECT_FALSE(bare.config.hasShell);
}

TEST_F(ImageStoreTest, InspectJsonOfABuiltImage) {
  getStartedLab();
  ImageStore store(data_.string());
  auto img = store.build(ctx_.string(), "s3ich4n/get-started:pt02", nullptr);
  ASSERT_TRUE(img.ok()) << img.error().message;
  nlohmann::json j = imageToJson(*img);
  EXPECT_EQ(j["RepoTags"], nlohmann::json::parse(R"(["s3ich4n/get-started:pt02"])"));
  EXPECT_EQ(j["Config"], nlohmann::json::parse(R"({"Env": ["NAME=World"], "Entrypoint": [], "Cmd": ["/hello", "80"],
                                                   "WorkingDir": "", "User": "", "ExposedPorts": ["80/tcp"],
                                                   "Labels": {}, "HasShell": false})"));
  EXPECT_EQ(j["Size"], 20) << "the 20 bytes of the stand-in hello binary";
  ASSERT_EQ(j["Layers"].size(), 1u);
  EXPECT_EQ(j["Id"], img->id);
}

TEST_F(ImageStoreTest, HealthcheckIsStoredAsDockerDoesAndInherited) {
  write("hello", "x", fs::perms(0755));
  ImageStore store(data_.string());
  auto base = build(store,
                    "FROM scratch\nCOPY hello /hello\n"
                    "HEALTHCHECK --interval=5s --timeout=1500ms --retries=2 CMD [\"/hello\", \"check\"]\n",
                    "base:1");
  ASSERT_TRUE(base.ok()) << base.error().message;
  ASSERT_TRUE(base->config.healthcheck.has_value());
  EXPECT_EQ(base->config.healthcheck->test, (std::vector<std::string>{"CMD", "/hello", "check"}));
  // The config file, as docker writes its HealthConfig.
  const auto config = nlohmann::json::parse(slurp(data_ / "images" / "configs" / (base->id.substr(7) + ".json")));
  EXPECT_EQ(config["config"]["Healthcheck"], nlohmann::json::parse(R"({"Test": ["CMD", "/hello", "check"],
      "Interval": 5000000000, "Timeout": 1500000000, "StartPeriod": 0, "Retries": 2})"));
  // Read back from the store, and through the API's JSON.
  auto again = store.resolve("base:1");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->config.healthcheck, base->config.healthcheck);
  EXPECT_EQ(imageFromJson(imageToJson(*again)).config.healthcheck, base->config.healthcheck);

  // A child image inherits it; NONE switches it off.
  auto child = build(store, "FROM base:1\nENV X=1\n", "child:1");
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_EQ(child->config.healthcheck, base->config.healthcheck);
  auto off = build(store, "FROM base:1\nHEALTHCHECK NONE\n", "off:1");
  ASSERT_TRUE(off.ok()) << off.error().message;
  ASSERT_TRUE(off->config.healthcheck.has_value());
  EXPECT_TRUE(off->config.healthcheck->disable);
  EXPECT_EQ(imageToJson(*off)["Config"]["Healthcheck"], nlohmann::json::parse(R"({"Test": ["NONE"]})"));
  EXPECT_EQ(store.resolve("off:1")->config.healthcheck, off->config.healthcheck);

  // An image without one has no Healthcheck key, so its id is what it was.
  auto plain = build(store, "FROM scratch\nCOPY hello /hello\n", "plain:1");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_FALSE(plain->config.healthcheck.has_value());
  EXPECT_FALSE(imageToJson(*plain)["Config"].contains("Healthcheck"));
}

TEST_F(ImageStoreTest, HealthcheckErrorsNameTheLineAndShellFormNeedsAShell) {
  write("hello", "x", fs::perms(0755));
  ImageStore store(data_.string());
  auto bad = build(store, "FROM scratch\nCOPY hello /hello\nHEALTHCHECK --interval=fast CMD [\"/hello\"]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "line 3: HEALTHCHECK --interval=fast: invalid duration \"fast\"");
  auto shell = build(store, "FROM scratch\nCOPY hello /hello\nHEALTHCHECK CMD /hello check\n");
  ASSERT_FALSE(shell.ok());
  EXPECT_EQ(shell.error().message,
            "line 3: HEALTHCHECK in shell form needs /bin/sh, which the image does not have; use the exec form: "
            "HEALTHCHECK CMD [\"/path/to/binary\", \"arg\"]");
  write("sh", "#!fake shell", fs::perms(0755));
  auto ok = build(store, "FROM scratch\nCOPY sh /bin/sh\nHEALTHCHECK --start-interval=1s CMD /hello check\n");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->config.healthcheck->test, (std::vector<std::string>{"CMD-SHELL", "/hello check"}));
  EXPECT_NE(std::find(log_.begin(), log_.end(), "warning: line 3: HEALTHCHECK --start-interval is ignored by skiff"),
            log_.end());
}

TEST(ImageJson, AHealthcheckWithoutDurationsReadsAsDockersDefaults) {
  auto r = imageFromJson(nlohmann::json::parse(
      R"({"Id": "sha256:x", "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"]}}})"));
  ASSERT_TRUE(r.config.healthcheck.has_value());
  EXPECT_EQ(r.config.healthcheck->test, (std::vector<std::string>{"CMD-SHELL", "curl -f localhost"}));
  EXPECT_EQ(r.config.healthcheck->intervalSeconds, 30);
  EXPECT_EQ(r.config.healthcheck->timeoutSeconds, 30);
  EXPECT_EQ(r.config.healthcheck->retries, 3u);
  // An empty Test is docker's "inherit": no health check of its own.
  EXPECT_FALSE(imageFromJson(nlohmann::json::parse(R"({"Id": "x", "Config": {"Healthcheck": {"Test": []}}})"))
                   .config.healthcheck.has_value());
}

TEST_F(ImageStoreTest, AddOfLocalFileCopies) {
  write("app.tar", "not really a tar", fs::perms(0600));
  ImageStore store(data_.string());
  auto r = build(store, "FROM scratch\nADD --chown=root:root app.tar /opt/\nCMD [\"/x\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(slurp(fs::path(store.layerDirs(*r)[0]) / "opt" / "app.tar"), "not really a tar");
}

// netd builds beside its loop, so `image rm` can run while a build is
// half done: it removes the removed image's own layers, never one the build
// has stored and not yet named in a config.
TEST_F(ImageStoreTest, ARemovalDuringABuildLeavesTheBuildsNewLayers) {
  write("hello", "old");
  write("Dockerfile", "FROM scratch\nCOPY hello /hello\nCMD [\"/hello\"]\n");
  ImageStore store(data_.string());
  ASSERT_TRUE(store.build(ctx_.string(), "old:1", nullptr).ok());

  fs::path big = base_ / "big";
  fs::create_directories(big);
  std::ofstream(big / "small", std::ios::binary) << "small";
  {
    std::ofstream blob(big / "blob", std::ios::binary);
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 96; i++) blob << mib;
  }
  std::ofstream(big / "Dockerfile") << "FROM scratch\nCOPY small /small\nCOPY blob /blob\nCMD [\"/small\"]\n";
  auto layers = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(data_ / "images" / "layers")) n += e.is_directory() ? 1 : 0;
    return n;
  };
  ASSERT_EQ(layers(), 1u);
  Result<ImageRecord> built = Error::msg("not run");
  std::thread builder([&] { built = store.build(big.string(), "big:1", nullptr); });
  // The build's first layer is stored; its second (96 MiB) is being copied.
  for (int i = 0; i < 20000 && layers() < 2; i++) ::usleep(500);
  ASSERT_EQ(layers(), 2u);
  EXPECT_TRUE(store.remove("old:1", false).ok());
  builder.join();
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_EQ(built->layers.size(), 2u);
  EXPECT_TRUE(store.resolve("big:1").ok());
  EXPECT_FALSE(store.resolve("old:1").ok());
  EXPECT_EQ(layers(), 2u) << "old:1's layer went, big:1's two stay";
}

}  // namespace
}  // namespace skiff::runtime
