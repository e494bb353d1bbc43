// SPDX-License-Identifier: GPL-2.0
// skiff's socket load balancer: a client on this node that dials a published
// port is connected straight to a backend, inside the kernel, as Cilium's
// socket-LB does. The user-space proxy stays behind the same address: when
// a program here finds nothing to do (another namespace, an address that is
// not published, a service without backends) the call goes on untouched.
//
//   connect4       TCP and connected UDP: picks the next backend round-robin,
//                  passing over a local one whose socket is gone
//   sendmsg4       unconnected UDP: a socket keeps its backend while the
//                  service's list stays the same (a flow, as the proxy's)
//   recvmsg4       unconnected UDP: a reply seems to come from the published
//                  address the client sent to
//   getpeername4   the client sees the address it dialled, not the backend
//
// Every program first checks the network namespace it runs in against
// `netns` (the namespaces this balancer serves), then the destination
// against `frontends`. Addresses and ports are in network byte order.
// The map layouts are shared with socklb/src/maps.h: keep them in step.

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

struct frontend_key {
  __u32 addr;
  __u16 port;
  __u8 proto;
  __u8 pad;
};

// A service's backends live in slots {service, gen & 1, 0..count-1}. User
// space writes a new list under the other half, then swaps the frontend
// value (one atomic map update), then deletes the old half.
struct frontend {
  __u32 service;
  __u32 count;
  __u32 gen;
  __u32 pad;
};

struct backend_key {
  __u32 service;
  __u16 half;
  __u16 slot;
};

struct endpoint {
  __u32 addr;
  __u16 port;
  __u16 pad;
};

// A backend. A replica on this node names its network namespace (an id
// relative to the client's, or -1 for the client's own): before it is
// picked, its listening socket is looked up there, so a replica that died
// is passed over at once, before user space has heard of it. Remote ones
// (flags 0) are not checked; the proxy's passive health covers them.
#define BACKEND_CHECK 1
struct backend {
  __u32 addr;
  __u16 port;
  __u16 flags;
  __s32 netns;
  __u32 pad;
};

struct revnat_key {
  __u64 cookie;  // the client socket's
  __u32 addr;    // the backend it was sent to
  __u16 port;
  __u16 pad;
};

struct pick_key {
  __u32 service;
  __u32 addr;  // the backend
  __u16 port;
  __u16 pad;
};

struct flow_key {
  __u64 cookie;
  __u32 addr;  // the frontend it sends to
  __u16 port;
  __u16 pad;
};

struct flow {
  __u32 gen;
  __u32 slot;
};

#define MAX_SERVICES 4096

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u64);
  __type(value, __u8);
} netns SEC(".maps");

// Not preallocated: an update replaces an element with a new one and frees
// the old after an RCU grace period, so a value a program is reading never
// changes under it (a preallocated map reuses a freed element at once, and
// a program could read another key's service or backend).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct frontend_key);
  __type(value, struct frontend);
} frontends SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct backend_key);
  __type(value, struct backend);
} backends SEC(".maps");

// One round-robin counter per service, mmapped by user space so that the
// proxy takes its turns from the same counter.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, MAX_SERVICES);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} rr SEC(".maps");

// Connections (TCP, connected UDP) and UDP flows sent to each backend of
// each service.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct pick_key);
  __type(value, __u64);
} picks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, struct revnat_key);
  __type(value, struct endpoint);
} revnat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct flow_key);
  __type(value, struct flow);
} flows SEC(".maps");

static __always_inline int served(void *ctx) {
  __u64 cookie = bpf_get_netns_cookie(ctx);
  return bpf_map_lookup_elem(&netns, &cookie) != 0;
}

static __always_inline struct backend *backend_at(const struct frontend *fe, __u32 slot) {
  struct backend_key bk = {.service = fe->service, .half = fe->gen & 1, .slot = (__u16)slot};
  return bpf_map_lookup_elem(&backends, &bk);
}

static __always_inline void count_pick(__u32 service, const struct backend *be) {
  struct pick_key key = {.service = service, .addr = be->addr, .port = be->port};
  __u64 *n = bpf_map_lookup_elem(&picks, &key);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else {
    __u64 one = 1;
    bpf_map_update_elem(&picks, &key, &one, BPF_NOEXIST);
  }
}

// Rewrites ctx's destination to the backend and remembers the frontend for
// getpeername and replies.
static __always_inline void redirect(struct bpf_sock_addr *ctx, const struct backend *be, __u32 addr, __u16 port) {
  struct revnat_key rk = {.cookie = bpf_get_socket_cookie(ctx), .addr = be->addr, .port = be->port};
  struct endpoint front = {.addr = addr, .port = port};
  bpf_map_update_elem(&revnat, &rk, &front, BPF_ANY);
  ctx->user_ip4 = be->addr;
  ctx->user_port = be->port;
}

static __always_inline struct frontend *lookup_frontend(struct bpf_sock_addr *ctx, __u32 addr, __u16 port) {
  struct frontend_key fk = {.addr = addr, .port = port, .proto = (__u8)ctx->protocol};
  struct frontend *fe = bpf_map_lookup_elem(&frontends, &fk);
  if (!fe || fe->count == 0 || fe->service >= MAX_SERVICES) return 0;
  return fe;
}

// Whether a local backend still has its socket (see struct backend).
static __always_inline int alive(struct bpf_sock_addr *ctx, const struct backend *be) {
  if (!(be->flags & BACKEND_CHECK)) return 1;
  struct bpf_sock_tuple t = {};
  t.ipv4.daddr = be->addr;
  t.ipv4.dport = be->port;
  __u64 netns = be->netns < 0 ? (__u64)BPF_F_CURRENT_NETNS : (__u64)be->netns;
  struct bpf_sock *sk = ctx->protocol == IPPROTO_UDP ? bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), netns, 0)
                                                     : bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), netns, 0);
  if (!sk) return 0;
  bpf_sk_release(sk);
  return 1;
}

#define MAX_TRIES 4

// The next live backend in turn; each try takes a turn, as the proxy's
// skipping pick does. NULL: leave the client to the proxy.
static __always_inline struct backend *next_backend(struct bpf_sock_addr *ctx, struct frontend *fe, __u32 *slot) {
  __u32 service = fe->service;
  __u64 *turn = bpf_map_lookup_elem(&rr, &service);
  if (!turn) return 0;
  for (int i = 0; i < MAX_TRIES; i++) {
    __u64 n = __sync_fetch_and_add(turn, 1);
    *slot = (__u32)(n % fe->count);
    struct backend *be = backend_at(fe, *slot);
    if (!be) return 0;  // the list is being replaced
    if (alive(ctx, be)) return be;
    if (i + 1 >= fe->count) return 0;  // each was tried once
  }
  return 0;
}

SEC("cgroup/connect4")
int socklb_connect4(struct bpf_sock_addr *ctx) {
  if (!served(ctx)) return 1;
  __u32 addr = ctx->user_ip4;
  __u16 port = (__u16)ctx->user_port;
  struct frontend *fe = lookup_frontend(ctx, addr, port);
  if (!fe) return 1;
  __u32 slot = 0;
  struct backend *be = next_backend(ctx, fe, &slot);
  if (!be) return 1;  // the proxy takes this one
  count_pick(fe->service, be);
  redirect(ctx, be, addr, port);
  return 1;
}

SEC("cgroup/sendmsg4")
int socklb_sendmsg4(struct bpf_sock_addr *ctx) {
  if (!served(ctx)) return 1;
  __u32 addr = ctx->user_ip4;
  __u16 port = (__u16)ctx->user_port;
  struct frontend *fe = lookup_frontend(ctx, addr, port);
  if (!fe) return 1;
  struct flow_key key = {.cookie = bpf_get_socket_cookie(ctx), .addr = addr, .port = port};
  struct flow *f = bpf_map_lookup_elem(&flows, &key);
  struct backend *be = 0;
  if (f && f->gen == fe->gen && f->slot < fe->count) be = backend_at(fe, f->slot);
  if (be && !alive(ctx, be)) be = 0;
  if (!be) {
    struct flow nf = {.gen = fe->gen};
    be = next_backend(ctx, fe, &nf.slot);
    if (!be) return 1;
    bpf_map_update_elem(&flows, &key, &nf, BPF_ANY);
    count_pick(fe->service, be);
  }
  redirect(ctx, be, addr, port);
  return 1;
}

static __always_inline void restore_frontend(struct bpf_sock_addr *ctx) {
  struct revnat_key rk = {
      .cookie = bpf_get_socket_cookie(ctx), .addr = ctx->user_ip4, .port = (__u16)ctx->user_port};
  struct endpoint *front = bpf_map_lookup_elem(&revnat, &rk);
  if (!front) return;
  ctx->user_ip4 = front->addr;
  ctx->user_port = front->port;
}

SEC("cgroup/recvmsg4")
int socklb_recvmsg4(struct bpf_sock_addr *ctx) {
  if (served(ctx)) restore_frontend(ctx);
  return 1;
}

SEC("cgroup/getpeername4")
int socklb_getpeername4(struct bpf_sock_addr *ctx) {
  if (served(ctx)) restore_frontend(ctx);
  return 1;
}

char LICENSE[] SEC("license") = "GPL";
