#pragma once
// Api: maps netd's HTTP routes (netd/API.md) onto the orchestrator and the
// image store. Parsing request bodies may throw (nlohmann::json); the router
// turns every such failure into a 400 naming what was wrong, so nothing
// escapes into the loop.
//
// Thread: the daemon's loop thread.

#include "skiff/netd/http_server.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/runtime/image.h"

namespace skiff::netd {

class Api {
 public:
  Api(Orchestrator& orchestrator, runtime::ImageStore& images) : orch_(orchestrator), images_(images) {}
  HttpResponse handle(const HttpRequest& request);
  // The cluster port's routes (manager side): join and heartbeats.
  HttpResponse handleCluster(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);
  Orchestrator& orch_;
  runtime::ImageStore& images_;
};

}  // namespace skiff::netd
