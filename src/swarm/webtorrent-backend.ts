import type {SwarmGauges} from './backend.js'

/**
 * What the WebTorrent server may ask of a swarm: the contract a backend implements (the
 * in-memory `WebTorrentSwarm` today), and the values that cross it.
 *
 * Binary fields (info hash, peer id, offer id) are 20-character strings, one char per byte, as
 * WebTorrent sends them.
 */

/** Where a peer's connection lives: worker index and connection number on that worker. */
export interface ConnectionRef {
  worker: number
  id: number
}

/** A peer as the swarm hands it out: who it is and where its connection lives. */
export interface WebTorrentPeerRef {
  readonly peerId: string
  readonly conn: ConnectionRef
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
  /** Offers awaiting an answer from one connection, in this swarm (one shard). */
  maxPendingOffersPerConnection: number
  maxPendingOffersPerTorrent: number
}

export interface WsCounts {
  /** Other peers (the announcer excluded), both IP families. */
  complete: number
  incomplete: number
  downloaded: number
}

/**
 * A WebTorrent swarm as the WebSocket server reaches it (one per worker: its shard). Peers are
 * keyed by peer id within a torrent and owned by one connection; offers a peer relayed wait in
 * the swarm for their answer.
 *
 * What a backend must guarantee:
 * - Synchronous: every call has done its work when it returns; counts go into the caller-owned
 *   `WsCounts` it was given, which it does not keep. `announced` and the torrent an answer is
 *   looked up in are those of the last `announce` (the server reads them before the next one).
 * - No allocation for an announce of a stored peer that carries no offer (the common case);
 *   a new peer, an offer and the target list `offerTargets` returns may allocate.
 * - Counts: an announce's counts are of the other peers (the announcer excluded, whether or not
 *   it was stored); a scrape counts everyone. Both cover the two IP families; offers go only to
 *   peers of the announcer's family, one distinct peer per offer, never the announcer.
 * - Ownership: a peer id held by another connection is left alone (`PeerIdTaken`); only the
 *   owning connection's requests change or remove its peer (expiry and the access list aside). A peer handle (`WebTorrentPeerRef`) is only ever passed
 *   back to the swarm that handed it out.
 * - Limits: as `WebTorrentLimits` says; offers past a pending-offer cap get no target (counted
 *   in the `offer_limit` refusal). An answer is relayed once, and only to the offerer that is
 *   waiting for it, until `maxOfferAge` after the offer.
 * - Time is what the caller passes (`now`, whole seconds): no clock, no timer of its own.
 *
 * An asynchronous backend (a network store) would need what SwarmBackend's note says, and more:
 * offers and answers cross machines, so the owner of a target connection must be reachable from
 * the node that holds the swarm (a relay channel per node, not the in-process mesh), `announced`
 * becomes part of an announce's completion rather than state read after the call, and peer
 * handles become (peer id, connection) values rather than object references.
 */
export interface WebTorrentBackend {
  /**
   * Adds, updates or (event 3, stopped) removes the peer `peerId` of `conn` in `infoHash`'s
   * torrent of IP family `family` (0 IPv4, 1 IPv6); `out` gets the counts of the other peers.
   * `known` is the peer this connection announced in this torrent before, when the caller kept
   * it: a live one spares the lookups. `seeder` undefined (the announce did not say how much is
   * left: an answer-only announce, a magnet link without the size) leaves a known peer as it was;
   * a new one is a leecher.
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
    known?: WebTorrentPeerRef,
  ): WsAnnounceStatus
  /** The peer the last `announce` stored or updated (undefined when it stored none): its offers go out next. */
  readonly announced: WebTorrentPeerRef | undefined
  /** Removes the peer if `conn` owns it (a closed connection's peers leave at once). */
  removePeer(family: 0 | 1, infoHash: string, peerId: string, conn: ConnectionRef): boolean
  /**
   * Up to one distinct random other peer of `from`'s torrent per offer, each recorded as awaiting
   * that offer's answer until `now + maxOfferAge`: the result's entry i is the peer of offers[i].
   * `from` is the peer an announce just stored (`announced`).
   */
  offerTargets(from: WebTorrentPeerRef, offers: readonly {offerId: string}[], now: number): readonly WebTorrentPeerRef[]
  /**
   * The offerer an answer carried by the announce just made goes to, if it is waiting for it (the
   * offer is used up).
   */
  answerTarget(fromPeerId: string, toPeerId: string, offerId: string, now: number): WebTorrentPeerRef | AnswerStatus
  /** Counts of everyone in `infoHash`'s torrent (both families) into `out`. */
  scrape(infoHash: string, out: WsCounts): WsCounts
  /** Scrape by the 20 bytes at b[o..o+20], into the compact engine's ScrapeCounts shape. */
  scrapeBytes(b: Uint8Array, o: number, out: {seeders: number; leechers: number; completed: number}): void
  /** Every torrent with peers: (info hash, seeders, leechers, completed), both families summed. */
  forEachTorrent(fn: (infoHash: string, complete: number, incomplete: number, downloaded: number) => void): void
  /** Expires peers and offers; frees empty torrents and those `isAllowed` refuses. */
  clean(now: number, isAllowed?: (infoHash: string) => boolean): void
  /** Figures for the metrics module (called once, at registration); refusals include offer_limit. */
  gauges(): SwarmGauges
}
