import {LOG_FORMATS, LOG_LEVELS} from '../util/log.js'
import {addr, bool, int, oneOf, str, type Keys} from './schema.js'

/** Sections and keys shared by the schemas (the three servers', and the load testers' log level), parameterized by protocol defaults. */

export const logLevel = (d: (typeof LOG_LEVELS)[number]) =>
  oneOf(LOG_LEVELS, d, 'Log level, written to stderr: off, error, warn, info, debug or trace.\nNothing is logged per request at any level below debug.')

export const serverTop = (protocol: string) => ({
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
  log_format: oneOf(
    LOG_FORMATS,
    'text',
    'How log lines look: text (time, level, message) or json (one object per line\nwith time, level, msg and, from a worker process, worker), for log shippers.',
  ),
  pid_file: str(
    `./tracker-${protocol}.pid`,
    `Where the tracker writes its process id. \`tracker accesslist reload\` reads it.
A status file (same name, ending .status.json) is written beside it at start
and after every reload: generation, ok, entries, error, time.`,
  ),
})

export const network = <E extends Keys = Record<never, never>>(port: number, extra: E = {} as E) => ({
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

export const metrics = (port: number) => ({
  help: `Metrics endpoint: Prometheus text on /metrics, a stats page on /stats
(JSON: /stats?format=json). On by default and bound to loopback:
nothing is exposed to the network unless you say so, each protocol has its
own port (UDP 9000, HTTP 9001, WS 9002) so several trackers on one host do not
clash, and \`tracker top\` finds them there.`,
  keys: {
    run_prometheus_endpoint: bool(true, 'Serve metrics.'),
    prometheus_endpoint_address: addr(`127.0.0.1:${port}`, 'Address and port of the metrics endpoint.'),
  },
})

export const privileges = {
  help: 'Switch to an unprivileged user after binding sockets (e.g. to bind port 80 as root).\nNode has no chroot, so unlike aquatic there is no chroot_path.',
  keys: {
    drop_privileges: bool(false, 'Switch user and group once every socket is bound.'),
    user: str('nobody', 'User to switch to.'),
    group: str('nogroup', 'Group to switch to.'),
  },
}

export const accessList = {
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

export const limits = {
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

export const cleaning = <E extends Keys = Record<never, never>>(interval: number, peerAge: number, extra: E = {} as E) => ({
  help: 'Expiry. Cleaning removes peers that stopped announcing and frees empty torrents.',
  keys: {
    torrent_cleaning_interval: int(interval, 'Clean torrents this often (seconds).', 1, 86_400),
    max_peer_age: int(peerAge, 'Remove peers that have not announced for this long (seconds).', 1, 86_400 * 7),
    ...extra,
  },
})

/** TLS keys shared by the TCP servers (HTTP and WebTorrent). */
export const tls = {
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
