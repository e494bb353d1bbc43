#pragma once
// Api: maps netd's HTTP routes (netd/API.md) onto the orchestrator and the
// image store. Parsing request bodies may throw (nlohmann::json); the router
// turns every such failure into a 400 naming what was wrong, so nothing
// escapes into the loop.
//
// Thread: the daemon's loop thread. handleAsync runs what may take long (an
// image build copies its whole context; a push, pull, save or load moves
// layers) on libuv's thread pool, one image job at a time, and answers when
// it is done, so the loop goes on restarting, draining and answering.

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skiff/netd/http_server.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/registry/registry.h"
#include "skiff/runtime/image.h"

namespace skiff::netd {

// The route a request's path belongs to, as a bounded metrics label: the
// path pattern with the name in it written {name} ("/v1/services/{name}/scale"),
// or "other" for a path netd does not serve (its method is not checked).
std::string apiRoute(const std::string& path);

// A push or pull: the reference, and the credentials the CLI sent.
struct RegistryRequest {
  registry::Reference ref;
  std::optional<registry::Credentials> credentials;
};

// An image save (names to a file) or load (a file).
struct ArchiveRequest {
  bool save = false;
  std::vector<std::string> names;
  std::string file;
};

class Api {
 public:
  // `loop`: where handleAsync queues its work; without one it answers
  // everything at once, as handle does. `registries`: how registries are
  // reached (certs.d, insecure ones), as `skiff login` reaches them.
  Api(Orchestrator& orchestrator, runtime::ImageStore& images, uv_loop_t* loop = nullptr,
      registry::EndpointPolicy registries = {});
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;
  // Answers at once, on this thread (tests; every route but push and pull).
  HttpResponse handle(const HttpRequest& request);
  // What netd serves: as handle, but image builds, pushes and pulls run on
  // the thread pool and a swarm join waits for the manager there; `reply`
  // is called on the loop when it is done.
  void handleAsync(const HttpRequest& request, HttpResponder reply);
  // netd is stopping: image jobs still waiting are answered 503 (the one
  // that runs finishes, and the loop waits for it).
  void cancelImageJobs();
  // The cluster port's routes (manager side): join and heartbeats.
  HttpResponse handleCluster(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);
  HttpResponse exchangeImage(bool push, const RegistryRequest& request);  // on a pool thread
  HttpResponse archiveImages(const ArchiveRequest& request);              // on a pool thread
  Orchestrator& orch_;
  runtime::ImageStore& images_;
  uv_loop_t* loop_;
  registry::EndpointPolicy registries_;
  // Image jobs wait here and run one at a time on the thread pool.
  struct ImageJob;
  std::deque<std::unique_ptr<ImageJob>> imageJobs_;
  bool imageJobBusy_ = false;
  void startNextImageJob();
};

}  // namespace skiff::netd
