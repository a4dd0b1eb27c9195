// Batched UDP socket I/O for the tracker (Linux): recvmmsg and sendmmsg on a socket of our own,
// polled by libuv. One JS call per batch of up to BATCH datagrams instead of one per datagram,
// and one syscall per batch each way. Packets and addresses live in ArrayBuffers shared with JS.
#define _GNU_SOURCE
#define ADDON "udp_batch"
#include "napi_common.h"
#include "bind_address.h"
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 8192
// Batches read per readiness event before yielding to the event loop.
#define MAX_ROUNDS 16

typedef struct {
  int fd;
  int family;
  int closing;
  uv_poll_t poll;
  napi_env env;
  JsCallback on_batch;
  // Receive slots: data, and per packet [length, port, family(4|6)] and 16 address bytes.
  uint8_t *in;
  int32_t *in_meta;
  uint8_t *in_addr;
  // Send slots, the same layout, filled by JS.
  uint8_t *out;
  int32_t *out_meta;
  uint8_t *out_addr;
  struct mmsghdr rmsgs[BATCH];
  struct iovec riov[BATCH];
  struct sockaddr_in6 raddr[BATCH];
  struct mmsghdr smsgs[BATCH];
  struct iovec siov[BATCH];
  struct sockaddr_in6 saddr[BATCH];
} Sock;

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void on_readable(uv_poll_t *handle, int status, int events) {
  Sock *s = (Sock *)handle->data;
  if (s->closing || status < 0) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  for (int round = 0; round < MAX_ROUNDS && !s->closing; round++) {
    // The kernel overwrites only the name length (and flags) of each header.
    for (int i = 0; i < BATCH; i++) s->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
    int n = recvmmsg(s->fd, s->rmsgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      int32_t *meta = s->in_meta + 3 * i;
      uint8_t *addr = s->in_addr + 16 * i;
      // A datagram longer than a slot is cut: mark it so JS drops it (no tracker request is that long).
      meta[0] = (s->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)s->rmsgs[i].msg_len;
      struct sockaddr *sa = (struct sockaddr *)&s->raddr[i];
      if (sa->sa_family == AF_INET) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
        meta[1] = ntohs(a4->sin_port);
        meta[2] = 4;
        memcpy(addr, &a4->sin_addr, 4);
      } else {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
        meta[1] = ntohs(a6->sin6_port);
        if (memcmp(&a6->sin6_addr, V4_MAPPED, 12) == 0) {
          meta[2] = 4;
          memcpy(addr, ((uint8_t *)&a6->sin6_addr) + 12, 4);
        } else {
          meta[2] = 6;
          memcpy(addr, &a6->sin6_addr, 16);
        }
      }
    }
    if (!js_callback_call(env, &s->on_batch, n)) break;
    if (n < BATCH) break;
  }
  napi_close_handle_scope(env, scope);
}

static void on_close(uv_handle_t *handle) {
  // The packet buffers belong to JS; only the struct is ours.
  free(handle->data);
}

// open(family 4|6, host, port, reusePort, v6only, recvBufferSize, sendBufferSize, onBatch)
//   -> {handle, in, inMeta, inAddr, out, outMeta, outAddr, port, batch, slot}
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], this_arg;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &this_arg, NULL));
  int32_t family, port, recv_buf, send_buf;
  bool reuse, v6only;
  char host[64];
  size_t host_len;
  CHECK(napi_get_value_int32(env, argv[0], &family));
  CHECK(napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_bool(env, argv[3], &reuse));
  CHECK(napi_get_value_bool(env, argv[4], &v6only));
  CHECK(napi_get_value_int32(env, argv[5], &recv_buf));
  CHECK(napi_get_value_int32(env, argv[6], &send_buf));

  int fd = -1;
  const char *what;
  int err = bound_socket(SOCK_DGRAM, family, host, port, 0, reuse, v6only, &fd, &what);
  if (err != 0) return throw_errno(env, what, err);
  if (recv_buf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &recv_buf, sizeof recv_buf);
  if (send_buf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buf, sizeof send_buf);
  int local_port = bound_port(fd);

  Sock *s = calloc(1, sizeof(Sock));
  s->fd = fd;
  s->family = family;
  s->env = env;
  napi_value in_ab, in_meta_ab, in_addr_ab, out_ab, out_meta_ab, out_addr_ab;
  void *p;
  CHECK(napi_create_arraybuffer(env, (size_t)BATCH * SLOT, &p, &in_ab));
  s->in = p;
  CHECK(napi_create_arraybuffer(env, BATCH * 3 * sizeof(int32_t), &p, &in_meta_ab));
  s->in_meta = p;
  CHECK(napi_create_arraybuffer(env, BATCH * 16, &p, &in_addr_ab));
  s->in_addr = p;
  CHECK(napi_create_arraybuffer(env, (size_t)BATCH * SLOT, &p, &out_ab));
  s->out = p;
  CHECK(napi_create_arraybuffer(env, BATCH * 3 * sizeof(int32_t), &p, &out_meta_ab));
  s->out_meta = p;
  CHECK(napi_create_arraybuffer(env, BATCH * 16, &p, &out_addr_ab));
  s->out_addr = p;
  // Each header points at its own slot, iovec and address for the socket's life (calloc zeroed
  // the rest); a batch fills in only lengths and addresses.
  for (int i = 0; i < BATCH; i++) {
    s->riov[i].iov_base = s->in + (size_t)i * SLOT;
    s->riov[i].iov_len = SLOT;
    s->rmsgs[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsgs[i].msg_hdr.msg_iovlen = 1;
    s->rmsgs[i].msg_hdr.msg_name = &s->raddr[i];
    s->siov[i].iov_base = s->out + (size_t)i * SLOT;
    s->smsgs[i].msg_hdr.msg_iov = &s->siov[i];
    s->smsgs[i].msg_hdr.msg_iovlen = 1;
    s->smsgs[i].msg_hdr.msg_name = &s->saddr[i];
  }
  // The buffers belong to JS (kept alive by the returned object); `s` must not free them.
  napi_value result, handle, port_value, batch_value, slot_value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_external(env, s, NULL, NULL, &handle));
  CHECK(napi_create_int32(env, local_port, &port_value));
  CHECK(napi_create_int32(env, BATCH, &batch_value));
  CHECK(napi_create_int32(env, SLOT, &slot_value));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "in", in_ab));
  CHECK(napi_set_named_property(env, result, "inMeta", in_meta_ab));
  CHECK(napi_set_named_property(env, result, "inAddr", in_addr_ab));
  CHECK(napi_set_named_property(env, result, "out", out_ab));
  CHECK(napi_set_named_property(env, result, "outMeta", out_meta_ab));
  CHECK(napi_set_named_property(env, result, "outAddr", out_addr_ab));
  CHECK(napi_set_named_property(env, result, "port", port_value));
  CHECK(napi_set_named_property(env, result, "batch", batch_value));
  CHECK(napi_set_named_property(env, result, "slot", slot_value));
  CHECK(js_callback_init(env, &s->on_batch, result, argv[7], "UDPBATCH"));

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  return result;
}

// send(handle, count) -> datagrams the kernel took (the rest are dropped: UDP may lose them)
static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s;
  int32_t count;
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  CHECK(napi_get_value_int32(env, argv[1], &count));
  if (count > BATCH) count = BATCH;
  int sent = 0;
  if (!s->closing && count > 0) {
    for (int i = 0; i < count; i++) {
      int32_t *meta = s->out_meta + 3 * i;
      uint8_t *addr = s->out_addr + 16 * i;
      memset(&s->saddr[i], 0, sizeof(struct sockaddr_in6));
      socklen_t len;
      if (s->family == 4) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&s->saddr[i];
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)meta[1]);
        memcpy(&a4->sin_addr, addr, 4);
        len = sizeof(struct sockaddr_in);
      } else {
        // On an IPv6 socket an IPv4 peer is addressed as IPv4-mapped.
        struct sockaddr_in6 *a6 = &s->saddr[i];
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)meta[1]);
        if (meta[2] == 4) {
          memcpy(&a6->sin6_addr, V4_MAPPED, 12);
          memcpy(((uint8_t *)&a6->sin6_addr) + 12, addr, 4);
        } else {
          memcpy(&a6->sin6_addr, addr, 16);
        }
        len = sizeof(struct sockaddr_in6);
      }
      s->siov[i].iov_len = (size_t)meta[0];
      s->smsgs[i].msg_hdr.msg_namelen = len;
    }
    int done = 0;
    while (done < count) {
      int n = sendmmsg(s->fd, s->smsgs + done, count - done, MSG_DONTWAIT);
      if (n > 0) {
        done += n;
        sent += n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // An error for the next datagram: skip it (not counted as sent), as a lost packet. A full
      // send buffer (EAGAIN) drops the rest of the batch the same way.
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        done++;
        continue;
      }
      break;
    }
  }
  napi_value result;
  CHECK(napi_create_int32(env, sent, &result));
  return result;
}

// steer(handle, workers): every datagram of the SO_REUSEPORT group this socket is in goes to the
// socket at index (first info-hash byte % workers) when it is an announce (action 1 at offset 8)
// or a scrape (action 2; its first hash): the worker that owns the torrent, when the workers'
// sockets joined the group in worker order. Anything else (a connect, a short datagram: an
// out-of-range index) is spread by the kernel's hash as without a program. Attached once for
// the group; a socket that joins later is steered too.
static napi_value Steer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s;
  uint32_t workers;
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  CHECK(napi_get_value_uint32(env, argv[1], &workers));
  if (workers == 0) return throw_errno(env, "steer", EINVAL);
  // The program sees the datagram from its first payload byte (the kernel pulls the UDP header).
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 3),
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 16),
    BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers),
    BPF_STMT(BPF_RET | BPF_A, 0),
    BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) return throw_errno(env, "SO_ATTACH_REUSEPORT_CBPF", errno);
  return NULL;
}

// unsteer(handle): the group is spread by the kernel's hash again.
static napi_value Unsteer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s;
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  int unused = 0;
  if (setsockopt(s->fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused) != 0) return throw_errno(env, "SO_DETACH_REUSEPORT_BPF", errno);
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s;
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  if (s->closing) return NULL;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  js_callback_free(env, &s->on_batch);
  uv_close((uv_handle_t *)&s->poll, on_close);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
    {"steer", NULL, Steer, NULL, NULL, NULL, napi_default, NULL},
    {"unsteer", NULL, Unsteer, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
