/**
 * The WebTorrent swarm: peers keyed by peer id and owned by one connection, and the offers each
 * peer is waiting to have answered. Pure: no sockets, no timers; times are seconds passed in.
 *
 * Binary fields (info hash, peer id, offer id) are 20-character strings, one char per byte, as
 * WebTorrent sends them.
 */

/** Where a peer's connection lives: worker index and connection number on that worker. */
export interface ConnectionRef {
  worker: number
  id: number
}

export class WebTorrentPeer {
  /** Offers sent on this peer's behalf, waiting for an answer: `${targetPeerId}${offerId}` -> expiry. */
  readonly expecting = new Map<string, number>()
  /** Position in the torrent's peer list (for random choice and O(1) removal). */
  index = 0

  constructor(readonly peerId: string, readonly conn: ConnectionRef, public seeder: boolean, public expires: number) {}
}

class Torrent {
  readonly peers = new Map<string, WebTorrentPeer>()
  readonly list: WebTorrentPeer[] = []
  seeders = 0
  completed = 0
}

export const enum WsAnnounceStatus {
  Ok = 0,
  /** The peer id is held by another connection: the request is ignored (no takeover). */
  PeerIdTaken = 1,
  /** max_torrents reached. */
  TorrentLimit = 2,
  /** max_peers_per_torrent reached: counted, not stored. */
  PeerLimit = 3,
}

export const enum AnswerStatus {
  /** No such peer in the torrent (it left): nothing to do. */
  NoPeer = 1,
  /** The target is not waiting for this answer (never offered, answered already or expired). */
  NoOffer = 2,
}

export interface WebTorrentLimits {
  maxTorrents: number
  maxPeersPerTorrent: number
  maxPeerAge: number
  maxOfferAge: number
}

export interface WsCounts {
  /** Other peers (the announcer excluded), both IP families. */
  complete: number
  incomplete: number
  downloaded: number
}

/** Two IP-version maps of torrents; counts cover both, offers stay within the announcer's. */
export class WebTorrentSwarm {
  private readonly families: [Map<string, Torrent>, Map<string, Torrent>] = [new Map(), new Map()]
  refusedTorrentLimit = 0
  refusedPeerLimit = 0
  peersExpired = 0
  completedTotal = 0
  offersExpired = 0

  constructor(readonly limits: WebTorrentLimits, private random: () => number = Math.random) {}

  private counts(infoHash: string, out: WsCounts): WsCounts {
    out.complete = out.incomplete = out.downloaded = 0
    for (const map of this.families) {
      const t = map.get(infoHash)
      if (!t) continue
      out.complete += t.seeders
      out.incomplete += t.peers.size - t.seeders
      out.downloaded += t.completed
    }
    return out
  }

  /**
   * Adds, updates or (event stopped) removes the peer `peerId` of `conn`; `out` gets the counts
   * of the other peers. A peer id owned by another connection is left alone.
   */
  announce(family: 0 | 1, infoHash: string, peerId: string, conn: ConnectionRef, seeder: boolean, event: number, now: number, out: WsCounts): WsAnnounceStatus {
    const map = this.families[family]
    let t = map.get(infoHash)
    const existing = t?.peers.get(peerId)
    if (existing && (existing.conn.worker !== conn.worker || existing.conn.id !== conn.id)) return WsAnnounceStatus.PeerIdTaken
    let status = WsAnnounceStatus.Ok
    if (event === 3) {
      if (existing && t) this.remove(map, infoHash, t, existing)
    } else if (existing) {
      if (event === 1 && !existing.seeder) {
        t!.completed++
        this.completedTotal++
      }
      if (existing.seeder !== seeder) t!.seeders += seeder ? 1 : -1
      existing.seeder = seeder
      existing.expires = now + this.limits.maxPeerAge
    } else {
      if (!t) {
        // Entries in both maps: a torrent with IPv4 and IPv6 peers counts twice (cheap and safe).
        if (this.families[0].size + this.families[1].size >= this.limits.maxTorrents) {
          this.refusedTorrentLimit++
          this.counts(infoHash, out)
          return WsAnnounceStatus.TorrentLimit
        }
        t = new Torrent()
        map.set(infoHash, t)
      }
      if (event === 1) {
        t.completed++
        this.completedTotal++
      }
      if (t.peers.size >= this.limits.maxPeersPerTorrent) {
        this.refusedPeerLimit++
        status = WsAnnounceStatus.PeerLimit
      } else {
        const peer = new WebTorrentPeer(peerId, conn, seeder, now + this.limits.maxPeerAge)
        peer.index = t.list.length
        t.list.push(peer)
        t.peers.set(peerId, peer)
        if (seeder) t.seeders++
      }
    }
    this.counts(infoHash, out)
    // The announcer is not counted.
    const self = event === 3 ? undefined : t?.peers.get(peerId)
    if (self) {
      if (self.seeder) out.complete--
      else out.incomplete--
    }
    return status
  }

  private remove(map: Map<string, Torrent>, infoHash: string, t: Torrent, peer: WebTorrentPeer): void {
    t.peers.delete(peer.peerId)
    const last = t.list.pop()!
    if (last !== peer) {
      t.list[peer.index] = last
      last.index = peer.index
    }
    if (peer.seeder) t.seeders--
    // A torrent with a completed count is kept until cleaning, like the other engine.
    if (t.peers.size === 0 && t.completed === 0) map.delete(infoHash)
  }

  /** Removes the peer if `conn` owns it (a closed connection's peers leave at once). */
  removePeer(family: 0 | 1, infoHash: string, peerId: string, conn: ConnectionRef): boolean {
    const map = this.families[family]
    const t = map.get(infoHash)
    const peer = t?.peers.get(peerId)
    if (!t || !peer || peer.conn.worker !== conn.worker || peer.conn.id !== conn.id) return false
    this.remove(map, infoHash, t, peer)
    return true
  }

  /**
   * Up to `n` distinct random other peers of the torrent in `family` to send offers to, and
   * records each (target, offer id) as expected by the offerer until `now + maxOfferAge`.
   */
  offerTargets(family: 0 | 1, infoHash: string, fromPeerId: string, offerIds: string[], now: number): WebTorrentPeer[] {
    const t = this.families[family].get(infoHash)
    const from = t?.peers.get(fromPeerId)
    if (!t || !from) return []
    const others = t.list.length - 1
    const n = Math.min(offerIds.length, others)
    const out: WebTorrentPeer[] = []
    if (n <= 0) return out
    // A random start and a stride coprime to the list length visit distinct peers.
    const len = t.list.length
    let p = Math.floor(this.random() * len)
    let stride = 1 + Math.floor(this.random() * (len - 1))
    while (gcd(stride, len) !== 1) stride = stride + 1 === len ? 1 : stride + 1
    while (out.length < n) {
      const peer = t.list[p]
      if (peer !== from) {
        from.expecting.set(peer.peerId + offerIds[out.length], now + this.limits.maxOfferAge)
        out.push(peer)
      }
      p = (p + stride) % len
    }
    return out
  }

  /** The offerer an answer goes to, if it is waiting for it (the expectation is used up). */
  answerTarget(family: 0 | 1, infoHash: string, fromPeerId: string, toPeerId: string, offerId: string, now: number): WebTorrentPeer | AnswerStatus {
    const target = this.families[family].get(infoHash)?.peers.get(toPeerId)
    if (!target) return AnswerStatus.NoPeer
    const key = fromPeerId + offerId
    const until = target.expecting.get(key)
    if (until === undefined || until < now) return AnswerStatus.NoOffer
    target.expecting.delete(key)
    return target
  }

  scrape(infoHash: string, out: WsCounts): WsCounts {
    return this.counts(infoHash, out)
  }

  private readonly scratch: WsCounts = {complete: 0, incomplete: 0, downloaded: 0}

  /** Scrape by the 20 bytes at b[o..o+20], into the byte-keyed engine's ScrapeCounts shape. */
  scrapeBytes(b: Uint8Array, o: number, out: {seeders: number; leechers: number; completed: number}): void {
    const c = this.counts(String.fromCharCode(...b.subarray(o, o + 20)), this.scratch)
    out.seeders = c.complete
    out.leechers = c.incomplete
    out.completed = c.downloaded
  }

  /** Every torrent with peers: (info hash, seeders, leechers, completed), both families summed. */
  forEachTorrent(fn: (infoHash: string, complete: number, incomplete: number, downloaded: number) => void): void {
    const seen = new Set<string>()
    for (const map of this.families) {
      for (const [infoHash, t] of map) {
        if (seen.has(infoHash) || t.peers.size === 0) continue
        seen.add(infoHash)
        const c = this.counts(infoHash, this.scratch)
        fn(infoHash, c.complete, c.incomplete, c.downloaded)
      }
    }
  }

  /** Expires peers and offers; frees empty torrents and those `isAllowed` refuses. */
  clean(now: number, isAllowed?: (infoHash: string) => boolean): void {
    for (const map of this.families) {
      for (const [infoHash, t] of map) {
        if (isAllowed && !isAllowed(infoHash)) {
          map.delete(infoHash)
          continue
        }
        for (let i = t.list.length - 1; i >= 0; i--) {
          const peer = t.list[i]
          if (peer.expires < now) {
            this.peersExpired++
            this.remove(map, infoHash, t, peer)
            continue
          }
          for (const [key, until] of peer.expecting) {
            if (until < now) {
              peer.expecting.delete(key)
              this.offersExpired++
            }
          }
        }
        if (t.peers.size === 0) map.delete(infoHash)
      }
    }
  }

  /** Distinct torrents (for metrics: walks the IPv6 map). */
  torrentCount(): number {
    let n = this.families[0].size
    for (const k of this.families[1].keys()) if (!this.families[0].has(k)) n++
    return n
  }

  peerCount(family: 0 | 1): number {
    let n = 0
    for (const t of this.families[family].values()) n += t.peers.size
    return n
  }

  seederCount(): number {
    let n = 0
    for (const map of this.families) for (const t of map.values()) n += t.seeders
    return n
  }

  /** Engine-side figures for the metrics (see SwarmGauges). */
  gauges(): {torrents(): number; peers(v: 0 | 1): number; seeders(): number; leechers(): number; completed(): number; peersExpired(): number; refusals(): Record<string, number>} {
    return {
      torrents: () => this.torrentCount(),
      peers: v => this.peerCount(v),
      seeders: () => this.seederCount(),
      leechers: () => this.peerCount(0) + this.peerCount(1) - this.seederCount(),
      completed: () => this.completedTotal,
      peersExpired: () => this.peersExpired,
      refusals: () => ({torrent_limit: this.refusedTorrentLimit, peer_limit: this.refusedPeerLimit}),
    }
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}
