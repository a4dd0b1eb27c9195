// What the two halves of the tcp_batch addon share: the hub (one per JS user: its shared arena
// and records, its connections, its listeners) and a connection. tcp_batch.c reads, writes and
// closes connections; tcp_accept.c listens and accepts them.
#ifndef TRACKER_TCP_BATCH_H
#define TRACKER_TCP_BATCH_H
#define ADDON "tcp_batch"
#include "napi_common.h"
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

// Shared with JS: received bytes, and records of [id, kind, a, b].
#define ARENA (1 << 20)
#define READ_SIZE 65536
// Below this much room in the arena, JS takes what is gathered before the next read.
#define MIN_READ 16384
#define MAX_RECORDS 4096
// [id, REC_DATA, offset, length]: bytes received.
#define REC_DATA 1
// [id, REC_CLOSED]: the connection is gone (an error, or the end of a connection that does not
// stay half open); the addon closed its fd.
#define REC_CLOSED 2
// [id, REC_DRAINED, 0, queued]: the queue shrank to `queued` bytes.
#define REC_DRAINED 3
// [id, REC_ACCEPTED, offset, listener]: a new connection; the arena holds its peer at `offset`:
// family (4, or 6), a zero byte, the port (big-endian), 16 address bytes (IPv4 in the first 4).
#define REC_ACCEPTED 4
#define PEER_BYTES 20
// [id, REC_ENDED]: the peer ended its side; what is written still leaves (half-open connection).
#define REC_ENDED 5

// Connection ids: a slot in the hub's table, and the slot's generation above it, so that an id
// of a released connection never reaches the connection that reuses its slot.
#define SLOT_BITS 22
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define MAX_SLOTS (1u << SLOT_BITS)

// What a connection does once its queue is written, after end().
#define END_NONE 0
// Shut down our side; the connection closes when the peer ends its side.
#define END_SHUTDOWN 1
// Close it (what the peer sends after that is not read).
#define END_CLOSE 2

typedef struct Hub Hub;
typedef struct Listener Listener;

typedef struct Conn {
  Hub *hub;
  uv_poll_t poll;
  int fd;  // -1 once closed
  uint32_t id;
  // The poll handle is made when the connection first has to wait: a connection answered and
  // closed in the turn that accepted it never costs libuv a handle or epoll a registration.
  int polled;
  // What libuv polls for: UV_READABLE unless reading is paused or the peer ended its side,
  // UV_WRITABLE while bytes are queued.
  int events;
  int paused;
  // A connection that stays open for writing when the peer ends its side (REC_ENDED).
  int half_open;
  int peer_ended;
  int ending;  // END_*
  // JS let go; the memory is freed once libuv has let go of the poll handle too.
  int released;
  int poll_closed;
  // Accepted in the batch being gathered: polled (if still open) once JS has seen it.
  int fresh;
  struct Conn *fresh_next;
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
  Conn *fresh;
  // Connections by slot (NULL when free), each slot's generation, and the free slots.
  Conn **slots;
  uint16_t *generations;
  uint32_t *free_slots;
  uint32_t slot_count, slot_cap, free_count;
  Listener *listeners;
  uint32_t next_listener_id;
};

void hub_deliver(Hub *h);
void hub_push(Hub *h, uint32_t id, uint32_t kind, size_t a, size_t b);
// A connection on `fd` (non-blocking, ours to close), or NULL when every slot is taken.
Conn *conn_new(Hub *h, int fd, int half_open);
// Reads what the connection has into the arena (REC_DATA), or reports its end.
void conn_read(Conn *c);
void conn_update_events(Conn *c);
void listeners_cleanup(Hub *h);
napi_value Listen(napi_env env, napi_callback_info info);
napi_value Unlisten(napi_env env, napi_callback_info info);

#endif
