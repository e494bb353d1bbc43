#pragma once
// The manager's own agent reaches its manager through this ClusterClient:
// the same requests a remote agent POSTs to port 2377 (join is never sent;
// heartbeat, image, layer), the same JSON bodies and answers, the same
// authentication by node id and secret, without the TCP in between. Each
// exchange is answered on a later turn of the loop (an idle handle), as a
// network answer would be: neither side is re-entered from the other's
// call, and a chain of exchanges never keeps the loop from its I/O.
// Internal to netd's orchestrator.

#include <uv.h>

#include <functional>
#include <memory>

#include "skiff/netd/cluster_client.h"
#include "skiff/netd/errors.h"

namespace skiff::netd {

// dispatch(path, body): what the manager's cluster port would answer.
using LocalDispatch = std::function<ApiResult<nlohmann::json>(const std::string& path, const nlohmann::json& body)>;

// Exchanges still waiting when the link is destroyed are dropped unanswered.
std::unique_ptr<ClusterClient> makeLocalAgentLink(uv_loop_t* loop, LocalDispatch dispatch);

}  // namespace skiff::netd
