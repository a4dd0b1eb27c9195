import type {SwarmGauges} from './backend.js'
import {
  AnswerStatus,
  type ConnectionRef,
  type WebTorrentBackend,
  type WebTorrentPeerRef,
  type WebTorrentLimits,
  WsAnnounceStatus,
  type WsCounts,
} from './webtorrent-backend.js'

/**
 * The in-memory WebTorrent swarm (see WebTorrentBackend for what it guarantees): peers keyed by
 * peer id and owned by one connection, and the offers each peer is waiting to have answered.
 * Pure: no sockets, no timers; times are seconds passed in.
 */

export class WebTorrentPeer implements WebTorrentPeerRef {
  /** Position in the torrent's peer list (for random choice and O(1) removal); -1 once removed. */
  index = 0

  constructor(
    readonly peerId: string,
    readonly conn: ConnectionRef,
    public seeder: boolean,
    public expires: number,
    /** Its torrent while it is in it; a removed peer points to an empty one (whoever still holds it does not keep the torrent alive). */
    public torrent: Torrent,
  ) {}
}

/** An offer relayed to `targetId` on behalf of `offerer`, waiting for its answer until `expires`. */
class PendingOffer {
  constructor(
    readonly offerer: WebTorrentPeer,
    readonly targetId: string,
    readonly expires: number,
  ) {}
}

class Torrent {
  readonly peers = new Map<string, WebTorrentPeer>()
  readonly list: WebTorrentPeer[] = []
  /**
   * Offers relayed in this torrent and not answered yet, by offer id: one map per torrent rather
   * than one per peer (a map per peer cost memory and a key concatenation per offer). Offer ids are
   * the offerers' random 20 bytes; a reused id replaces the older offer, and only the peer the
   * older one was sent to can know it.
   */
  readonly offers = new Map<string, PendingOffer>()
  seeders = 0
  completed = 0
}

/** The torrent of removed peers: never in a map, never holding peers. */
const DETACHED = new Torrent()

/** One number per connection: worker index and connection id. */
function connectionKey(conn: ConnectionRef): number {
  return conn.id * 1024 + conn.worker
}

/** Two IP-version maps of torrents; counts cover both, offers stay within the announcer's. */
export class WebTorrentSwarm implements WebTorrentBackend {
  private readonly families: [Map<string, Torrent>, Map<string, Torrent>] = [new Map(), new Map()]
  refusedTorrentLimit = 0
  refusedPeerLimit = 0
  peersExpired = 0
  completedTotal = 0
  offersExpired = 0
  /** Offers not relayed because a pending-offer cap was reached. */
  refusedOfferLimit = 0
  /** Offers awaiting an answer, by offering connection (connectionKey); no entry at 0. */
  private readonly pendingByConnection = new Map<number, number>()
  private pendingTotal = 0

  constructor(
    readonly limits: WebTorrentLimits,
    private random: () => number = Math.random,
  ) {}

  /** The peer the last `announce` stored or updated (undefined when it stored none): its offers go out next. */
  announced: WebTorrentPeer | undefined = undefined
  /** The torrent of the last `announce` (an answer it carries is looked up there). */
  private announcedTorrent: Torrent | undefined = undefined

  private counts(infoHash: string, out: WsCounts): WsCounts {
    out.complete = out.incomplete = out.downloaded = 0
    for (const map of this.families) {
      const t = map.get(infoHash)
      if (t) addCounts(t, out)
    }
    return out
  }

  /**
   * Adds, updates or (event stopped) removes the peer `peerId` of `conn`; `out` gets the counts
   * of the other peers. A peer id owned by another connection is left alone. `known` is the
   * peer this connection announced in this torrent before, when the caller kept it: a live one
   * spares the lookups.
   */
  announce(
    family: 0 | 1,
    infoHash: string,
    peerId: string,
    conn: ConnectionRef,
    seeder: boolean | undefined,
    event: number,
    now: number,
    out: WsCounts,
    known?: WebTorrentPeer,
  ): WsAnnounceStatus {
    const map = this.families[family]
    let t: Torrent | undefined
    let existing: WebTorrentPeer | undefined
    if (known !== undefined && known.index >= 0 && known.peerId === peerId) {
      existing = known
      t = known.torrent
    } else {
      t = map.get(infoHash)
      existing = t === undefined ? undefined : t.peers.get(peerId)
    }
    this.announced = undefined
    this.announcedTorrent = t
    if (existing && (existing.conn.worker !== conn.worker || existing.conn.id !== conn.id)) return WsAnnounceStatus.PeerIdTaken
    let status = WsAnnounceStatus.Ok
    let self: WebTorrentPeer | undefined
    if (event === 3) {
      if (existing) this.remove(map, infoHash, existing)
    } else if (existing) {
      if (event === 1 && !existing.seeder) {
        existing.torrent.completed++
        this.completedTotal++
      }
      if (seeder !== undefined && existing.seeder !== seeder) {
        existing.torrent.seeders += seeder ? 1 : -1
        existing.seeder = seeder
      }
      existing.expires = now + this.limits.maxPeerAge
      self = existing
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
        this.announcedTorrent = t
      }
      if (event === 1) {
        t.completed++
        this.completedTotal++
      }
      if (t.peers.size >= this.limits.maxPeersPerTorrent) {
        this.refusedPeerLimit++
        status = WsAnnounceStatus.PeerLimit
      } else {
        self = new WebTorrentPeer(peerId, conn, seeder === true, now + this.limits.maxPeerAge, t)
        self.index = t.list.length
        t.list.push(self)
        t.peers.set(peerId, self)
        if (seeder) t.seeders++
      }
    }
    // This family's torrent is at hand; the other family's map is only read when it has torrents.
    out.complete = out.incomplete = out.downloaded = 0
    if (t !== undefined) addCounts(t, out)
    const other = this.families[family ^ 1]
    if (other.size !== 0) {
      const o = other.get(infoHash)
      if (o) addCounts(o, out)
    }
    // The announcer is not counted.
    if (self) {
      if (self.seeder) out.complete--
      else out.incomplete--
    }
    this.announced = self
    return status
  }

  private remove(map: Map<string, Torrent>, infoHash: string, peer: WebTorrentPeer): void {
    const t = peer.torrent
    t.peers.delete(peer.peerId)
    const last = t.list.pop()!
    if (last !== peer) {
      t.list[peer.index] = last
      last.index = peer.index
    }
    peer.index = -1
    peer.torrent = DETACHED
    if (peer.seeder) t.seeders--
    // A torrent with a completed count is kept until cleaning, like the other engine.
    if (t.peers.size === 0 && t.completed === 0) this.dropTorrent(map, infoHash, t)
  }

  /** Removes a torrent; its pending offers give their slots back. */
  private dropTorrent(map: Map<string, Torrent>, infoHash: string, t: Torrent): void {
    for (const offer of t.offers.values()) this.released(offer)
    t.offers.clear()
    map.delete(infoHash)
  }

  /** An offer left its torrent's map (answered, replaced, expired or dropped with its torrent). */
  private released(offer: PendingOffer): void {
    const key = connectionKey(offer.offerer.conn)
    const n = this.pendingByConnection.get(key)! - 1
    if (n === 0) this.pendingByConnection.delete(key)
    else this.pendingByConnection.set(key, n)
    this.pendingTotal--
  }

  /** Offers awaiting an answer: all of them, or those of one connection. */
  pendingOffers(conn?: ConnectionRef): number {
    return conn === undefined ? this.pendingTotal : (this.pendingByConnection.get(connectionKey(conn)) ?? 0)
  }

  /** Removes the peer if `conn` owns it (a closed connection's peers leave at once). */
  removePeer(family: 0 | 1, infoHash: string, peerId: string, conn: ConnectionRef): boolean {
    const map = this.families[family]
    const peer = map.get(infoHash)?.peers.get(peerId)
    if (!peer || peer.conn.worker !== conn.worker || peer.conn.id !== conn.id) return false
    this.remove(map, infoHash, peer)
    return true
  }

  /**
   * Up to one distinct random other peer of `from`'s torrent per offer (same IP family), each
   * recorded as awaiting that offer's answer until `now + maxOfferAge`: targets[i] is the peer of
   * offers[i]. Past a pending-offer cap (of `from`'s connection or of the torrent), the remaining
   * offers get no target (counted). `from` is the peer an announce just stored (`announced`).
   */
  offerTargets(from: WebTorrentPeer, offers: readonly {offerId: string}[], now: number): WebTorrentPeer[] {
    const t = from.torrent
    const out: WebTorrentPeer[] = []
    if (from.index < 0) return out
    const len = t.list.length
    let n = Math.min(offers.length, len - 1)
    if (n <= 0) return out
    const key = connectionKey(from.conn)
    const mine = this.pendingByConnection.get(key) ?? 0
    // Replacing an offer id already pending would free a slot; not worth a lookup per offer here.
    const room = Math.min(this.limits.maxPendingOffersPerConnection - mine, this.limits.maxPendingOffersPerTorrent - t.offers.size)
    if (room < n) {
      this.refusedOfferLimit += n - Math.max(room, 0)
      n = Math.max(room, 0)
      if (n === 0) return out
    }
    // A random start and a stride coprime to the list length visit distinct peers.
    let p = Math.floor(this.random() * len)
    let stride = 1 + Math.floor(this.random() * (len - 1))
    while (gcd(stride, len) !== 1) stride = stride + 1 === len ? 1 : stride + 1
    const expires = now + this.limits.maxOfferAge
    while (out.length < n) {
      const peer = t.list[p]
      if (peer !== from) {
        const offerId = offers[out.length].offerId
        // A reused id (even within this announce) replaces the pending offer, which gives its slot back.
        const replaced = t.offers.get(offerId)
        if (replaced !== undefined) this.released(replaced)
        t.offers.set(offerId, new PendingOffer(from, peer.peerId, expires))
        this.pendingByConnection.set(key, (this.pendingByConnection.get(key) ?? 0) + 1)
        this.pendingTotal++
        out.push(peer)
      }
      p = (p + stride) % len
    }
    return out
  }

  /**
   * The offerer an answer carried by the announce just made goes to, if it is waiting for it (the
   * offer is used up).
   */
  answerTarget(fromPeerId: string, toPeerId: string, offerId: string, now: number): WebTorrentPeer | AnswerStatus {
    const t = this.announcedTorrent
    if (t === undefined) return AnswerStatus.NoPeer
    const offer = t.offers.get(offerId)
    if (offer !== undefined && offer.targetId === fromPeerId && offer.offerer.peerId === toPeerId) {
      t.offers.delete(offerId)
      this.released(offer)
      if (offer.offerer.index < 0) return AnswerStatus.NoPeer
      if (offer.expires >= now) return offer.offerer
    }
    return t.peers.has(toPeerId) ? AnswerStatus.NoOffer : AnswerStatus.NoPeer
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
          // Its peers are gone too (a caller holding one sees it by its index).
          for (const peer of t.list) {
            peer.index = -1
            peer.torrent = DETACHED
          }
          this.dropTorrent(map, infoHash, t)
          continue
        }
        for (let i = t.list.length - 1; i >= 0; i--) {
          const peer = t.list[i]
          if (peer.expires < now) {
            this.peersExpired++
            this.remove(map, infoHash, peer)
          }
        }
        for (const [offerId, offer] of t.offers) {
          if (offer.expires < now) {
            t.offers.delete(offerId)
            this.released(offer)
            this.offersExpired++
          }
        }
        if (t.peers.size === 0 && map.get(infoHash) === t) this.dropTorrent(map, infoHash, t)
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

  gauges(): SwarmGauges {
    return {
      torrents: () => this.torrentCount(),
      peers: v => this.peerCount(v),
      seeders: () => this.seederCount(),
      leechers: () => this.peerCount(0) + this.peerCount(1) - this.seederCount(),
      completed: () => this.completedTotal,
      peersExpired: () => this.peersExpired,
      refusals: () => ({torrent_limit: this.refusedTorrentLimit, peer_limit: this.refusedPeerLimit, offer_limit: this.refusedOfferLimit}),
    }
  }
}

function addCounts(t: Torrent, out: WsCounts): void {
  out.complete += t.seeders
  out.incomplete += t.peers.size - t.seeders
  out.downloaded += t.completed
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}
