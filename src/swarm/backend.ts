/**
 * What the UDP and HTTP servers may ask of a swarm: the contract a backend implements (the
 * in-memory `Swarm` today; swarms shared across machines through a Redis Cluster later), and the
 * reusable objects requests and results travel in.
 */

export const EVENT_NONE = 0
export const EVENT_COMPLETED = 1
export const EVENT_STARTED = 2
export const EVENT_STOPPED = 3

export const enum AnnounceStatus {
  Ok = 0,
  /** The torrent is at max_peers_per_torrent: the peer got counts and peers but is not stored. */
  PeerLimit = 1,
  /** max_torrents reached: nothing stored, nothing returned. */
  TorrentLimit = 2,
}

/** Filled by a codec, read by `announce`. Byte fields point into the request buffer. */
export class AnnounceRequest {
  infoHash: Uint8Array = new Uint8Array(20)
  infoHashOffset = 0
  peerId: Uint8Array = new Uint8Array(20)
  peerIdOffset = 0
  ipFamily: 4 | 6 = 4
  /** 4 or 16 bytes. IPv4-mapped IPv6 must already be IPv4. */
  ip: Uint8Array = new Uint8Array(4)
  port = 0
  event = EVENT_NONE
  isSeeder = false
  /** How many peers to return at most (the protocol clamps it). */
  numWant = 0
}

export class AnnounceResult {
  status: AnnounceStatus = AnnounceStatus.Ok
  /** Other peers (the announcer excluded), both IP families. */
  seeders = 0
  leechers = 0
  completed = 0
  peerCount = 0
  /** Compact peers (6 bytes IPv4, 18 bytes IPv6) are written here by the caller's choice. */
  peerBuf: Uint8Array = new Uint8Array(0)
  peerBufOffset = 0
  /** When set, the selected peers' ids (20 bytes each) are written here too. */
  peerIdBuf: Uint8Array | null = null
  peerIdBufOffset = 0
}

export class ScrapeCounts {
  seeders = 0
  leechers = 0
  completed = 0
}

export interface SwarmLimits {
  maxTorrents: number
  maxPeersPerTorrent: number
  /** Seconds a peer stays without announcing. */
  maxPeerAge: number
}

/** Engine-side figures a worker reports for its shard of the swarm (read at metrics scrape time). */
export interface SwarmGauges {
  torrents(): number
  peers(ipVersion: 0 | 1): number
  seeders(): number
  leechers(): number
  completed(): number
  peersExpired(): number
  /** Refusals the engine counts itself (torrent and peer caps), by name. */
  refusals(): Record<string, number>
}

/**
 * A swarm of compact peers, as the UDP and HTTP servers reach it (one per worker: its shard).
 *
 * What a backend must guarantee:
 * - Synchronous: every call has done its work when it returns, and its results are in the
 *   caller-owned objects and buffers it was given (`AnnounceResult`, its `peerBuf` and
 *   `peerIdBuf`, `ScrapeCounts`). The caller reuses them for the next request: a backend keeps
 *   no reference to them after returning.
 * - No allocation on the announce and scrape paths: no objects, closures, strings or Promises
 *   per request. Info hashes are read as bytes where they stand (`b[o..o+20]`).
 * - Counts: an announce's `seeders` and `leechers` count the other peers (the announcer excluded,
 *   whether or not it was stored); a scrape counts everyone. Both cover IPv4 and IPv6 peers;
 *   peers returned are of the announcer's IP family only, never the announcer, and leechers
 *   when the announcer is a seeder and there are any. `completed` counts event=completed
 *   announces, except those of a stored peer that was a seeder already.
 * - Limits: a new torrent past `maxTorrents` is refused (`TorrentLimit`, nothing stored or
 *   returned); a new peer past `maxPeersPerTorrent` is not stored but gets counts and peers
 *   (`PeerLimit`). A peer that has not announced for `maxPeerAge` seconds leaves at `clean`.
 * - Time is what the caller passes (`now`, whole seconds on the worker's clock): a backend
 *   reads no clock and runs no timer of its own.
 *
 * An asynchronous backend (a network store such as Redis) cannot meet the first two points as
 * they stand. It would need: announce and scrape split into a send and a completion (a callback
 * per worker, not per request, handed results by request id), with each request's result object
 * and peer buffer owned by the pending request until it completes (as the servers already park
 * requests forwarded to another worker's shard); the reply written from the completion; a bound
 * on requests in flight; counts that may trail other nodes by a round trip; expiry kept by the
 * store (key TTLs) rather than a sweep over every torrent in `clean`; `forEachTorrent` served
 * from a periodic snapshot; and gauges read from figures refreshed in the background.
 */
export interface SwarmBackend {
  /**
   * Adds, updates or (event stopped) removes the announcing peer; `res` gets the status, the
   * counts of the other peers and up to `req.numWant` peers written at `res.peerBufOffset` (and
   * their ids at `res.peerIdBufOffset` when `res.peerIdBuf` is set). Returns `res.status`.
   */
  announce(req: AnnounceRequest, now: number, res: AnnounceResult): AnnounceStatus
  /** Counts of everyone (both families) for the info hash at b[o..o+20] into `out`; zeros if unknown. */
  scrape(b: Uint8Array, o: number, out: ScrapeCounts): ScrapeCounts
  /**
   * Removes peers whose expiry is before `now`, torrents `isAllowed` refuses (called with the
   * 20 info-hash bytes at hashes[offset..]), and torrents left empty.
   */
  clean(now: number, isAllowed?: (hashes: Uint8Array, offset: number) => boolean): void
  /** Every torrent with its counts of everyone (full-scrape snapshots); `hashes[offset..offset+20]` is its info hash, valid during the call. */
  forEachTorrent(fn: (hashes: Uint8Array, offset: number, seeders: number, leechers: number, completed: number) => void): void
  /** Figures for the metrics module (called once, at registration). */
  gauges(): SwarmGauges
}
