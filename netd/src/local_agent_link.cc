#include "local_agent_link.h"

#include <deque>

#include "skiff/common/log.h"

namespace skiff::netd {
namespace {

class LocalAgentLink : public ClusterClient {
 public:
  LocalAgentLink(uv_loop_t* loop, LocalDispatch dispatch) : dispatch_(std::move(dispatch)) {
    idle_ = new uv_idle_t;
    uv_idle_init(loop, idle_);
    idle_->data = this;
  }
  ~LocalAgentLink() override {
    idle_->data = nullptr;
    uv_idle_stop(idle_);
    uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  }

  void post(std::string, std::string path, nlohmann::json body, std::chrono::milliseconds, Done done) override {
    queue_.push_back({std::move(path), std::move(body), std::move(done)});
    if (queue_.size() == 1) uv_idle_start(idle_, onIdle);
  }

  Result<ClusterReply> postNow(const std::string&, const std::string& path, const nlohmann::json& body,
                               std::chrono::milliseconds) override {
    return answer(path, body);
  }

 private:
  struct Exchange {
    std::string path;
    nlohmann::json body;
    Done done;
  };

  static void onIdle(uv_idle_t* h) {
    if (h->data != nullptr) static_cast<LocalAgentLink*>(h->data)->deliver();
  }

  // Once per turn of the loop: the exchanges posted before it. One posted
  // while they are answered waits for the next turn, so a chain of them
  // (an agent whose every report makes the manager answer with work that
  // makes another report) never keeps the loop from its I/O.
  void deliver() {
    std::deque<Exchange> now;
    now.swap(queue_);
    uv_idle_stop(idle_);
    for (auto& e : now) {
      Result<ClusterReply> reply = answer(e.path, e.body);
      try {
        e.done(std::move(reply));
      } catch (const std::exception& ex) {
        log::error("netd", "local agent link: ", ex.what());
      }
    }
    if (!queue_.empty()) uv_idle_start(idle_, onIdle);
  }

  // The cluster port's HTTP answer, without HTTP: the status its error kind
  // maps to, the JSON body or {"message": ...}.
  Result<ClusterReply> answer(const std::string& path, const nlohmann::json& body) {
    ClusterReply reply;
    try {
      auto r = dispatch_(path, body);
      if (const auto* e = std::get_if<ApiError>(&r)) {
        reply.status = httpStatus(e->kind);
        reply.body = nlohmann::json{{"message", e->message}};
      } else {
        reply.status = 200;
        reply.body = std::get<nlohmann::json>(std::move(r));
      }
    } catch (const std::exception& e) {
      reply.status = 500;
      reply.body = nlohmann::json{{"message", e.what()}};
    }
    return reply;
  }

  LocalDispatch dispatch_;
  uv_idle_t* idle_;  // heap: freed by its close callback, after this link
  std::deque<Exchange> queue_;
};

}  // namespace

std::unique_ptr<ClusterClient> makeLocalAgentLink(uv_loop_t* loop, LocalDispatch dispatch) {
  return std::make_unique<LocalAgentLink>(loop, std::move(dispatch));
}

}  // namespace skiff::netd
