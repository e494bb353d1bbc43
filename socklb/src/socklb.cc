// The kernel side of the socket-LB: loading the programs (the object is
// compiled from socklb/bpf/socklb.bpf.c and embedded in this library),
// attaching them to a cgroup through bpf_links, and BpfMaps, the MapStore
// over the loaded maps.

#include "skiff/socklb/socklb.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "maps.h"
#include "netns_id.h"
#include "skiff/common/fd.h"
#include "skiff/common/log.h"
#include "table.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

extern "C" {
extern const unsigned char skiff_socklb_object[];
extern const unsigned long skiff_socklb_object_size;
}

namespace skiff::socklb {

bool builtWithBpf() { return true; }

namespace {

// libbpf's own messages (the verifier's log among them) go to the debug
// log: a failed load is reported once, as an Error, by open().
int libbpfToLog(enum libbpf_print_level, const char* format, va_list args) {
  char line[1024];
  int n = std::vsnprintf(line, sizeof line, format, args);
  if (n > 0) {
    std::string text(line);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    log::debug("socklb", "libbpf: ", text);
  }
  return n;
}

class BpfMaps final : public MapStore {
 public:
  BpfMaps(int frontends, int backends, int picks, uint64_t* turns)
      : frontends_(frontends), backends_(backends), picks_(picks), turns_(turns) {}
  Status putFrontend(const FrontendKey& k, const FrontendValue& v) override {
    return update(frontends_, &k, &v, "frontends");
  }
  Status eraseFrontend(const FrontendKey& k) override { return erase(frontends_, &k, "frontends"); }
  Status putBackend(const BackendKey& k, const BackendValue& v) override {
    return update(backends_, &k, &v, "backends");
  }
  Status eraseBackend(const BackendKey& k) override { return erase(backends_, &k, "backends"); }
  uint64_t* turns(uint32_t service) override { return service < kMaxServices ? &turns_[service] : nullptr; }
  std::map<PickKey, uint64_t> picks() const override {
    std::map<PickKey, uint64_t> out;
    PickKey key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(picks_, prev, &next) == 0) {
      uint64_t n = 0;
      if (bpf_map_lookup_elem(picks_, &next, &n) == 0) out[next] = n;
      key = next;
      prev = &key;
    }
    return out;
  }
  Result<int32_t> netnsIdOf(pid_t pid) override {
    auto id = netnsId(pid);
    if (!id.ok() && id.error().code != ENOENT && id.error().code != ESRCH)
      log::warn("socklb", "backend pid ", pid, " is not checked before it is picked: ", id.error().message);
    return id;
  }
  void erasePicks(uint32_t service) override {
    for (const auto& [k, n] : picks()) {
      if (k.service == service) (void)bpf_map_delete_elem(picks_, &k);
    }
  }

 private:
  static Status update(int fd, const void* k, const void* v, const char* what) {
    if (bpf_map_update_elem(fd, k, v, BPF_ANY) != 0) return Error::fromErrno(std::string("update map ") + what);
    return okStatus();
  }
  static Status erase(int fd, const void* k, const char* what) {
    if (bpf_map_delete_elem(fd, k) != 0 && errno != ENOENT)
      return Error::fromErrno(std::string("delete from map ") + what);
    return okStatus();
  }
  int frontends_, backends_, picks_;
  uint64_t* turns_;
};

Result<uint64_t> currentNetnsCookie() {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::fromErrno("socket");
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
    return Error::fromErrno("read this network namespace's cookie (SO_NETNS_COOKIE needs Linux 5.14)");
  return cookie;
}

struct ProgramSpec {
  const char* name;
  const char* hook;
};
constexpr ProgramSpec kPrograms[] = {
    {"socklb_connect4", "connect4"},
    {"socklb_sendmsg4", "sendmsg4"},
    {"socklb_recvmsg4", "recvmsg4"},
    {"socklb_getpeername4", "getpeername4"},
};

class KernelSocketLb final : public SocketLb {
 public:
  ~KernelSocketLb() override {
    for (auto* l : links_) bpf_link__destroy(l);
    if (turns_ != nullptr) munmap(turns_, turnsBytes_);
    if (obj_ != nullptr) bpf_object__close(obj_);
  }

  Status open(const Options& options) {
    libbpf_set_print(libbpfToLog);
    auto cookie = currentNetnsCookie();
    if (!cookie.ok()) return cookie.error();
    cookie_ = *cookie;
    if (options.cgroup.starts_with("/")) {
      cgroup_ = options.cgroup;
    } else {
      auto root = cgroup2Root(options.mountIfMissing);
      if (!root.ok()) return root.error();
      cgroup_ = options.cgroup.empty() ? *root : *root + "/" + options.cgroup;
    }
    UniqueFd cg(::open(cgroup_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) return Error::fromErrno("open cgroup " + cgroup_);

    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "skiff_socklb");
    obj_ = bpf_object__open_mem(skiff_socklb_object, skiff_socklb_object_size, &opts);
    if (obj_ == nullptr) return Error::fromErrno("open the socket-LB's BPF object");
    if (bpf_object__load(obj_) != 0) {
      int err = errno;
      return Error::fromErrno(err == EPERM ? "load the socket-LB's BPF programs (needs root: CAP_BPF and CAP_NET_ADMIN)"
                                           : "load the socket-LB's BPF programs",
                              err);
    }
    int netns = mapFd("netns");
    int frontends = mapFd("frontends");
    int backends = mapFd("backends");
    int picks = mapFd("picks");
    int rr = mapFd("rr");
    if (netns < 0 || frontends < 0 || backends < 0 || picks < 0 || rr < 0)
      return Error::msg("the socket-LB's BPF object lacks a map (a build out of step with socklb.bpf.c)");
    turnsBytes_ = sizeof(uint64_t) * kMaxServices;
    void* mem = mmap(nullptr, turnsBytes_, PROT_READ | PROT_WRITE, MAP_SHARED, rr, 0);
    if (mem == MAP_FAILED) return Error::fromErrno("mmap the socket-LB's round-robin counters");
    turns_ = static_cast<uint64_t*>(mem);
    uint8_t one = 1;
    if (bpf_map_update_elem(netns, &cookie_, &one, BPF_ANY) != 0) return Error::fromErrno("update map netns");
    maps_ = std::make_unique<BpfMaps>(frontends, backends, picks, turns_);
    table_ = std::make_unique<ServiceTable>(*maps_);

    // Last: the programs go live only once the maps say what to serve.
    for (const auto& p : kPrograms) {
      bpf_program* prog = bpf_object__find_program_by_name(obj_, p.name);
      if (prog == nullptr) return Error::msg(std::string("the socket-LB's BPF object lacks ") + p.name);
      bpf_link* link = bpf_program__attach_cgroup(prog, cg.get());
      if (link == nullptr) return Error::fromErrno(std::string("attach ") + p.hook + " to cgroup " + cgroup_);
      links_.push_back(link);
    }
    return okStatus();
  }

  Status setService(const std::string& name, const Service& service) override {
    std::lock_guard lock(mu_);
    return table_->set(name, service);
  }
  Status removeService(const std::string& name) override {
    std::lock_guard lock(mu_);
    return table_->remove(name);
  }
  std::map<std::string, std::map<Endpoint, uint64_t>> picks() const override {
    std::lock_guard lock(mu_);
    return table_->picks();
  }
  uint64_t* turns(const std::string& name) override {
    std::lock_guard lock(mu_);
    const uint32_t* id = table_->idOf(name);
    return id == nullptr ? nullptr : maps_->turns(*id);
  }
  uint64_t netnsCookie() const override { return cookie_; }
  const std::string& cgroup() const override { return cgroup_; }

 private:
  int mapFd(const char* name) const {
    bpf_map* m = bpf_object__find_map_by_name(obj_, name);
    return m == nullptr ? -1 : bpf_map__fd(m);
  }
  bpf_object* obj_ = nullptr;
  std::vector<bpf_link*> links_;
  uint64_t* turns_ = nullptr;
  size_t turnsBytes_ = 0;
  uint64_t cookie_ = 0;
  std::string cgroup_;
  std::unique_ptr<BpfMaps> maps_;
  std::unique_ptr<ServiceTable> table_;
  mutable std::mutex mu_;  // the table: picks() comes from a metrics scrape
};

}  // namespace

Result<std::unique_ptr<SocketLb>> SocketLb::open(const Options& options) {
  auto lb = std::make_unique<KernelSocketLb>();
  auto st = lb->open(options);
  if (!st.ok()) return Error{st.error().code, "socket load balancer: " + st.error().message};
  return std::unique_ptr<SocketLb>(std::move(lb));
}

}  // namespace skiff::socklb
