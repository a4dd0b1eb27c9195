import {LOG_LEVELS} from '../util/log.js'
import {addr, bool, int, num, oneOf, schema, str, type ConfigOf, type Keys} from './schema.js'

// Shared pieces of the three server schemas, parameterized by protocol defaults.

const logLevel = (d: (typeof LOG_LEVELS)[number]) =>
  oneOf(LOG_LEVELS, d, 'Log level, written to stderr: off, error, warn, info, debug or trace.\nNothing is logged per request at any level below debug.')

const serverTop = (protocol: string) => ({
  socket_workers: int(
    1,
    `Number of worker processes. 0 = one per CPU.

Each worker serves requests and owns a shard of the swarm (torrents are
routed by info hash), so every peer sees one consistent swarm whatever
worker received its request. One worker per physical core is a good start;
on a machine shared with the load generator or with little traffic, 1 is best.`,
    0,
    1024,
  ),
  log_level: logLevel('info'),
  pid_file: str(
    `./tracker-${protocol}.pid`,
    `Where the tracker writes its process id. \`tracker accesslist reload\` reads it.
A status file (same name, ending .status.json) is written beside it at start
and after every reload: generation, ok, entries, error, time.`,
  ),
})

const network = <E extends Keys = Record<never, never>>(port: number, extra: E = {} as E) => ({
  help: 'Sockets. IPv4 and IPv6 each get their own socket; either can be turned off, not both.',
  keys: {
    use_ipv4: bool(true, 'Serve over IPv4.'),
    use_ipv6: bool(true, 'Serve over IPv6.'),
    address_ipv4: addr(
      `0.0.0.0:${port}`,
      `IPv4 address and port, e.g. "0.0.0.0:${port}" for every interface or
"127.0.0.1:${port}" for loopback only. Port 0 picks a free port.`,
      4,
    ),
    address_ipv6: addr(
      `[::]:${port}`,
      `IPv6 address and port, e.g. "[::]:${port}" for every interface or
"[::1]:${port}" for loopback only.`,
      6,
    ),
    set_only_ipv6: bool(true, 'Make the IPv6 socket IPv6-only (IPv4 goes to the IPv4 socket).\nIf false, IPv4-mapped clients on it are treated as IPv4 peers.'),
    ...extra,
  },
})

const metrics = (port: number) => ({
  help: `Prometheus endpoint (text format, any path). On by default and bound to loopback:
nothing is exposed to the network unless you say so, each protocol has its
own port (UDP 9000, HTTP 9001, WS 9002) so several trackers on one host do not
clash, and \`tracker top\` finds them there.`,
  keys: {
    run_prometheus_endpoint: bool(true, 'Serve metrics.'),
    prometheus_endpoint_address: addr(`127.0.0.1:${port}`, 'Address and port of the metrics endpoint.'),
  },
})

const privileges = {
  help: 'Switch to an unprivileged user after binding sockets (e.g. to bind port 80 as root).\nNode has no chroot, so unlike aquatic there is no chroot_path.',
  keys: {
    drop_privileges: bool(false, 'Switch user and group once every socket is bound.'),
    user: str('nobody', 'User to switch to.'),
    group: str('nogroup', 'Group to switch to.'),
  },
}

const accessList = {
  help: `Which info hashes may be announced. The file holds hex info hashes, one per
line, case-insensitive; blank lines and # comments are allowed. It is read at
start (a bad file stops start-up) and again on SIGUSR1 or
\`tracker accesslist reload\` (a bad file keeps the old list in force).
Torrents newly refused are dropped at the next cleaning; scrapes are not filtered.`,
  keys: {
    mode: oneOf(['allow', 'deny', 'off'] as const, 'off', 'allow: only listed hashes; deny: all but listed hashes; off: everything.'),
    path: str('./access-list.txt', 'Path of the access-list file.'),
  },
}

const limits = {
  help: `Caps that keep a flood of new info hashes or peers from exhausting memory.
Refusals are counted in tracker_refusals_total.`,
  keys: {
    max_torrents: int(
      5_000_000,
      'Most torrents held at once by each worker (a worker holds its shard of them).\nAn announce for a new torrent beyond it gets an error ("Tracker is at its\ntorrent limit; try again later").',
      1,
    ),
    max_peers_per_torrent: int(
      250_000,
      'Most peers stored per torrent. A new peer beyond it still gets counts and\npeers, but is not stored until others leave.',
      1,
    ),
  },
}

const cleaning = <E extends Keys = Record<never, never>>(interval: number, peerAge: number, extra: E = {} as E) => ({
  help: 'Expiry. Cleaning removes peers that stopped announcing and frees empty torrents.',
  keys: {
    torrent_cleaning_interval: int(interval, 'Clean torrents this often (seconds).', 1, 86_400),
    max_peer_age: int(peerAge, 'Remove peers that have not announced for this long (seconds).', 1, 86_400 * 7),
    ...extra,
  },
})

export const udpSchema = schema('udp', 'UDP BitTorrent tracker (BEP 15)', serverTop('udp'), {
  network: network(6969, {
    socket_recv_buffer_size: int(
      8_000_000,
      `Receive buffer size of each socket in bytes; 0 = OS default. A large buffer
keeps bursts from being dropped. Linux caps it at net.core.rmem_max, e.g.
  sudo sysctl -w net.core.rmem_max=8000000`,
      0,
      1 << 30,
    ),
    batched_io: bool(
      true,
      `Read and answer datagrams in batches (recvmmsg/sendmmsg, through the addon built at
install on Linux): one syscall per batch instead of one per packet. Without the addon,
or when false, node:dgram is used.`,
    ),
  }),
  protocol: {
    help: 'Protocol limits and timings.',
    keys: {
      max_scrape_torrents: int(70, 'Most info hashes answered per scrape; extra ones are ignored (not an error).', 1, 255),
      max_response_peers: int(30, 'Most peers returned per announce (numwant is honoured below it).', 0, 200),
      peer_announce_interval: int(900, 'Ask peers to announce this often (seconds).', 1, 86_400),
    },
  },
  cleaning: cleaning(120, 1200, {
    max_connection_age: int(120, 'Connection ids are valid this long (seconds; BEP 15 says two minutes).', 1, 3600),
  }),
  limits,
  metrics: metrics(9000),
  privileges,
  access_list: accessList,
})

/** TLS keys shared by the TCP servers (HTTP and WebTorrent). */
const tls = {
  enable_tls: bool(
    false,
    `Serve HTTPS (or wss://) with the built-in TLS. The certificate and key are read
at start (a bad file stops start-up) and again on SIGUSR1 or
\`tracker accesslist reload\`; a bad file at reload keeps the old pair in force.
New connections get the new pair; open ones keep theirs.`,
  ),
  tls_certificate_path: str('', 'Path of the certificate chain (PEM).'),
  tls_private_key_path: str('', 'Path of the private key (PEM: PKCS#8, PKCS#1 or SEC1).'),
}

export const httpSchema = schema('http', 'HTTP BitTorrent tracker (BEP 3, 7, 23, 48)', serverTop('http'), {
  network: network(6969, {
    tcp_backlog: int(1024, 'Connections the kernel queues before they are accepted.', 1, 65_535),
    ...tls,
    keep_alive: bool(true, 'Keep connections open after a response (clients may still close them).'),
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

export const wsSchema = schema('ws', 'WebTorrent tracker (WebSocket signalling)', serverTop('ws'), {
  network: network(8000, {
    tcp_backlog: int(1024, 'Connections the kernel queues before they are accepted.', 1, 65_535),
    ...tls,
    max_message_size: int(65_536, 'Largest WebSocket message accepted (bytes); larger closes the connection (1009).', 1024, 16 << 20),
    batched_io: bool(
      true,
      `Plain ws:// connections (not wss://) are read and written by the addon built at
install on Linux once their handshake is done: what all connections sent in
one turn of the event loop reaches the tracker in one call, and writes go
straight to the kernel. Without the addon, or when false, Node's sockets are used.`,
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

const loadtestTop = (port: number) => ({
  server_address: addr(`127.0.0.1:${port}`, 'Tracker to load. Only loopback and your own test hosts are fair targets.'),
  workers: int(1, 'Load-generator worker threads.', 1, 64),
  duration: int(0, 'Run this many seconds, then print the summary; 0 = until interrupted.', 0, 86_400 * 7),
  log_level: logLevel('warn'),
})

const population = (peersWanted: number) => ({
  number_of_torrents: int(10_000, 'Torrents to simulate. Popularity is skewed: a few torrents get most peers.', 1, 100_000_000),
  number_of_peers: int(100_000, 'Peers to simulate (a fixed population, each on one torrent).', 1, 100_000_000),
  weight_announce: int(90, 'Relative share of announces.', 0, 1_000_000),
  weight_scrape: int(10, 'Relative share of scrapes.', 0, 1_000_000),
  peer_seeder_probability: num(0.25, 'Probability that a simulated peer is a seeder.', 0, 1),
  announce_peers_wanted: int(peersWanted, 'numwant sent with each announce.', 0, 1000),
})

export const loadtestUdpSchema = schema('loadtest-udp', 'UDP tracker load tester', loadtestTop(6969), {
  network: {
    help: 'Client sockets.',
    keys: {
      sockets_per_worker: int(4, 'UDP sockets per worker; each has its own source port.', 1, 1024),
      requests_in_flight_per_socket: int(64, 'Requests outstanding per socket (a closed loop).', 1, 65_536),
      recv_buffer: int(8_000_000, 'Receive buffer size of each socket in bytes; 0 = OS default.', 0, 1 << 30),
    },
  },
  requests: {
    help: 'What to send.',
    keys: {
      ...population(30),
      scrape_max_torrents: int(10, 'Most info hashes per scrape (each scrape asks 1 to this many).', 1, 255),
      weight_connect: int(
        0,
        "Relative share of extra connect requests (a connect is also sent whenever a\nsocket's connection id is older than connection_id_max_age).",
        0,
        1_000_000,
      ),
      connection_id_max_age: int(50, "Renew a socket's connection id after this many seconds.", 1, 3600),
    },
  },
})

export const loadtestHttpSchema = schema('loadtest-http', 'HTTP tracker load tester', loadtestTop(6969), {
  network: {
    help: 'Client connections.',
    keys: {
      connections: int(64, 'Concurrent connections (each with one request in flight).', 1, 100_000),
      keep_alive: bool(true, 'Reuse connections; false opens a connection per request.'),
      tls: bool(false, 'Use HTTPS (certificates are not verified: this is a load test).'),
    },
  },
  requests: {
    help: 'What to send.',
    keys: {
      ...population(50),
      scrape_max_torrents: int(5, 'Most info hashes per scrape (each scrape asks 1 to this many).', 1, 1000),
    },
  },
})

// WebTorrent peers are the connections: no separate peer population.
const {number_of_peers: _peers, ...wsPopulation} = population(10)

export const loadtestWsSchema = schema('loadtest-ws', 'WebTorrent tracker load tester', loadtestTop(8000), {
  network: {
    help: 'Client connections.',
    keys: {
      connections: int(64, 'Concurrent WebSocket connections.', 1, 1_000_000),
      tls: bool(false, 'Use wss:// (certificates are not verified: this is a load test).'),
    },
  },
  requests: {
    help: `What to send. Each connection is a simulated browser with one peer id that
announces to torrents chosen by popularity, joining more swarms as it goes.`,
    keys: {
      ...wsPopulation,
      offers_per_announce: int(2, 'Offers sent with each announce.', 0, 100),
      sdp_size: int(400, 'Bytes of SDP per offer or answer.', 1, 65_536),
    },
  },
})

export const SCHEMAS = {
  udp: udpSchema,
  http: httpSchema,
  ws: wsSchema,
  'loadtest-udp': loadtestUdpSchema,
  'loadtest-http': loadtestHttpSchema,
  'loadtest-ws': loadtestWsSchema,
} as const

export type SchemaName = keyof typeof SCHEMAS
export const SCHEMA_NAMES = Object.keys(SCHEMAS) as SchemaName[]
export const SERVER_NAMES = ['udp', 'http', 'ws'] as const
export type ServerName = (typeof SERVER_NAMES)[number]

export type UdpConfig = ConfigOf<typeof udpSchema>
export type HttpConfig = ConfigOf<typeof httpSchema>
export type WsConfig = ConfigOf<typeof wsSchema>
export type LoadtestUdpConfig = ConfigOf<typeof loadtestUdpSchema>
export type LoadtestHttpConfig = ConfigOf<typeof loadtestHttpSchema>
export type LoadtestWsConfig = ConfigOf<typeof loadtestWsSchema>
export type ConfigFor<N extends SchemaName> = ConfigOf<(typeof SCHEMAS)[N]>
