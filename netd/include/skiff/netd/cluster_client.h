#pragma once
// ClusterClient: an agent's side of the manager-agent traffic on the
// cluster port (2377): one HTTP/1.1 POST with a JSON body per exchange
// (join, heartbeat), `Connection: close`, the answer read to EOF. The
// request and the wait are bounded by a timeout, so a manager that is cut
// off costs a failed exchange, never a stuck agent.
//
// post() runs the blocking exchange on libuv's thread pool and calls `done`
// on the loop thread; the loop itself never blocks on the network. The
// interface lets netd's unit tests replace the network with a fake.

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "skiff/common/result.h"

namespace skiff::netd {

struct ClusterReply {
  int status = 0;
  nlohmann::json body;  // the JSON answer ({"message": ...} for errors)
};

// Blocking, any thread: POST http://hostPort/path. Errors name the address
// and what failed ("connect 198.51.100.11:2377: Connection timed out").
[[nodiscard]] Result<ClusterReply> clusterPost(const std::string& hostPort, const std::string& path,
                                               const nlohmann::json& body, std::chrono::milliseconds timeout);

class ClusterClient {
 public:
  using Done = std::function<void(Result<ClusterReply>)>;
  virtual ~ClusterClient() = default;
  // Loop thread. `done` runs on the loop thread once the exchange ended.
  virtual void post(std::string hostPort, std::string path, nlohmann::json body, std::chrono::milliseconds timeout,
                    Done done) = 0;
  // Blocking, on the caller's thread (`swarm join`, which answers the user
  // only once the manager did).
  [[nodiscard]] virtual Result<ClusterReply> postNow(const std::string& hostPort, const std::string& path,
                                                     const nlohmann::json& body, std::chrono::milliseconds timeout) = 0;
};

// The real one: clusterPost() on the loop's thread pool.
std::unique_ptr<ClusterClient> makeClusterClient(uv_loop_t* loop);

}  // namespace skiff::netd
