#pragma once
// Api: maps netd's HTTP routes (netd/API.md) onto the orchestrator and the
// image store. Parsing request bodies may throw (nlohmann::json); the router
// turns every such failure into a 400 naming what was wrong, so nothing
// escapes into the loop.
//
// Thread: the daemon's loop thread. handleAsync runs what may take long (an
// image build copies its whole context) on libuv's thread pool and answers
// when it is done, so the loop goes on restarting, draining and answering.

#include "skiff/netd/http_server.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/runtime/image.h"

namespace skiff::netd {

class Api {
 public:
  // `loop`: where handleAsync queues its work; without one it answers
  // everything at once, as handle does.
  Api(Orchestrator& orchestrator, runtime::ImageStore& images, uv_loop_t* loop = nullptr)
      : orch_(orchestrator), images_(images), loop_(loop) {}
  // Answers at once, on this thread (tests; every route).
  HttpResponse handle(const HttpRequest& request);
  // What netd serves: as handle, but an image build runs on the thread pool
  // and a swarm join waits for the manager there; `reply` is called on the
  // loop when it is done.
  void handleAsync(const HttpRequest& request, HttpResponder reply);
  // The cluster port's routes (manager side): join and heartbeats.
  HttpResponse handleCluster(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);
  Orchestrator& orch_;
  runtime::ImageStore& images_;
  uv_loop_t* loop_;
};

}  // namespace skiff::netd
