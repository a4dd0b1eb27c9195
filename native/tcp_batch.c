// Batched TCP I/O (Linux): connections accepted here (tcp_accept.c: the HTTP and WebSocket
// trackers' plain listeners), or handed over once Node has them (adopt: the fd is duplicated and
// Node's socket closed; the WebSocket load generator). libuv polls them; what every ready
// connection sent in one turn of the event loop lands in one shared buffer and reaches JS in one
// call, after the poll phase; writes go straight to the kernel, with no stream in between. What
// the kernel does not take at once is queued here and written when the socket becomes writable.
// JS can stop reading one connection and start again (backpressure while its queue is too long).
// About 500 lines: a connection's whole life (table, reads, queue, end) and the N-API calls on
// it, one job that splitting would scatter; listening and accepting are tcp_accept.c's.
#define _GNU_SOURCE
#include "tcp_batch.h"
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

static void cleanup(void *arg);

// Calls JS with the records gathered so far; they and the arena are free again afterwards. The
// connections accepted meanwhile are then polled, unless JS closed them already.
void hub_deliver(Hub *h) {
  if (h->count > 0 && !h->delivering && !h->closing) {
    napi_env env = h->env;
    h->delivering = 1;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    int delivered = h->count;
    js_callback_call(env, &h->on_batch, delivered);
    napi_close_handle_scope(env, scope);
    // A record made while JS ran (a connection that failed as JS wrote to it) waits for the next
    // batch; such records carry no arena bytes.
    h->count -= delivered;
    memmove(h->records, h->records + 4 * delivered, (size_t)h->count * 4 * sizeof(uint32_t));
    h->used = 0;
    h->delivering = 0;
  }
  if (h->delivering) return;
  while (h->fresh) {
    Conn *c = h->fresh;
    h->fresh = c->fresh_next;
    c->fresh = 0;
    c->fresh_next = NULL;
    if (c->fd >= 0) conn_update_events(c);
    else if (c->released && c->poll_closed) free(c);
  }
}

void hub_push(Hub *h, uint32_t id, uint32_t kind, size_t a, size_t b) {
  if (h->count >= MAX_RECORDS) hub_deliver(h);
  // Still full only while JS handles a batch (records are then a failing connection's
  // REC_CLOSED): dropped, the connection is closed and JS's timers let go of it.
  if (h->count >= MAX_RECORDS) return;
  uint32_t *r = h->records + 4 * h->count++;
  r[0] = id;
  r[1] = kind;
  r[2] = (uint32_t)a;
  r[3] = (uint32_t)b;
}

static void maybe_free(Conn *c) {
  if (!c->released || !c->poll_closed || c->fresh) return;
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
  c->prev = c->next = NULL;
  if (c->polled) uv_close((uv_handle_t *)&c->poll, on_poll_closed);
  else c->poll_closed = 1;
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
  hub_push(c->hub, c->id, REC_CLOSED, 0, 0);
}

static void on_io(uv_poll_t *handle, int status, int events);

void conn_update_events(Conn *c) {
  if (c->fd < 0 || c->fresh) return;
  int events = (c->paused || c->peer_ended ? 0 : UV_READABLE) | (c->queued > 0 ? UV_WRITABLE : 0);
  if (c->events == events) return;
  if (!c->polled) {
    int err = uv_poll_init(c->hub->loop, &c->poll, c->fd);
    if (err != 0) {
      lost(c);
      return;
    }
    c->poll.data = c;
    c->polled = 1;
  }
  c->events = events;
  if (events == 0) uv_poll_stop(&c->poll);
  else uv_poll_start(&c->poll, events, on_io);
}

Conn *conn_new(Hub *h, int fd, int half_open) {
  uint32_t slot;
  if (h->free_count > 0) {
    slot = h->free_slots[--h->free_count];
  } else {
    if (h->slot_count == MAX_SLOTS) return NULL;
    if (h->slot_count == h->slot_cap) {
      uint32_t cap = h->slot_cap ? h->slot_cap * 2 : 1024;
      Conn **slots = realloc(h->slots, cap * sizeof *slots);
      if (slots == NULL) return NULL;
      h->slots = slots;
      uint16_t *generations = realloc(h->generations, cap * sizeof *generations);
      if (generations == NULL) return NULL;
      h->generations = generations;
      uint32_t *free_slots = realloc(h->free_slots, cap * sizeof *free_slots);
      if (free_slots == NULL) return NULL;
      h->free_slots = free_slots;
      memset(h->generations + h->slot_cap, 0, (cap - h->slot_cap) * sizeof *generations);
      h->slot_cap = cap;
    }
    slot = h->slot_count++;
  }
  Conn *c = calloc(1, sizeof(Conn));
  if (c == NULL) {
    h->free_slots[h->free_count++] = slot;
    return NULL;
  }
  uint16_t generation = (uint16_t)((h->generations[slot] + 1) & ((1u << (32 - SLOT_BITS)) - 1));
  h->generations[slot] = generation;
  h->slots[slot] = c;
  c->hub = h;
  c->fd = fd;
  c->id = ((uint32_t)generation << SLOT_BITS) | slot;
  c->half_open = half_open;
  c->next = h->open;
  if (h->open) h->open->prev = c;
  h->open = c;
  return c;
}

// The connection `id` names, or NULL once JS released it.
static Conn *conn_of(Hub *h, uint32_t id) {
  uint32_t slot = id & SLOT_MASK;
  if (slot >= h->slot_count) return NULL;
  Conn *c = h->slots[slot];
  return c != NULL && c->id == id ? c : NULL;
}

static void release(Conn *c) {
  if (c->released) return;
  c->released = 1;
  shut(c);
  Hub *h = c->hub;
  uint32_t slot = c->id & SLOT_MASK;
  h->slots[slot] = NULL;
  h->free_slots[h->free_count++] = slot;
  maybe_free(c);
}

// The queue is written: what end() asked for happens now.
static void ended(Conn *c) {
  if (c->ending == END_SHUTDOWN) shutdown(c->fd, SHUT_WR);
  else if (c->ending == END_CLOSE) lost(c);
}

void conn_read(Conn *c) {
  Hub *h = c->hub;
  // Room for a read, else JS takes what is gathered first.
  if (ARENA - h->used < MIN_READ) hub_deliver(h);
  if (c->fd < 0 || c->paused || c->peer_ended) return;
  size_t room = ARENA - h->used;
  if (room > READ_SIZE) room = READ_SIZE;
  ssize_t n;
  do n = read(c->fd, h->arena + h->used, room);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    hub_push(h, c->id, REC_DATA, h->used, (size_t)n);
    h->used += (size_t)n;
  } else if (n == 0 && c->half_open && c->ending == END_NONE) {
    c->peer_ended = 1;
    conn_update_events(c);
    hub_push(h, c->id, REC_ENDED, 0, 0);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    lost(c);
  }
}

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
        conn_update_events(c);
      }
      hub_push(h, c->id, REC_DRAINED, 0, c->queued);
      if (c->queued == 0) ended(c);
    }
  }
  if ((events & UV_READABLE) && c->fd >= 0) conn_read(c);
}

static void on_check(uv_check_t *check) {
  hub_deliver((Hub *)check->data);
}

// open(onBatch(count)) -> {handle, arena, records}
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h = calloc(1, sizeof(Hub));
  h->env = env;
  h->next_listener_id = 1;
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

// The hub and the connection of a call's first two arguments (hub, id), and up to three more
// (NULL when not given).
typedef struct {
  Hub *hub;
  Conn *conn;
  napi_value rest[3];
} ConnCall;

static int conn_call(napi_env env, napi_callback_info info, ConnCall *call) {
  size_t argc = 5;
  napi_value argv[5] = {NULL, NULL, NULL, NULL, NULL};
  uint32_t id;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return 0;
  if (napi_get_value_external(env, argv[0], (void **)&call->hub) != napi_ok) return 0;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) return 0;
  call->conn = conn_of(call->hub, id);
  call->rest[0] = argc > 2 ? argv[2] : NULL;
  call->rest[1] = argc > 3 ? argv[3] : NULL;
  call->rest[2] = argc > 4 ? argv[4] : NULL;
  return 1;
}

// adopt(hub, fd) -> id. The fd is duplicated; the caller closes its own.
static napi_value Adopt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h;
  int32_t fd;
  CHECK(napi_get_value_external(env, argv[0], (void **)&h));
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return throw_errno(env, "tcp_batch: dup", errno);
  int one = 1;
  setsockopt(own, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Conn *c = conn_new(h, own, 0);
  if (c == NULL) {
    close(own);
    return throw_errno(env, "tcp_batch: adopt", ENOMEM);
  }
  conn_update_events(c);
  if (c->fd < 0) {
    release(c);
    return throw_errno(env, "tcp_batch: uv_poll_init", EIO);
  }
  napi_value result;
  CHECK(napi_create_uint32(env, c->id, &result));
  return result;
}

// write(hub, id, buffer, length, more) -> bytes queued in the addon afterwards, or -1 when the
// connection is gone (the caller then treats it as closed). With `more` (end() follows at once)
// the kernel holds the bytes to leave with the FIN, one segment where there would be two.
static napi_value Write(napi_env env, napi_callback_info info) {
  ConnCall call;
  napi_value result;
  if (!conn_call(env, info, &call)) return NULL;
  Conn *c = call.conn;
  void *data;
  size_t size;
  int32_t length;
  bool more = false;
  CHECK(napi_get_buffer_info(env, call.rest[0], &data, &size));
  CHECK(napi_get_value_int32(env, call.rest[1], &length));
  if (call.rest[2] != NULL) napi_get_value_bool(env, call.rest[2], &more);
  if (length < 0 || (size_t)length > size) length = (int32_t)size;
  if (c == NULL || c->fd < 0 || c->ending != END_NONE) {
    CHECK(napi_create_int32(env, -1, &result));
    return result;
  }
  size_t sent = 0;
  if (c->queued == 0) {
    ssize_t n;
    do n = send(c->fd, data, (size_t)length, MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
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
    conn_update_events(c);
  }
  CHECK(napi_create_int32(env, (int32_t)c->queued, &result));
  return result;
}

// reading(hub, id, on): stops or starts reading from the connection (backpressure: JS stops
// while the connection's outgoing queue is over its bound). Queued bytes are still written.
static napi_value Reading(napi_env env, napi_callback_info info) {
  ConnCall call;
  if (!conn_call(env, info, &call)) return NULL;
  bool on;
  CHECK(napi_get_value_bool(env, call.rest[0], &on));
  Conn *c = call.conn;
  if (c == NULL || c->fd < 0) return NULL;
  c->paused = !on;
  conn_update_events(c);
  return NULL;
}

// end(hub, id, close) -> true when the connection is closed and released now. Once the queue is
// written, our side shuts down (the connection closes when the peer ends its side), or with
// `close` the connection closes; nothing more can be written.
static napi_value End(napi_env env, napi_callback_info info) {
  ConnCall call;
  napi_value result;
  if (!conn_call(env, info, &call)) return NULL;
  bool close_it;
  CHECK(napi_get_value_bool(env, call.rest[0], &close_it));
  Conn *c = call.conn;
  bool done = false;
  if (c != NULL && c->fd >= 0 && c->ending == END_NONE) {
    c->ending = close_it ? END_CLOSE : END_SHUTDOWN;
    // A half-open connection whose peer has ended closes with our side.
    if (c->peer_ended) c->ending = END_CLOSE;
    if (c->queued == 0) {
      if (c->ending == END_CLOSE) {
        release(c);
        done = true;
      } else {
        shutdown(c->fd, SHUT_WR);
      }
    }
  }
  CHECK(napi_get_boolean(env, done, &result));
  return result;
}

// release(hub, id): closes the connection now if still open; JS must not use the id again.
static napi_value Release(napi_env env, napi_callback_info info) {
  ConnCall call;
  if (!conn_call(env, info, &call)) return NULL;
  if (call.conn != NULL) release(call.conn);
  return NULL;
}

static void on_check_closed(uv_handle_t *handle) {
  Hub *h = (Hub *)handle->data;
  free(h->slots);
  free(h->generations);
  free(h->free_slots);
  free(h);
}

// The environment is going away (a worker thread ends) with the hub still open: every handle is
// closed so that the thread's loop can close; JS will not release anything any more.
static void cleanup(void *arg) {
  Hub *h = (Hub *)arg;
  h->closing = 1;
  listeners_cleanup(h);
  while (h->open) release(h->open);
  uv_check_stop(&h->check);
  uv_close((uv_handle_t *)&h->check, on_check_closed);
}

// close(hub): after every connection is released and every listener closed.
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Hub *h;
  CHECK(napi_get_value_external(env, argv[0], (void **)&h));
  if (h->closing) return NULL;
  h->closing = 1;
  napi_remove_env_cleanup_hook(env, cleanup, h);
  listeners_cleanup(h);
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
    {"listen", NULL, Listen, NULL, NULL, NULL, napi_default, NULL},
    {"unlisten", NULL, Unlisten, NULL, NULL, NULL, napi_default, NULL},
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
