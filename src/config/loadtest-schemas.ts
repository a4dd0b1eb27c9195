import {addr, bool, int, num, schema, type ConfigOf} from './schema.js'
import {logLevel} from './sections.js'

// The load generators' schemas: one per protocol, sharing their top-level keys and the simulated population.

const loadtestTop = (port: number) => ({
  server_address: addr(`127.0.0.1:${port}`, 'Tracker to load. Only loopback and your own test hosts are fair targets.'),
  workers: int(1, 'Load-generator worker threads.', 1, 64),
  warmup: int(
    1,
    'Seconds of load before the measured time: sent, but left out of every rate,\ncount and latency (connections open, caches and JIT warm up).',
    0,
    3600,
  ),
  duration: int(0, 'Measure this many seconds after the warm-up, then print the summary; 0 = until interrupted.', 0, 86_400 * 7),
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

export type LoadtestUdpConfig = ConfigOf<typeof loadtestUdpSchema>
export type LoadtestHttpConfig = ConfigOf<typeof loadtestHttpSchema>
export type LoadtestWsConfig = ConfigOf<typeof loadtestWsSchema>
