#include "skiff/netd/api.h"

#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>
#include <variant>

#include "skiff/common/log.h"

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

// POST /v1/images/build: {"context": absolute dir, "tag": "name[:tag]" or absent}.
struct BuildRequest {
  std::string context, tag;
};
std::variant<BuildRequest, HttpResponse> buildRequest(const HttpRequest& r) {
  json b = r.body.empty() ? json::object() : json::parse(r.body);
  BuildRequest out{b.value("context", ""), b.value("tag", "")};
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

// A build on libuv's thread pool; its answer goes out on the loop.
struct BuildJob {
  uv_work_t work;
  runtime::ImageStore* images;
  BuildRequest request;
  std::optional<Result<runtime::ImageRecord>> built;
  std::vector<std::string> log;
  HttpResponder reply;
};

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

HttpResponse Api::handle(const HttpRequest& request) {
  try {
    HttpResponse resp = route(request);
    if (resp.status >= 400) {
      log::debug("api", request.method, " ", request.path, " -> ", resp.status, " ", resp.body);
    }
    return resp;
  } catch (const json::exception& e) {
    return fail(ErrorKind::kInvalid, std::string("invalid request body: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return fail(ErrorKind::kInvalid, e.what());
  }
}

void Api::handleAsync(const HttpRequest& r, HttpResponder reply) {
  if (loop_ != nullptr && r.method == "POST" && r.path == "/v1/swarm/join") {
    // The manager's answer comes from the thread pool: up to 8 s on a bad address.
    json b;
    try {
      b = r.body.empty() ? json::object() : json::parse(r.body);
      if (!b.is_object()) throw std::invalid_argument("request body must be a JSON object");
      orch_.swarmJoin(b.value("token", ""), b.value("remoteAddr", ""), b.value("advertiseAddr", ""),
                      [reply](const ApiResult<json>& result) { reply(from(result)); });
    } catch (const json::exception& e) {
      reply(fail(ErrorKind::kInvalid, std::string("invalid request body: ") + e.what()));
    } catch (const std::invalid_argument& e) {
      reply(fail(ErrorKind::kInvalid, e.what()));
    }
    return;
  }
  if (loop_ == nullptr || r.method != "POST" || r.path != "/v1/images/build") {
    reply(handle(r));
    return;
  }
  std::variant<BuildRequest, HttpResponse> req;
  try {
    req = buildRequest(r);
  } catch (const json::exception& e) {
    reply(fail(ErrorKind::kInvalid, std::string("invalid request body: ") + e.what()));
    return;
  }
  if (auto* refused = std::get_if<HttpResponse>(&req)) {
    reply(*refused);
    return;
  }
  auto* job = new BuildJob{{}, &images_, std::get<BuildRequest>(req), std::nullopt, {}, std::move(reply)};
  job->work.data = job;
  int rc = uv_queue_work(
      loop_, &job->work,
      [](uv_work_t* w) {
        auto* j = static_cast<BuildJob*>(w->data);
        j->built.emplace(j->images->build(j->request.context, j->request.tag, &j->log));
      },
      [](uv_work_t* w, int status) {
        std::unique_ptr<BuildJob> j(static_cast<BuildJob*>(w->data));
        if (status != 0 || !j->built) {
          j->reply(fail(ErrorKind::kUnavailable, "the build did not run: netd is shutting down"));
          return;
        }
        j->reply(buildAnswer(*j->built, j->log, j->request.tag));
      });
  if (rc != 0) {
    std::unique_ptr<BuildJob> j(job);
    j->reply(fail(ErrorKind::kInternal, std::string("cannot queue the build: ") + uv_strerror(rc)));
  }
}

HttpResponse Api::handleCluster(const HttpRequest& r) {
  try {
    if (r.method != "POST") return fail(ErrorKind::kNotAllowed, "the cluster port takes POST only");
    json b = r.body.empty() ? json::object() : json::parse(r.body);
    if (!b.is_object()) return fail(ErrorKind::kInvalid, "request body must be a JSON object");
    return from(orch_.clusterRequest(r.path, r.peer, b));
  } catch (const json::exception& e) {
    return fail(ErrorKind::kInvalid, std::string("invalid request body: ") + e.what());
  }
}

HttpResponse Api::route(const HttpRequest& r) {
  std::vector<std::string> a;
  const std::string& m = r.method;
  auto body = [&]() { return r.body.empty() ? json::object() : json::parse(r.body); };
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
    return from(orch_.swarmInit(b.value("advertiseAddr", ""), b.value("listenAddr", "")));
  }
  if (m == "POST" && r.path == "/v1/swarm/join") {
    json b = body();
    return from(orch_.swarmJoin(b.value("token", ""), b.value("remoteAddr", ""), b.value("advertiseAddr", "")));
  }
  if (m == "POST" && r.path == "/v1/swarm/join-token") {
    json b = body();
    return from(orch_.joinToken(b.value("role", "worker"), b.value("rotate", false)));
  }
  if (m == "POST" && r.path == "/v1/swarm/leave") return from(orch_.swarmLeave(body().value("force", false)));
  if (m == "GET" && r.path == "/v1/nodes") return from(orch_.nodes());
  if (m == "POST" && match(r.path, "/v1/nodes/*/update", &a)) return from(orch_.updateNode(a[0], body()));
  if (m == "GET" && match(r.path, "/v1/nodes/*", &a)) return from(orch_.inspectNode(a[0]));
  if (m == "DELETE" && match(r.path, "/v1/nodes/*", &a)) return from(orch_.removeNode(a[0], flag("force")));

  if (m == "GET" && r.path == "/v1/stacks") return from(orch_.listStacks());
  if (match(r.path, "/v1/stacks/*", &a)) {
    if (m == "POST") {
      json b = body();
      if (!b.contains("stack")) return fail(ErrorKind::kInvalid, "request body needs a \"stack\" object");
      runtime::StackSpec spec = runtime::stackFromJson(b["stack"]);
      return from(orch_.deployStack(a[0], spec));
    }
    if (m == "DELETE") return from(orch_.removeStack(a[0]));
  }

  if (m == "GET" && r.path == "/v1/services") return from(orch_.listServices(q("stack")));
  if (m == "GET" && match(r.path, "/v1/services/*/logs", &a)) return from(orch_.serviceLogs(a[0]));
  if (m == "POST" && match(r.path, "/v1/services/*/scale", &a)) {
    json b = body();
    if (!b.contains("replicas") || !b["replicas"].is_number_integer() || b["replicas"].get<int64_t>() < 0) {
      return fail(ErrorKind::kInvalid, "replicas must be a non-negative integer");
    }
    return from(orch_.scaleService(a[0], b["replicas"].get<uint64_t>()));
  }
  if (m == "GET" && match(r.path, "/v1/services/*", &a)) return from(orch_.inspectService(a[0]));

  if (m == "GET" && r.path == "/v1/tasks") return from(orch_.listTasks(q("service"), q("stack"), q("node")));

  if (m == "GET" && r.path == "/v1/containers") return from(orch_.listContainers(flag("all")));
  if (m == "GET" && match(r.path, "/v1/containers/*/logs", &a)) return from(orch_.containerLogs(a[0]));
  if (m == "GET" && match(r.path, "/v1/containers/*", &a)) return from(orch_.inspectContainer(a[0]));

  if (m == "POST" && r.path == "/v1/images/build") {
    auto req = buildRequest(r);
    if (auto* refused = std::get_if<HttpResponse>(&req)) return *refused;
    const auto& b = std::get<BuildRequest>(req);
    std::vector<std::string> buildLog;
    auto built = images_.build(b.context, b.tag, &buildLog);
    return buildAnswer(built, buildLog, b.tag);
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
    auto st = images_.tag(b.value("source", ""), b.value("target", ""));
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

  return fail(ErrorKind::kNotFound, "page not found: " + m + " " + r.path);
}

}  // namespace skiff::netd
