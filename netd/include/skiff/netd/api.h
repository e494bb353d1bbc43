#pragma once
// Api: maps netd's HTTP routes (netd/API.md) onto the orchestrator and the
// image store. Parsing request bodies may throw (nlohmann::json); the router
// turns every such failure into a 400 naming what was wrong, so nothing
// escapes into the loop.
//
// Thread: the daemon's loop thread. handleAsync runs what may take long (an
// image build copies its whole context) on libuv's thread pool and answers
// when it is done, so the loop goes on restarting, draining and answering.

#include <deque>
#include <memory>

#include "skiff/netd/http_server.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/runtime/image.h"

namespace skiff::netd {

// The route a request's path belongs to, as a bounded metrics label: the
// path pattern with the name in it written {name} ("/v1/services/{name}/scale"),
// or "other" for a path netd does not serve (its method is not checked).
std::string apiRoute(const std::string& path);

class Api {
 public:
  // `loop`: where handleAsync queues its work; without one it answers
  // everything at once, as handle does.
  Api(Orchestrator& orchestrator, runtime::ImageStore& images, uv_loop_t* loop = nullptr);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;
  // Answers at once, on this thread (tests; every route).
  HttpResponse handle(const HttpRequest& request);
  // What netd serves: as handle, but an image build runs on the thread pool
  // and a swarm join waits for the manager there; `reply` is called on the
  // loop when it is done.
  void handleAsync(const HttpRequest& request, HttpResponder reply);
  // netd is stopping: builds still waiting are answered 503 (the one that
  // runs finishes, and the loop waits for it).
  void cancelBuilds();
  // The cluster port's routes (manager side): join and heartbeats.
  HttpResponse handleCluster(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);
  Orchestrator& orch_;
  runtime::ImageStore& images_;
  uv_loop_t* loop_;
  // Builds wait here and run one at a time on the thread pool.
  struct PendingBuild;
  std::deque<std::unique_ptr<PendingBuild>> builds_;
  bool building_ = false;
  void startNextBuild();
};

}  // namespace skiff::netd
