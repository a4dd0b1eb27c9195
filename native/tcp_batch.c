// Batched TCP I/O for the WebSocket tracker (Linux). Node accepts a connection and answers its
// WebSocket handshake; then the connection is handed over here: its fd is duplicated and Node's
// socket closed (the connection lives on in the duplicate). libuv polls it; what every ready
// connection sent in one turn of the event loop lands in one shared buffer and reaches JS in one
// call, after the poll phase; writes go straight to the kernel, with no stream in between. What
// the kernel does not take at once is queued here and written when the socket becomes writable.
// JS can stop reading one connection and start again (backpressure while its queue is too long).
#define _GNU_SOURCE
#define ADDON "tcp_batch"
#include "napi_common.h"
#include <uv.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Shared with JS: received bytes, and records of [id, kind, offset, length].
#define ARENA (1 << 20)
#define READ_SIZE 65536
#define MAX_RECORDS 4096
#define REC_DATA 1
// The connection is gone (end of stream or an error); the addon closed its fd.
#define REC_CLOSED 2
// The queue shrank: `length` is what is still queued.
#define REC_DRAINED 3

typedef struct Hub Hub;

typedef struct Conn {
  Hub *hub;
  uv_poll_t poll;
  int fd;  // -1 once closed
  uint32_t id;
  // What libuv polls for: UV_READABLE unless JS paused reading, UV_WRITABLE while bytes are queued.
  int events;
  int paused;
  // Shut down our side once the queue is empty (the peer's end of stream then closes).
  int ending;
  // JS let go; the memory is freed once libuv has let go of the poll handle too.
  int released;
  int poll_closed;
  uint8_t *queue;
  size_t queue_start, queued, queue_cap;
  // The hub's list of connections still open, for closing them when the environment goes away.
  struct Conn *prev, *next;
} Conn;

struct Hub {
  napi_env env;
  uv_loop_t *loop;
  uv_check_t check;
  JsCallback on_batch;
  uint8_t *arena;
  uint32_t *records;
  size_t used;
  int count;
  int delivering;
  int closing;
  Conn *open;
};

static void cleanup(void *arg);

// Calls JS with the records gathered so far; they and the arena are free again afterwards.
static void deliver(Hub *h) {
  if (h->count == 0 || h->delivering || h->closing) return;
  napi_env env = h->env;
  h->delivering = 1;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  js_callback_call(env, &h->on_batch, h->count);
  napi_close_handle_scope(env, scope);
  h->count = 0;
  h->used = 0;
  h->delivering = 0;
}

static void push(Hub *h, uint32_t id, uint32_t kind, size_t offset, size_t length) {
  if (h->count >= MAX_RECORDS) deliver(h);
  // Records are only made in poll callbacks, never while JS is handling a batch.
  if (h->count >= MAX_RECORDS) abort();
  uint32_t *r = h->records + 4 * h->count++;
  r[0] = id;
  r[1] = kind;
  r[2] = (uint32_t)offset;
  r[3] = (uint32_t)length;
}

static void maybe_free(Conn *c) {
  if (!c->released || !c->poll_closed) return;
  free(c->queue);
  free(c);
}

static void on_poll_closed(uv_handle_t *handle) {
  Conn *c = (Conn *)handle->data;
  c->poll_closed = 1;
  maybe_free(c);
}

// Stops polling and closes the fd, in that order: libuv takes the fd out of epoll while it is
// still open (once closed, its number may already belong to another socket).
static void shut(Conn *c) {
  if (c->fd < 0) return;
  if (c->prev) c->prev->next = c->next;
  else c->hub->open = c->next;
  if (c->next) c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->poll, on_poll_closed);
  close(c->fd);
  c->fd = -1;
  free(c->queue);
  c->queue = NULL;
  c->queued = c->queue_start = c->queue_cap = 0;
}

// The connection ended or failed under us: JS hears of it in the next batch.
static void lost(Conn *c) {
  if (c->fd < 0) return;
  shut(c);
  push(c->hub, c->id, REC_CLOSED, 0, 0);
}

static void update_events(Conn *c);

static void on_io(uv_poll_t *handle, int status, int events) {
  Conn *c = (Conn *)handle->data;
  Hub *h = c->hub;
  if (c->fd < 0) return;
  if (h->closing || status < 0) {
    lost(c);
    return;
  }
  if ((events & UV_WRITABLE) && c->queued > 0) {
    ssize_t n;
    do n = send(c->fd, c->queue + c->queue_start, c->queued, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      lost(c);
      return;
    }
    if (n > 0) {
      c->queue_start += (size_t)n;
      c->queued -= (size_t)n;
      if (c->queued == 0) {
        c->queue_start = 0;
        update_events(c);
        if (c->ending) shutdown(c->fd, SHUT_WR);
      }
      push(h, c->id, REC_DRAINED, 0, c->queued);
    }
  }
  if (!(events & UV_READABLE) || c->paused) return;
  // Room for a whole read, else JS takes what is gathered first.
  if (ARENA - h->used < READ_SIZE) deliver(h);
  if (c->fd < 0) return;
  ssize_t n;
  do n = read(c->fd, h->arena + h->used, READ_SIZE);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    push(h, c->id, REC_DATA, h->used, (size_t)n);
    h->used += (size_t)n;
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    lost(c);
  }
}

static void update_events(Conn *c) {
  int events = (c->paused ? 0 : UV_READABLE) | (c->queued > 0 ? UV_WRITABLE : 0);
  if (c->events == events) return;
  c->events = events;
  if (events == 0) uv_poll_stop(&c->poll);
  else uv_poll_start(&c->poll, events, on_io);
}

static void on_check(uv_check_t *check) {
  deliver((Hub *)check->data);
}

// open(onBatch(count)) -> {handle, arena, records}
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h = calloc(1, sizeof(Hub));
  h->env = env;
  napi_value result, handle, arena_ab, records_ab;
  void *p;
  CHECK(napi_create_arraybuffer(env, ARENA, &p, &arena_ab));
  h->arena = p;
  CHECK(napi_create_arraybuffer(env, MAX_RECORDS * 4 * sizeof(uint32_t), &p, &records_ab));
  h->records = p;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_external(env, h, NULL, NULL, &handle));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "arena", arena_ab));
  CHECK(napi_set_named_property(env, result, "records", records_ab));
  CHECK(js_callback_init(env, &h->on_batch, result, argv[0], "TCPBATCH"));
  CHECK(napi_get_uv_event_loop(env, &h->loop));
  // Check handles run right after the poll phase, newest first: before Node's own (setImmediate),
  // so the writes JS queues for this turn's messages leave in this same turn.
  uv_check_init(h->loop, &h->check);
  h->check.data = h;
  uv_check_start(&h->check, on_check);
  uv_unref((uv_handle_t *)&h->check);
  CHECK(napi_add_env_cleanup_hook(env, cleanup, h));
  return result;
}

// adopt(hub, fd, id) -> connection. The fd is duplicated; the caller closes its own.
static napi_value Adopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h;
  int32_t fd;
  uint32_t id;
  CHECK(napi_get_value_external(env, argv[0], (void **)&h));
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  CHECK(napi_get_value_uint32(env, argv[2], &id));
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return throw_errno(env, "tcp_batch: dup", errno);
  int one = 1;
  setsockopt(own, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Conn *c = calloc(1, sizeof(Conn));
  c->hub = h;
  c->fd = own;
  c->id = id;
  int err = uv_poll_init(h->loop, &c->poll, own);
  if (err != 0) {
    close(own);
    free(c);
    return throw_errno(env, "tcp_batch: uv_poll_init", -err);
  }
  c->poll.data = c;
  c->next = h->open;
  if (h->open) h->open->prev = c;
  h->open = c;
  update_events(c);
  napi_value result;
  CHECK(napi_create_external(env, c, NULL, NULL, &result));
  return result;
}

static Conn *conn_arg(napi_env env, napi_value value) {
  Conn *c = NULL;
  napi_get_value_external(env, value, (void **)&c);
  return c;
}

// The connection a one-argument call is about.
static Conn *only_conn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  return conn_arg(env, argv[0]);
}

// write(connection, buffer, length) -> bytes queued in the addon afterwards, or -1 when the
// connection is gone (the caller then treats it as closed).
static napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = conn_arg(env, argv[0]);
  void *data;
  size_t size;
  int32_t length;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  CHECK(napi_get_value_int32(env, argv[2], &length));
  if (length < 0 || (size_t)length > size) length = (int32_t)size;
  if (c->fd < 0) {
    CHECK(napi_create_int32(env, -1, &result));
    return result;
  }
  size_t sent = 0;
  if (c->queued == 0) {
    ssize_t n;
    do n = send(c->fd, data, (size_t)length, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      // Reported to JS by the return value, not a record: JS is in the middle of its own work.
      shut(c);
      CHECK(napi_create_int32(env, -1, &result));
      return result;
    }
    if (n > 0) sent = (size_t)n;
  }
  size_t rest = (size_t)length - sent;
  if (rest > 0) {
    if (c->queue_start + c->queued + rest > c->queue_cap) {
      if (c->queue_start > 0) {
        memmove(c->queue, c->queue + c->queue_start, c->queued);
        c->queue_start = 0;
      }
      if (c->queued + rest > c->queue_cap) {
        size_t cap = c->queue_cap * 2;
        if (cap < c->queued + rest) cap = c->queued + rest;
        uint8_t *grown = realloc(c->queue, cap);
        if (grown == NULL) return throw_errno(env, "tcp_batch: queue", ENOMEM);
        c->queue = grown;
        c->queue_cap = cap;
      }
    }
    memcpy(c->queue + c->queue_start + c->queued, (uint8_t *)data + sent, rest);
    c->queued += rest;
    update_events(c);
  }
  CHECK(napi_create_int32(env, (int32_t)c->queued, &result));
  return result;
}

// reading(connection, on): stops or starts reading from the connection (backpressure: JS stops
// while the connection's outgoing queue is over its bound). Queued bytes are still written.
static napi_value Reading(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Conn *c = conn_arg(env, argv[0]);
  bool on;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (c == NULL || c->fd < 0) return NULL;
  c->paused = !on;
  update_events(c);
  return NULL;
}

// end(connection): our side shuts down once the queue is written; the connection closes when
// the peer ends its side (or is released).
static napi_value End(napi_env env, napi_callback_info info) {
  Conn *c = only_conn(env, info);
  if (c == NULL || c->fd < 0 || c->ending) return NULL;
  c->ending = 1;
  if (c->queued == 0) shutdown(c->fd, SHUT_WR);
  return NULL;
}

// release(connection): closes it now if still open; JS must not use it again.
static napi_value Release(napi_env env, napi_callback_info info) {
  Conn *c = only_conn(env, info);
  if (c == NULL || c->released) return NULL;
  c->released = 1;
  if (c->fd >= 0) shut(c);
  maybe_free(c);
  return NULL;
}

static void on_check_closed(uv_handle_t *handle) {
  free(handle->data);
}

// The environment is going away (a worker thread ends) with the hub still open: every handle is
// closed so that the thread's loop can close; JS will not release anything any more.
static void cleanup(void *arg) {
  Hub *h = (Hub *)arg;
  h->closing = 1;
  while (h->open) {
    Conn *c = h->open;
    c->released = 1;
    shut(c);
  }
  uv_check_stop(&h->check);
  uv_close((uv_handle_t *)&h->check, on_check_closed);
}

// close(hub): after every connection is released.
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h;
  CHECK(napi_get_value_external(env, argv[0], (void **)&h));
  if (h->closing) return NULL;
  h->closing = 1;
  napi_remove_env_cleanup_hook(env, cleanup, h);
  uv_check_stop(&h->check);
  js_callback_free(env, &h->on_batch);
  uv_close((uv_handle_t *)&h->check, on_check_closed);
  return NULL;
}

// A worker thread that used the addon unloads it when its environment goes away, but libuv may
// still call our close callbacks after that (the thread's last loop run). Loading ourselves
// once more with RTLD_NODELETE keeps the code mapped for the life of the process.
static void keep_loaded(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  Dl_info info;
  if (dladdr((void *)keep_loaded, &info) != 0 && info.dli_fname != NULL) dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

static napi_value Init(napi_env env, napi_value exports) {
  keep_loaded();
  napi_property_descriptor props[] = {
    {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
    {"adopt", NULL, Adopt, NULL, NULL, NULL, napi_default, NULL},
    {"write", NULL, Write, NULL, NULL, NULL, napi_default, NULL},
    {"reading", NULL, Reading, NULL, NULL, NULL, napi_default, NULL},
    {"end", NULL, End, NULL, NULL, NULL, napi_default, NULL},
    {"release", NULL, Release, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
