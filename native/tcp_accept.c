// Listening TCP sockets of the tcp_batch addon (the HTTP tracker's plain http://). Each readiness
// event accepts in a loop; a new connection is read at once (with TCP_DEFER_ACCEPT the kernel
// hands it over only once its first bytes are in), so that it usually reaches JS in the same
// batch as its request, and one answered and closed in that batch never gets a poll handle.
#define _GNU_SOURCE
#include "tcp_batch.h"
#include "bind_address.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Connections accepted per readiness event before the event loop runs on (the rest wait, as
// epoll reports the socket again).
#define ACCEPTS_PER_EVENT 256
// Out of file descriptors or memory: the socket is not polled for this long (the connections
// wait in the kernel's backlog) rather than reported ready again at once.
#define ACCEPT_PAUSE_MS 100

struct Listener {
  Hub *hub;
  uv_poll_t poll;
  uv_timer_t pause;
  int fd;  // -1 once closed
  uint32_t id;
  int half_open;
  // Handles libuv has yet to let go of; the memory is freed at 0.
  int handles;
  struct Listener *next;
};

static void on_listener_handle_closed(uv_handle_t *handle) {
  Listener *l = (Listener *)handle->data;
  if (--l->handles == 0) free(l);
}

static void listener_close(Listener *l) {
  if (l->fd < 0) return;
  Hub *h = l->hub;
  for (Listener **p = &h->listeners; *p; p = &(*p)->next) {
    if (*p == l) {
      *p = l->next;
      break;
    }
  }
  uv_close((uv_handle_t *)&l->poll, on_listener_handle_closed);
  uv_close((uv_handle_t *)&l->pause, on_listener_handle_closed);
  close(l->fd);
  l->fd = -1;
}

void listeners_cleanup(Hub *h) {
  while (h->listeners) listener_close(h->listeners);
}

static void on_accept(uv_poll_t *handle, int status, int events);

static void on_pause_over(uv_timer_t *timer) {
  Listener *l = (Listener *)timer->data;
  if (l->fd >= 0) uv_poll_start(&l->poll, UV_READABLE, on_accept);
}

// The peer's address as the arena holds it for REC_ACCEPTED.
static void write_peer(uint8_t *out, const struct sockaddr_storage *peer) {
  memset(out, 0, PEER_BYTES);
  if (peer->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
    out[0] = 4;
    memcpy(out + 2, &a->sin_port, 2);
    memcpy(out + 4, &a->sin_addr, 4);
  } else if (peer->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
    memcpy(out + 2, &a->sin6_port, 2);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      out[0] = 4;
      memcpy(out + 4, a->sin6_addr.s6_addr + 12, 4);
    } else {
      out[0] = 6;
      memcpy(out + 4, &a->sin6_addr, 16);
    }
  }
}

static void on_accept(uv_poll_t *handle, int status, int events) {
  (void)events;
  Listener *l = (Listener *)handle->data;
  Hub *h = l->hub;
  if (l->fd < 0 || h->closing || status < 0) return;
  for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
    // Room for the connection's records, its peer and a read.
    if (h->count + 3 > MAX_RECORDS || ARENA - h->used < MIN_READ + PEER_BYTES) hub_deliver(h);
    if (l->fd < 0 || h->closing) return;
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        uv_poll_stop(&l->poll);
        uv_timer_start(&l->pause, on_pause_over, ACCEPT_PAUSE_MS, 0);
        return;
      }
      // The connection failed before we took it (ECONNABORTED, EPROTO...), or a signal: the next.
      continue;
    }
    Conn *c = conn_new(h, fd, l->half_open);
    if (c == NULL) {
      close(fd);
      continue;
    }
    write_peer(h->arena + h->used, &peer);
    hub_push(h, c->id, REC_ACCEPTED, h->used, l->id);
    h->used += PEER_BYTES;
    c->fresh = 1;
    c->fresh_next = h->fresh;
    h->fresh = c;
    conn_read(c);
  }
}

// listen(hub, family 4|6, host, port, reusePort, v6only, backlog, deferAcceptSeconds, halfOpen)
//   -> {handle, id, port}. Accepted connections are reported as REC_ACCEPTED with the listener's
//   id; with halfOpen they stay open for writing when the peer ends its side (REC_ENDED).
napi_value Listen(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h;
  int32_t family, port, backlog, defer;
  bool reuse, v6only, half_open;
  char host[64];
  size_t host_len;
  CHECK(napi_get_value_external(env, argv[0], (void **)&h));
  CHECK(napi_get_value_int32(env, argv[1], &family));
  CHECK(napi_get_value_string_utf8(env, argv[2], host, sizeof host, &host_len));
  CHECK(napi_get_value_int32(env, argv[3], &port));
  CHECK(napi_get_value_bool(env, argv[4], &reuse));
  CHECK(napi_get_value_bool(env, argv[5], &v6only));
  CHECK(napi_get_value_int32(env, argv[6], &backlog));
  CHECK(napi_get_value_int32(env, argv[7], &defer));
  CHECK(napi_get_value_bool(env, argv[8], &half_open));
  int fd = -1;
  const char *what;
  // SO_REUSEADDR as Node's listening sockets: a restarted tracker binds while old connections
  // are in TIME_WAIT.
  int err = bound_socket(SOCK_STREAM, family, host, port, 1, reuse, v6only, &fd, &what);
  if (err != 0) return throw_errno(env, what, err);
  int one = 1;
  // Accepted connections inherit it: replies leave at once.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (defer > 0) setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
  if (listen(fd, backlog) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, "listen", err);
  }
  Listener *l = calloc(1, sizeof(Listener));
  if (l == NULL) {
    close(fd);
    return throw_errno(env, "tcp_batch: listen", ENOMEM);
  }
  err = uv_poll_init(h->loop, &l->poll, fd);
  if (err != 0) {
    close(fd);
    free(l);
    return throw_errno(env, "tcp_batch: uv_poll_init", -err);
  }
  uv_timer_init(h->loop, &l->pause);
  uv_unref((uv_handle_t *)&l->pause);
  l->poll.data = l;
  l->pause.data = l;
  l->handles = 2;
  l->hub = h;
  l->fd = fd;
  l->id = h->next_listener_id++;
  l->half_open = half_open;
  l->next = h->listeners;
  h->listeners = l;
  uv_poll_start(&l->poll, UV_READABLE, on_accept);
  napi_value result, handle, id, bound;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_external(env, l, NULL, NULL, &handle));
  CHECK(napi_create_uint32(env, l->id, &id));
  CHECK(napi_create_int32(env, bound_port(fd), &bound));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "id", id));
  CHECK(napi_set_named_property(env, result, "port", bound));
  return result;
}

// unlisten(listener): stops accepting and closes the socket; accepted connections stay open.
napi_value Unlisten(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Listener *l;
  CHECK(napi_get_value_external(env, argv[0], (void **)&l));
  listener_close(l);
  return NULL;
}
