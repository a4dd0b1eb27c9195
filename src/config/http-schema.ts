import {bool, int, schema, str, type ConfigOf} from './schema.js'
import {accessList, cleaning, limits, metrics, network, privileges, serverTop, tls} from './sections.js'

export const httpSchema = schema('http', 'HTTP BitTorrent tracker (BEP 3, 7, 23, 48)', serverTop('http'), {
  network: network(6969, {
    tcp_backlog: int(1024, 'Connections the kernel queues before they are accepted.', 1, 65_535),
    ...tls,
    keep_alive: bool(true, 'Keep connections open after a response (clients may still close them).'),
    batched_io: bool(
      true,
      `Plain http:// (not https://) connections are accepted, read and written by
the addon built at install on Linux: each turn of the event loop accepts what
is waiting, reads every new connection at once (its request is usually in) and
hands what all connections sent to the tracker in one call; replies go straight
to the kernel. Without the addon, or when false, Node's sockets are used.`,
    ),
    runs_behind_reverse_proxy: bool(
      false,
      `Take the client's IP from a header set by a reverse proxy (the last
address in it). Only turn this on behind a proxy that sets the header:
otherwise any client can claim any IP. A request without a valid header
gets a failure reason.`,
    ),
    reverse_proxy_ip_header_name: str('X-Forwarded-For', 'Header that holds the client IP (case-insensitive), e.g. "X-Real-IP".'),
  }),
  connections: {
    help: `Limits that keep slow or idle clients from holding the tracker's connections.
Closed connections are counted in tracker_dropped_total by reason.`,
    keys: {
      max_connections: int(
        16_384,
        `Most open connections per worker, TLS handshakes and closing ones included.
When full, the least recently active connection (idle, silent, handshaking or
slow) is closed to make room, so that a new client always gets in; only one
waiting for another worker's answer is spared. Lowered, with a warning, to what
the process's open-file limit allows: raise it (ulimit -n) above this.`,
        1,
        1_000_000,
      ),
      idle_timeout: int(180, 'Close a kept-alive connection that sends nothing for this long (seconds).', 1, 86_400),
      request_timeout: int(
        10,
        `A request head must arrive within this many seconds of its first byte (or of
the connection opening, or of the TLS handshake starting): slow senders are cut off.`,
        1,
        3600,
      ),
      send_timeout: int(
        10,
        `Close a connection that takes none of its replies for this long (seconds): a
client that sends requests and never reads. While 64 KiB of replies wait for
the kernel, its next requests are not read.`,
        1,
        3600,
      ),
      max_request_line_bytes: int(8192, 'Longest request line (method, path and query); longer gets 414.', 256, 1 << 20),
      max_request_head_bytes: int(16_384, 'Largest request head (request line and headers); larger gets 431.', 512, 1 << 20),
      max_headers: int(64, 'Most header lines in a request; more gets 431.', 1, 1000),
    },
  },
  protocol: {
    help: 'Protocol limits and timings.',
    keys: {
      max_scrape_torrents: int(100, 'Most info hashes answered per scrape; extra ones are ignored (not an error).', 1, 1000),
      max_response_peers: int(50, 'Most peers returned per announce (numwant is honoured below it).', 0, 500),
      peer_announce_interval: int(120, 'Ask peers to announce this often (seconds).', 1, 86_400),
      peer_announce_min_interval: int(60, 'Ask peers not to announce more often than this (seconds; "min interval").', 0, 86_400),
      enable_full_scrape: bool(
        false,
        `Answer a scrape without info hashes with every torrent. Off by default: on a
big tracker the answer is megabytes. When on, it is served from a snapshot
made every full_scrape_interval seconds, not built per request.`,
      ),
      full_scrape_interval: int(60, 'Rebuild the full-scrape snapshot this often (seconds).', 1, 86_400),
    },
  },
  cleaning: cleaning(30, 1800),
  limits,
  metrics: metrics(9001),
  privileges,
  access_list: accessList,
})

export type HttpConfig = ConfigOf<typeof httpSchema>
