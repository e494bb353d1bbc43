#include "skiff/netd/api.h"

#include <cerrno>
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>
#include <variant>

#include "skiff/common/log.h"
#include "skiff/registry/distribution.h"

namespace skiff::netd {
namespace {
using json = nlohmann::json;

// Answers carry user bytes (logs, names from the path, parser messages that
// quote the body): bytes that are not UTF-8 become U+FFFD instead of making
// dump() throw, which turned a log read into a 400 and an error into a 500.
std::string dumpReplacing(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
HttpResponse ok(const json& body) { return {200, dumpReplacing(body)}; }
HttpResponse fail(ErrorKind kind, const std::string& message) {
  return {httpStatus(kind), dumpReplacing(json{{"message", message}})};
}
// A store's error: not found when the object is missing (ENOENT), else `otherwise`.
HttpResponse fail(const Error& e, ErrorKind otherwise) {
  return fail(e.code == ENOENT ? ErrorKind::kNotFound : otherwise, e.message);
}

HttpResponse from(const ApiResult<json>& r) {
  if (const auto* err = std::get_if<ApiError>(&r)) return fail(err->kind, err->message);
  return ok(std::get<json>(r));
}

json imageJson(const runtime::ImageRecord& img, const std::string& tag) {
  std::string repo = "<none>", t = "<none>";
  if (!tag.empty()) {
    auto colon = tag.rfind(':');
    repo = tag.substr(0, colon);
    t = colon == std::string::npos ? "latest" : tag.substr(colon + 1);
  }
  return json{{"id", img.id},           {"repository", repo}, {"tag", t},
              {"created", img.created}, {"size", img.size},   {"layers", img.layers}};
}

// Request bodies are JSON objects nested at most this deep. nlohmann's parser
// is iterative, but copying or dumping a value recurses once per level: a
// body of 200k '[' ended netd in a copy of a node update's labels.
constexpr int kMaxBodyDepth = 64;

// A JSON value as a message shows it: its kind for arrays and objects (never
// dump() them: that recurses), numbers as written, strings quoted and cut.
std::string shown(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  if (v.is_string() && v.get_ref<const std::string&>().size() > 40)
    return dumpReplacing(v.get_ref<const std::string&>().substr(0, 40)) + "... (" +
           std::to_string(v.get_ref<const std::string&>().size()) + " bytes)";
  return dumpReplacing(v);
}

// nlohmann's text without its "[json.exception.parse_error.101] " prefix.
std::string jsonError(const json::exception& e) {
  std::string what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    if (auto end = what.find("] "); end != std::string::npos) what.erase(0, end + 2);
  }
  return what;
}

// A request body: "" reads as {}; anything else must be a JSON object at
// most kMaxBodyDepth deep. Throws std::invalid_argument saying what is wrong.
json parseBody(const std::string& text) {
  if (text.empty()) return json::object();
  json b;
  try {
    b = json::parse(text, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxBodyDepth) {
        throw std::invalid_argument("invalid request body: JSON nested deeper than " + std::to_string(kMaxBodyDepth) +
                                    " levels");
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw std::invalid_argument("invalid request body: " + jsonError(e));
  }
  if (!b.is_object()) throw std::invalid_argument("request body must be a JSON object, got " + shown(b));
  return b;
}

// body[key] when it is a string; `fallback` when absent; else an error naming
// the key (null is not a string either).
std::string stringField(const json& b, const char* key, const std::string& fallback = "") {
  auto it = b.find(key);
  if (it == b.end()) return fallback;
  if (!it->is_string()) throw std::invalid_argument(std::string(key) + " must be a string, got " + shown(*it));
  return it->get<std::string>();
}
bool boolField(const json& b, const char* key, bool fallback) {
  auto it = b.find(key);
  if (it == b.end()) return fallback;
  if (!it->is_boolean()) throw std::invalid_argument(std::string(key) + " must be true or false, got " + shown(*it));
  return it->get<bool>();
}

// POST /v1/images/build: {"context": absolute dir, "tag": "name[:tag]" or absent}.
struct BuildRequest {
  std::string context, tag;
};
std::variant<BuildRequest, HttpResponse> buildRequest(const HttpRequest& r) {
  json b = parseBody(r.body);
  BuildRequest out{stringField(b, "context"), stringField(b, "tag")};
  if (out.context.empty() || out.context[0] != '/')
    return fail(ErrorKind::kInvalid, "build context must be an absolute path");
  return out;
}
HttpResponse buildAnswer(const Result<runtime::ImageRecord>& built, const std::vector<std::string>& buildLog,
                         const std::string& tag) {
  if (!built.ok()) return fail(ErrorKind::kInvalid, built.error().message);
  log::info("netd", "image ", built->id.substr(7, 12), " built", tag.empty() ? "" : " as ", tag);
  return ok(json{{"id", built->id}, {"log", buildLog}, {"tags", built->tags}});
}

// POST /v1/images/push and /v1/images/pull: {"name": "registry/repo:tag",
// "auth": {"username", "password"} or absent}.
std::variant<RegistryRequest, HttpResponse> registryRequest(const HttpRequest& r) {
  json b = parseBody(r.body);
  const std::string name = stringField(b, "name");
  if (name.empty()) return fail(ErrorKind::kInvalid, "request body needs \"name\", the image reference");
  auto ref = registry::parseReference(name);
  if (!ref.ok()) return fail(ErrorKind::kInvalid, ref.error().message);
  RegistryRequest out{*ref, std::nullopt};
  if (auto it = b.find("auth"); it != b.end() && !it->is_null()) {
    if (!it->is_object()) return fail(ErrorKind::kInvalid, "auth must be an object with username and password");
    out.credentials = registry::Credentials{stringField(*it, "username"), stringField(*it, "password")};
  }
  return out;
}

// POST /v1/images/save: {"names": [...], "output": "/abs/file.tar"};
// POST /v1/images/load: {"input": "/abs/file.tar"}.
std::variant<ArchiveRequest, HttpResponse> archiveRequest(const HttpRequest& r) {
  json b = parseBody(r.body);
  ArchiveRequest out;
  out.save = r.path == "/v1/images/save";
  out.file = stringField(b, out.save ? "output" : "input");
  if (out.file.empty() || out.file[0] != '/')
    return fail(ErrorKind::kInvalid, std::string(out.save ? "output" : "input") + " must be an absolute path");
  if (out.save) {
    auto names = b.find("names");
    if (names == b.end() || !names->is_array() || names->empty())
      return fail(ErrorKind::kInvalid, "request body needs \"names\", the images to save");
    for (const auto& n : *names) {
      if (!n.is_string() || n.get<std::string>().empty())
        return fail(ErrorKind::kInvalid, "names must be image references, got " + n.dump());
      out.names.push_back(n.get<std::string>());
    }
  }
  return out;
}

}  // namespace

// An image job (build, push, pull, save, load) waiting for, or on, the pool;
// its answer goes out on the loop.
struct Api::ImageJob {
  uv_work_t work;
  Api* api;
  std::string what;                   // "build", "push", "pull", "save", "load"
  std::function<HttpResponse()> run;  // on a pool thread
  std::optional<HttpResponse> answer;
  HttpResponder reply;
};

Api::Api(Orchestrator& orchestrator, runtime::ImageStore& images, uv_loop_t* loop, registry::EndpointPolicy registries)
    : orch_(orchestrator), images_(images), loop_(loop), registries_(std::move(registries)) {}
Api::~Api() = default;

namespace {

// "/v1/services/web/scale" with pattern "/v1/services/*/scale" -> {"web"}.
bool match(const std::string& path, const std::string& pattern, std::vector<std::string>* args) {
  args->clear();
  size_t p = 0, q = 0;
  while (p < pattern.size() && q <= path.size()) {
    if (pattern[p] == '*') {
      size_t end = path.find('/', q);
      // The last wildcard takes the rest (image references hold slashes).
      if (p + 1 == pattern.size()) end = std::string::npos;
      std::string part = path.substr(q, end == std::string::npos ? std::string::npos : end - q);
      if (part.empty()) return false;
      args->push_back(part);
      q = end == std::string::npos ? path.size() : end;
      p++;
    } else {
      if (q >= path.size() || path[q] != pattern[p]) return false;
      p++;
      q++;
    }
  }
  return p == pattern.size() && q == path.size();
}

}  // namespace

std::string apiRoute(const std::string& path) {
  // Longer patterns first where one is a prefix of another's match: the last
  // wildcard takes the rest of a path.
  static const char* const kPatterns[] = {
      "/v1/info",
      "/v1/swarm/init",
      "/v1/swarm/join",
      "/v1/swarm/join-token",
      "/v1/swarm/leave",
      "/v1/nodes",
      "/v1/nodes/*/update",
      "/v1/nodes/*",
      "/v1/stacks",
      "/v1/stacks/*",
      "/v1/services",
      "/v1/services/*/logs",
      "/v1/services/*/scale",
      "/v1/services/*/update",
      "/v1/services/*/rollback",
      "/v1/services/*",
      "/v1/tasks",
      "/v1/containers",
      "/v1/containers/*/logs",
      "/v1/containers/*/start",
      "/v1/containers/*/stop",
      "/v1/containers/*",
      "/v1/images/build",
      "/v1/images/push",
      "/v1/images/pull",
      "/v1/images/save",
      "/v1/images/load",
      "/v1/images/tag",
      "/v1/images",
      "/v1/images/*",
      "/v1/networks",
      "/v1/networks/*",
      "/v1/stats",
      "/cluster/v1/join",
      "/cluster/v1/heartbeat",
      "/cluster/v1/image",
      "/cluster/v1/layer",
  };
  std::vector<std::string> args;
  for (const char* pattern : kPatterns) {
    if (!match(path, pattern, &args)) continue;
    std::string route;
    for (const char* c = pattern; *c != '\0'; ++c) {
      if (*c == '*') {
        route += "{name}";
      } else {
        route += *c;
      }
    }
    return route;
  }
  return "other";
}

namespace {
// The 400 for a request whose body could not be read, the same from every path.
HttpResponse unreadable(const json::exception& e) {
  return fail(ErrorKind::kInvalid, std::string("invalid request body: ") + e.what());
}
HttpResponse unreadable(const std::invalid_argument& e) { return fail(ErrorKind::kInvalid, e.what()); }
HttpResponse notRun() { return fail(ErrorKind::kUnavailable, "the build did not run: netd is shutting down"); }
}  // namespace

HttpResponse Api::handle(const HttpRequest& request) {
  try {
    HttpResponse resp = route(request);
    if (resp.status >= 400) {
      log::debug("api", request.method, " ", request.path, " -> ", resp.status, " ", resp.body);
    }
    return resp;
  } catch (const json::exception& e) {
    return unreadable(e);
  } catch (const std::invalid_argument& e) {
    return unreadable(e);
  }
}

void Api::handleAsync(const HttpRequest& r, HttpResponder reply) {
  const bool join = r.method == "POST" && r.path == "/v1/swarm/join";
  const bool build = r.method == "POST" && r.path == "/v1/images/build";
  const bool push = r.method == "POST" && r.path == "/v1/images/push";
  const bool pull = r.method == "POST" && r.path == "/v1/images/pull";
  const bool save = r.method == "POST" && r.path == "/v1/images/save";
  const bool load = r.method == "POST" && r.path == "/v1/images/load";
  if (loop_ == nullptr || (!join && !build && !push && !pull && !save && !load)) {
    reply(handle(r));
    return;
  }
  try {
    if (join) {
      // The manager's answer comes from the thread pool: up to 8 s on a bad address.
      json b = parseBody(r.body);
      orch_.swarmJoin(stringField(b, "token"), stringField(b, "remoteAddr"), stringField(b, "advertiseAddr"),
                      [reply](const ApiResult<json>& result) { reply(from(result)); });
      return;
    }
    std::function<HttpResponse()> run;
    if (build) {
      auto req = buildRequest(r);
      if (auto* refused = std::get_if<HttpResponse>(&req)) {
        reply(*refused);
        return;
      }
      run = [this, b = std::get<BuildRequest>(req)] {
        std::vector<std::string> buildLog;
        auto built = images_.build(b.context, b.tag, &buildLog);
        return buildAnswer(built, buildLog, b.tag);
      };
    } else if (save || load) {
      auto req = archiveRequest(r);
      if (auto* refused = std::get_if<HttpResponse>(&req)) {
        reply(*refused);
        return;
      }
      run = [this, q = std::get<ArchiveRequest>(req)] { return archiveImages(q); };
    } else {
      auto req = registryRequest(r);
      if (auto* refused = std::get_if<HttpResponse>(&req)) {
        reply(*refused);
        return;
      }
      run = [this, push, q = std::get<RegistryRequest>(req)] { return exchangeImage(push, q); };
    }
    auto job = std::make_unique<ImageJob>();
    job->api = this;
    job->what = build ? "build" : push ? "push" : pull ? "pull" : save ? "save" : "load";
    job->run = std::move(run);
    job->reply = std::move(reply);
    imageJobs_.push_back(std::move(job));
    startNextImageJob();
  } catch (const json::exception& e) {
    reply(unreadable(e));
  } catch (const std::invalid_argument& e) {
    reply(unreadable(e));
  }
}

// Push or pull, on a pool thread: the registry is reached as docker reaches
// it (registry::connect under netd's endpoint policy), with the credentials
// the CLI sent; they go nowhere else.
HttpResponse Api::exchangeImage(bool push, const RegistryRequest& q) {
  auto connected = registry::connect(q.ref.registry, registries_, q.credentials);
  if (!connected.ok()) return fail(ErrorKind::kUnavailable, connected.error().message);
  std::vector<std::string> lines;
  auto progress = [&lines](const std::string& line) { lines.push_back(line); };
  auto kindOf = [](const Error& e) { return e.code == ENOENT ? ErrorKind::kNotFound : ErrorKind::kInvalid; };
  if (push) {
    auto pushed = registry::push(images_, *connected->client, q.ref, progress);
    if (!pushed.ok()) return fail(kindOf(pushed.error()), pushed.error().message);
    log::info("netd", "pushed ", q.ref.str(), " (", pushed->digest, ")");
    return ok(json{{"log", lines}, {"digest", pushed->digest}, {"size", pushed->size}});
  }
  auto pulled = registry::pull(images_, *connected->client, q.ref, progress);
  if (!pulled.ok()) return fail(kindOf(pulled.error()), pulled.error().message);
  log::info("netd", "pulled ", q.ref.str(), " as ", pulled->id.substr(7, 12));
  return ok(json{{"log", lines}, {"id", pulled->id}, {"digest", pulled->digest}, {"downloaded", pulled->downloaded}});
}

// image save / load, on a pool thread: the file is the caller's path on
// this host (the CLI makes it absolute).
HttpResponse Api::archiveImages(const ArchiveRequest& q) {
  if (q.save) {
    auto st = images_.save(q.names, q.file);
    if (!st.ok())
      return fail(st.error().code == ENOENT ? ErrorKind::kNotFound : ErrorKind::kInvalid, st.error().message);
    return ok(json{{"log", json::array()}});
  }
  auto lines = images_.load(q.file);
  if (!lines.ok()) return fail(ErrorKind::kInvalid, lines.error().message);
  return ok(json{{"log", *lines}});
}

// One image job at a time on the pool (the image store runs builds one by
// one anyway): a waiting job never holds a pool thread that heartbeats and
// image fetches need.
void Api::startNextImageJob() {
  if (imageJobBusy_ || imageJobs_.empty()) return;
  ImageJob* job = imageJobs_.front().release();
  imageJobs_.pop_front();
  job->work.data = job;
  int rc = uv_queue_work(
      loop_, &job->work,
      [](uv_work_t* w) {
        auto* j = static_cast<ImageJob*>(w->data);
        // Nothing may escape a pool thread: it would end netd.
        try {
          j->answer.emplace(j->run());
        } catch (const std::exception& e) {
          // What throws here is the input's (a Dockerfile label that is
          // not UTF-8, a registry's answer): the request's, not netd's.
          j->answer.emplace(fail(ErrorKind::kInvalid, j->what + " failed: " + e.what()));
        }
      },
      [](uv_work_t* w, int status) {
        std::unique_ptr<ImageJob> j(static_cast<ImageJob*>(w->data));
        Api* api = j->api;
        api->imageJobBusy_ = false;
        if (status != 0 || !j->answer) {
          j->reply(notRun());
        } else {
          j->reply(std::move(*j->answer));
        }
        api->startNextImageJob();
      });
  if (rc != 0) {
    std::unique_ptr<ImageJob> j(job);
    j->reply(fail(ErrorKind::kInternal, std::string("cannot queue the image job: ") + uv_strerror(rc)));
    return;
  }
  imageJobBusy_ = true;
}

void Api::cancelImageJobs() {
  auto waiting = std::move(imageJobs_);
  imageJobs_.clear();
  for (auto& j : waiting) j->reply(notRun());
}

HttpResponse Api::handleCluster(const HttpRequest& r) {
  try {
    if (r.method != "POST") return fail(ErrorKind::kNotAllowed, "the cluster port takes POST only");
    return from(orch_.clusterRequest(r.path, r.peer, parseBody(r.body)));
  } catch (const json::exception& e) {
    return unreadable(e);
  } catch (const std::invalid_argument& e) {
    return unreadable(e);
  }
}

HttpResponse Api::route(const HttpRequest& r) {
  std::vector<std::string> a;
  const std::string& m = r.method;
  auto body = [&]() { return parseBody(r.body); };
  auto q = [&](const std::string& key) {
    auto it = r.query.find(key);
    return it == r.query.end() ? std::string() : it->second;
  };
  auto flag = [&](const std::string& key) {
    std::string v = q(key);
    return v == "1" || v == "true";
  };

  if (m == "GET" && r.path == "/v1/info") return from(orch_.info());
  if (m == "POST" && r.path == "/v1/swarm/init") {
    json b = body();
    return from(orch_.swarmInit(stringField(b, "advertiseAddr"), stringField(b, "listenAddr")));
  }
  if (m == "POST" && r.path == "/v1/swarm/join") {
    json b = body();
    return from(
        orch_.swarmJoin(stringField(b, "token"), stringField(b, "remoteAddr"), stringField(b, "advertiseAddr")));
  }
  if (m == "POST" && r.path == "/v1/swarm/join-token") {
    json b = body();
    return from(orch_.joinToken(stringField(b, "role", "worker"), boolField(b, "rotate", false)));
  }
  if (m == "POST" && r.path == "/v1/swarm/leave") return from(orch_.swarmLeave(boolField(body(), "force", false)));
  if (m == "GET" && r.path == "/v1/nodes") return from(orch_.nodes());
  if (m == "POST" && match(r.path, "/v1/nodes/*/update", &a)) return from(orch_.updateNode(a[0], body()));
  if (m == "GET" && match(r.path, "/v1/nodes/*", &a)) return from(orch_.inspectNode(a[0]));
  if (m == "DELETE" && match(r.path, "/v1/nodes/*", &a)) return from(orch_.removeNode(a[0], flag("force")));

  if (m == "GET" && r.path == "/v1/stacks") return from(orch_.listStacks());
  if (match(r.path, "/v1/stacks/*", &a)) {
    if (m == "POST") {
      json b = body();
      auto stack = b.find("stack");
      if (stack == b.end()) return fail(ErrorKind::kInvalid, "request body needs a \"stack\" object");
      if (!stack->is_object())
        return fail(ErrorKind::kInvalid, "\"stack\" must be an object (the stack's JSON), got " + shown(*stack));
      runtime::StackSpec spec = runtime::stackFromJson(*stack);
      return from(orch_.deployStack(a[0], spec));
    }
    if (m == "DELETE") return from(orch_.removeStack(a[0]));
  }

  if (m == "GET" && r.path == "/v1/services") return from(orch_.listServices(q("stack")));
  if (m == "GET" && match(r.path, "/v1/services/*/logs", &a)) return from(orch_.serviceLogs(a[0]));
  if (m == "POST" && match(r.path, "/v1/services/*/scale", &a)) {
    json b = body();
    auto replicas = b.find("replicas");
    if (replicas == b.end()) return fail(ErrorKind::kInvalid, "request body needs \"replicas\"");
    // A parsed non-negative integer is unsigned; -1, 1.5, 1e30 and "3" are not.
    if (!replicas->is_number_unsigned())
      return fail(ErrorKind::kInvalid, "replicas must be a non-negative integer, got " + shown(*replicas));
    return from(orch_.scaleService(a[0], replicas->get<uint64_t>()));
  }
  if (m == "POST" && match(r.path, "/v1/services/*/update", &a)) return from(orch_.updateService(a[0], body()));
  if (m == "POST" && match(r.path, "/v1/services/*/rollback", &a)) return from(orch_.rollbackService(a[0]));
  if (m == "GET" && match(r.path, "/v1/services/*", &a)) return from(orch_.inspectService(a[0]));

  if (m == "GET" && r.path == "/v1/tasks") return from(orch_.listTasks(q("service"), q("stack"), q("node")));

  if (m == "GET" && r.path == "/v1/containers") return from(orch_.listContainers(flag("all")));
  if (m == "POST" && r.path == "/v1/containers") {
    json b = body();
    const std::string name = stringField(b, "name");
    auto svc = b.find("service");
    if (svc == b.end() || !svc->is_object())
      return fail(ErrorKind::kInvalid, "request body needs a \"service\" object (the container's service JSON)");
    runtime::StackSpec parsed = runtime::stackFromJson(json{{"services", {{name.empty() ? "c" : name, *svc}}}});
    return from(orch_.runContainer(name, parsed.services.begin()->second, boolField(b, "autoRemove", false)));
  }
  if (m == "POST" && match(r.path, "/v1/containers/*/start", &a)) return from(orch_.startContainer(a[0]));
  if (m == "POST" && match(r.path, "/v1/containers/*/stop", &a)) {
    std::optional<double> timeout;
    if (!q("t").empty()) {
      char* end = nullptr;
      const std::string t = q("t");
      double v = std::strtod(t.c_str(), &end);
      if (end == t.c_str() || *end != '\0' || !std::isfinite(v))
        return fail(ErrorKind::kInvalid, "invalid stop timeout \"" + t + "\"");
      timeout = v;
    }
    return from(orch_.stopContainer(a[0], timeout, flag("restart")));
  }
  if (m == "DELETE" && match(r.path, "/v1/containers/*", &a)) return from(orch_.removeContainer(a[0], flag("force")));
  if (m == "GET" && match(r.path, "/v1/containers/*/logs", &a)) {
    std::optional<uint64_t> since;
    if (!q("since").empty()) {
      const std::string v = q("since");
      if (v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19)
        return fail(ErrorKind::kInvalid, "invalid log offset \"" + v + "\"");
      since = std::stoull(v);
    }
    return from(orch_.containerLogs(a[0], since));
  }
  if (m == "GET" && match(r.path, "/v1/containers/*", &a)) return from(orch_.inspectContainer(a[0]));
  if (m == "GET" && r.path == "/v1/stats") {
    // ?containers=a,b: those rows, in that order (names and ids hold no comma).
    std::vector<std::string> picked;
    const std::string list = q("containers");
    for (size_t start = 0; !list.empty() && start <= list.size();) {
      const size_t comma = std::min(list.find(',', start), list.size());
      picked.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    return from(orch_.stats(picked));
  }

  if (m == "POST" && r.path == "/v1/images/build") {
    auto req = buildRequest(r);
    if (auto* refused = std::get_if<HttpResponse>(&req)) return *refused;
    const auto& b = std::get<BuildRequest>(req);
    std::vector<std::string> buildLog;
    auto built = images_.build(b.context, b.tag, &buildLog);
    return buildAnswer(built, buildLog, b.tag);
  }
  if (m == "POST" && (r.path == "/v1/images/save" || r.path == "/v1/images/load")) {
    auto req = archiveRequest(r);
    if (auto* refused = std::get_if<HttpResponse>(&req)) return *refused;
    return archiveImages(std::get<ArchiveRequest>(req));
  }
  if (m == "POST" && (r.path == "/v1/images/push" || r.path == "/v1/images/pull")) {
    auto req = registryRequest(r);
    if (auto* refused = std::get_if<HttpResponse>(&req)) return *refused;
    return exchangeImage(r.path == "/v1/images/push", std::get<RegistryRequest>(req));
  }
  if (m == "GET" && r.path == "/v1/images") {
    json out = json::array();
    for (const auto& img : images_.list()) {
      if (img.tags.empty()) out.push_back(imageJson(img, ""));
      for (const auto& t : img.tags) out.push_back(imageJson(img, t));
    }
    return ok(out);
  }
  if (m == "POST" && r.path == "/v1/images/tag") {
    json b = body();
    const std::string source = stringField(b, "source"), target = stringField(b, "target");
    if (source.empty()) return fail(ErrorKind::kInvalid, "request body needs \"source\", the image to tag");
    if (target.empty()) return fail(ErrorKind::kInvalid, "request body needs \"target\", the new name");
    auto st = images_.tag(source, target);
    if (!st.ok()) return fail(st.error(), ErrorKind::kInvalid);
    return ok(json::object());
  }
  if (m == "DELETE" && match(r.path, "/v1/images/*", &a)) {
    auto before = images_.resolve(a[0]);
    auto st = images_.remove(a[0], flag("force"));
    if (!st.ok()) return fail(st.error(), ErrorKind::kConflict);
    json out{{"untagged", json::array()}, {"deleted", json::array()}};
    if (before.ok()) {
      out["untagged"].push_back(runtime::normalizeImageRef(a[0]));
      if (!images_.resolve(before->id).ok()) out["deleted"].push_back(before->id);
    }
    return ok(out);
  }

  if (m == "GET" && r.path == "/v1/networks") return from(orch_.listNetworks());
  if (m == "GET" && match(r.path, "/v1/networks/*", &a)) return from(orch_.inspectNetwork(a[0]));
  if (m == "POST" && match(r.path, "/v1/networks/*", &a)) {
    // Read as a stack's network is: the same fields, the same checks (an
    // empty body is an overlay of the defaults).
    runtime::StackSpec parsed = runtime::stackFromJson(json{{"networks", {{a[0], body()}}}});
    return from(orch_.createNetwork(a[0], parsed.networks.begin()->second));
  }
  if (m == "DELETE" && match(r.path, "/v1/networks/*", &a)) return from(orch_.deleteNetwork(a[0]));

  return fail(ErrorKind::kNotFound, "page not found: " + m + " " + r.path);
}

}  // namespace skiff::netd
