import {bool, int, schema, type ConfigOf} from './schema.js'
import {accessList, cleaning, limits, metrics, network, privileges, serverTop, tls} from './sections.js'

export const wsSchema = schema('ws', 'WebTorrent tracker (WebSocket signalling)', serverTop('ws'), {
  network: network(8000, {
    tcp_backlog: int(1024, 'Connections the kernel queues before they are accepted.', 1, 65_535),
    ...tls,
    max_message_size: int(65_536, 'Largest WebSocket message accepted (bytes); larger closes the connection (1009).', 1024, 16 << 20),
    batched_io: bool(
      true,
      `Plain ws:// connections (not wss://) are accepted, read and written by the
addon built at install on Linux, their upgrade request included: what all
connections sent in one turn of the event loop reaches the tracker in one call,
and writes go straight to the kernel. Without the addon, or when false, Node's
sockets (and its HTTP server, for the upgrade) are used.`,
    ),
    enable_http_health_checks: bool(false, 'Answer GET /health with 200 "Ok" on the same port (for load balancers and proxies).'),
  }),
  connections: {
    help: `Limits that keep slow, idle or dead clients from holding the tracker's connections.
Closed connections and dropped messages are counted in tracker_dropped_total by reason.`,
    keys: {
      max_connections: int(
        65_536,
        `Most open sockets per worker, counted from TCP accept: WebSocket connections
and sockets still in their handshake (TLS or upgrade request). When full, the
socket in its handshake the longest is closed to make room for a new one;
WebSocket connections are never closed for it, so when every slot is one, a
new client gets HTTP 503. Raise the open-file limit (ulimit -n) above this.`,
        1,
        10_000_000,
      ),
      handshake_timeout: int(
        10,
        `The TLS handshake (wss://) and then the WebSocket upgrade request must each be
done within this many seconds, or the socket is closed.`,
        1,
        3600,
      ),
      max_connection_idle: int(180, 'Close a connection that sends no announce or scrape for this long (seconds).', 1, 86_400),
      ping_interval: int(
        30,
        `Ping every connection this often (seconds); one that has not answered the
previous ping is closed. Finds dead connections long before max_connection_idle.
Each ping carries a random token: only a pong that echoes it is an answer.`,
        1,
        3600,
      ),
      max_buffered_bytes: int(
        1 << 20,
        `Most bytes queued to one connection, every frame counted (messages, pongs,
pings, closes). Past it, the tracker stops reading from the connection until
its queue drains to a quarter of this, and messages for it from other peers are
dropped (a browser that does not read cannot hold the tracker's memory).`,
        1024,
        1 << 30,
      ),
      send_timeout: int(10, 'Close a connection whose queue stays over max_buffered_bytes this long (seconds).', 1, 3600),
    },
  },
  protocol: {
    help: 'Protocol limits and timings.',
    keys: {
      max_scrape_torrents: int(255, 'Most info hashes answered per scrape; extra ones are ignored (not an error).', 1, 1000),
      max_offers: int(10, 'Most offers forwarded per announce; extra ones are dropped.', 0, 100),
      peer_announce_interval: int(120, 'Ask peers to announce this often (seconds).', 1, 86_400),
      enable_full_scrape: bool(
        false,
        `Answer a scrape without info hashes with every torrent, from a snapshot made
every full_scrape_interval seconds. Off by default: it can be large.`,
      ),
      full_scrape_interval: int(60, 'Rebuild the full-scrape snapshot this often (seconds).', 1, 86_400),
    },
  },
  cleaning: cleaning(30, 180, {
    max_offer_age: int(120, 'An offer can be answered for this long (seconds); later answers are refused.', 1, 3600),
  }),
  limits: {
    help: limits.help,
    keys: {
      ...limits.keys,
      max_torrents_per_connection: int(
        1000,
        `Most torrents one connection can be in at once (a browser shares one
connection among all its torrents). An announce for one more gets an error
(counted as torrents_per_connection) until the connection leaves one.`,
        1,
      ),
      max_pending_offers_per_connection: int(
        1000,
        `Most offers from one connection waiting for their answer. A browser sends at
most max_offers (10) per announce, once an announce interval per torrent, and
answered offers leave at once; with max_offer_age no longer than the interval
(both 120 s by default), even offers nobody answers number at most about 20
per torrent: 1,000 covers a browser in 50 torrents that nobody answers. Offers
past it are not relayed (the announce is still answered; counted as
offer_limit). Counted per worker: offers are held by the worker that owns their
torrent, so with several workers one connection can hold this many on each.`,
        1,
      ),
      max_pending_offers_per_torrent: int(
        100_000,
        `Most offers waiting for their answer in one torrent: 5,000 peers each with
20 unanswered offers. Offers past it are not relayed (the announce is still
answered; counted as offer_limit) until answers or max_offer_age free room.`,
        1,
      ),
    },
  },
  metrics: metrics(9002),
  privileges,
  access_list: accessList,
})

export type WsConfig = ConfigOf<typeof wsSchema>
