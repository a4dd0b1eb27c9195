/**
 * What a WebTorrent message means: announces (with their offers and answers) and scrapes against
 * the swarm, and the messages they make, sent to connections on any worker. Announces for
 * torrents another worker owns, and messages for its connections, go through forwarding.ts.
 */
import type {WsConfig} from '../../config/index.js'
import type {TrafficStats} from '../../metrics/index.js'
import {MESSAGE} from '../../protocol/messages.js'
import {
  failureMessage,
  MessageError,
  MessageWriter,
  parseWsMessage,
  peekAction,
  scrapeResponse,
  writeAnnounceResponse,
  writeRelay,
  WS_EVENT_NONE,
  WS_EVENT_STOPPED,
  type WsAnnounce,
  type WsRequest,
} from '../../protocol/ws/index.js'
import {AnswerStatus, type ConnectionRef, type WebTorrentPeerRef, type WebTorrentBackend, WsAnnounceStatus, type WsCounts} from '../../swarm/index.js'
import type {FullScrape} from '../full-scrape.js'
import type {WorkerContext} from '../runtime/worker-api.js'
import type {ScrapeRouter} from '../scrape-router.js'
import type {WorkerClock} from '../shard.js'
import {WsForwarding} from './forwarding.js'
import {DROP, REFUSED, REQ, RES} from './stats.js'
import {peerIdOf, type WsConnection, type WsMessageHandler, WsTransport} from './transport.js'

export const NO_OFFER_MESSAGE = 'Could not find the offer corresponding to your answer. It may have expired.'

export class WsHandler implements WsMessageHandler {
  readonly transport: WsTransport
  /** Announces for other workers' torrents and messages for their connections; null with one worker. */
  readonly forwarding: WsForwarding | null
  private readonly cfg: WsConfig
  /** Outgoing messages are built here, then copied into their connection's frames. */
  private readonly writer = new MessageWriter()
  private readonly hashScratch = Buffer.alloc(20)
  private readonly counts: WsCounts = {complete: 0, incomplete: 0, downloaded: 0}

  constructor(
    private readonly ctx: WorkerContext<WsConfig>,
    private readonly stats: TrafficStats,
    private readonly clock: WorkerClock,
    readonly swarm: WebTorrentBackend,
    private readonly scrapes: ScrapeRouter,
    private readonly fullScrape: FullScrape | null,
  ) {
    this.cfg = ctx.config
    this.transport = new WsTransport(ctx, stats, clock, this)
    this.forwarding = ctx.mesh ? new WsForwarding(ctx.mesh, ctx.config, this) : null
  }

  message(conn: WsConnection, data: Buffer): void {
    if (data.length > this.cfg.network.max_message_size) {
      this.stats.refusals[REFUSED.message_too_large]++
      // Only the start is read: enough to name the action.
      this.fail(conn, `Message too large: ${data.length} bytes, the limit is ${this.cfg.network.max_message_size}`, peekAction(data))
      return
    }
    let req: WsRequest
    try {
      req = parseWsMessage(data, this.cfg.protocol.max_offers, this.cfg.protocol.max_scrape_torrents)
    } catch (error) {
      if (!(error instanceof MessageError)) throw error
      this.stats.refusals[REFUSED.invalid_request]++
      this.fail(conn, error.message, peekAction(data))
      return
    }
    conn.lastActive = this.clock.nowMs
    if (req.action === 'scrape') {
      this.scrape(conn, req.infoHashes)
      return
    }
    this.stats.requests[conn.family][REQ.announce]++
    if (req.offersTruncated) {
      this.stats.refusals[REFUSED.too_many_offers]++
      this.fail(conn, `Too many offers: at most ${this.cfg.protocol.max_offers} per announce`, 'announce', req.infoHash)
      return
    }
    this.hashScratch.write(req.infoHash, 0, 20, 'latin1')
    if (!this.ctx.accessList.allows(this.hashScratch, 0)) {
      this.stats.refusals[REFUSED.access_list]++
      this.fail(conn, MESSAGE.infoHashNotAllowed, 'announce', req.infoHash)
      return
    }
    const previous = conn.announced.get(req.infoHash)
    if (previous !== undefined && peerIdOf(previous) !== req.peerId) {
      this.stats.refusals[REFUSED.peer_id]++
      this.fail(conn, 'Only one peer id can be used per torrent on a connection', 'announce', req.infoHash)
      return
    }
    const maxTorrents = this.cfg.limits.max_torrents_per_connection
    if (previous === undefined && req.event !== WS_EVENT_STOPPED && conn.announced.size >= maxTorrents) {
      this.stats.refusals[REFUSED.torrents_per_connection]++
      this.fail(conn, `Too many torrents on one connection: at most ${maxTorrents}`, 'announce', req.infoHash)
      return
    }
    const owner = typeof previous === 'object' ? this.ctx.index : this.ownerOf(req.infoHash)
    if (owner === this.ctx.index) {
      this.announce(conn.ref, conn.family, req, data, previous as WebTorrentPeerRef | undefined)
      if (req.event === WS_EVENT_STOPPED) conn.announced.delete(req.infoHash)
      else {
        const self = this.swarm.announced
        if (self !== previous) conn.announced.set(req.infoHash, self ?? req.peerId)
      }
      return
    }
    // A link too full to take it: the announce did not happen (the mesh counts the drop).
    this.stats.forwarded[0]++
    if (!this.forwarding!.request(owner, conn, data)) {
      this.fail(conn, MESSAGE.busy, 'announce', req.infoHash)
      return
    }
    if (req.event === WS_EVENT_STOPPED) conn.announced.delete(req.infoHash)
    else if (previous === undefined) conn.announced.set(req.infoHash, req.peerId)
  }

  /**
   * Runs an announce on this worker's shard; `from` is the announcing connection, on any worker,
   * and `bytes` the message the announce was parsed from (its SDP is relayed from there).
   */
  announce(from: ConnectionRef, family: 0 | 1, req: WsAnnounce, bytes: Uint8Array, known?: WebTorrentPeerRef): void {
    const c = this.counts
    const status = this.swarm.announce(family, req.infoHash, req.peerId, from, req.left < 0 ? undefined : req.left === 0, req.event, this.clock.now, c, known)
    if (status === WsAnnounceStatus.PeerIdTaken) {
      this.stats.refusals[REFUSED.peer_id]++
      this.deliver(from, failureMessage('Peer id is in use by another connection', 'announce', req.infoHash), RES.error)
      return
    }
    if (status === WsAnnounceStatus.TorrentLimit) {
      this.deliver(from, failureMessage(MESSAGE.torrentLimit, 'announce', req.infoHash), RES.error)
      return
    }
    // An announce that only carries an answer gets no response (as bittorrent-tracker does, and
    // its client expects none): it saves a message per relayed offer.
    const w = this.writer
    if (req.answerStart < 0 || req.offers.length > 0 || req.event !== WS_EVENT_NONE) {
      this.deliver(from, writeAnnounceResponse(w, req.infoHash, c.complete, c.incomplete, this.cfg.protocol.peer_announce_interval), RES.announce)
    }
    if (req.event === WS_EVENT_STOPPED) return
    const self = this.swarm.announced
    if (req.offers.length > 0 && self !== undefined) {
      const targets = this.swarm.offerTargets(self, req.offers, this.clock.now)
      for (let i = 0; i < targets.length; i++) {
        const o = req.offers[i]
        this.deliver(targets[i].conn, writeRelay(w, 'offer', req.infoHash, req.peerId, o.offerId, bytes, o.start, o.end), RES.offer)
      }
    }
    if (req.answerStart >= 0) {
      const target = this.swarm.answerTarget(req.peerId, req.toPeerId!, req.offerId!, this.clock.now)
      if (target === AnswerStatus.NoPeer) {
        this.stats.drops[DROP.answer_target_gone]++
      } else if (target === AnswerStatus.NoOffer) {
        this.stats.refusals[REFUSED.no_offer]++
        this.deliver(from, failureMessage(NO_OFFER_MESSAGE, 'announce', req.infoHash), RES.error)
      } else {
        this.deliver(target.conn, writeRelay(w, 'answer', req.infoHash, req.peerId, req.offerId!, bytes, req.answerStart, req.answerEnd), RES.answer)
      }
    }
  }

  private scrape(conn: WsConnection, infoHashes: string[]): void {
    if (infoHashes.length === 0) {
      this.stats.requests[conn.family][REQ.full_scrape]++
      if (!this.fullScrape) {
        this.stats.refusals[REFUSED.full_scrape]++
        this.fail(conn, MESSAGE.fullScrape, 'scrape')
        return
      }
      const body = this.fullScrape.reply()
      this.transport.sendBytes(conn, body, 0, body.length, RES.full_scrape)
      return
    }
    this.stats.requests[conn.family][REQ.scrape]++
    const unique = [...new Set(infoHashes)]
    const hashes = Buffer.from(unique.join(''), 'latin1')
    this.scrapes.scrape(hashes, 0, unique.length, counts => {
      if (!counts) return this.fail(conn, MESSAGE.busy, 'scrape')
      const entries = unique.map((infoHash, i) => ({infoHash, complete: counts[3 * i], downloaded: counts[3 * i + 1], incomplete: counts[3 * i + 2]}))
      this.transport.send(conn, scrapeResponse(entries), RES.scrape)
    })
  }

  closed(conn: WsConnection): void {
    // The connection's peers leave their swarms at once.
    for (const [infoHash, peer] of conn.announced) {
      const peerId = peerIdOf(peer)
      const owner = typeof peer === 'string' ? this.ownerOf(infoHash) : this.ctx.index
      if (owner === this.ctx.index) {
        this.swarm.removePeer(conn.family, infoHash, peerId, conn.ref)
      } else {
        this.forwarding!.remove(owner, conn, infoHash, peerId)
      }
    }
  }

  private ownerOf(infoHash: string): number {
    if (!this.ctx.mesh) return this.ctx.index
    this.hashScratch.write(infoHash, 0, 20, 'latin1')
    return this.ctx.ownerOf(this.hashScratch, 0)
  }

  /** Sends the message in `this.writer`, or a text, to a connection on any worker. */
  private deliver(ref: ConnectionRef, msg: MessageWriter | string, type: number): void {
    if (ref.worker === this.ctx.index) {
      const conn = this.transport.connections.get(ref.id)
      if (!conn) return
      if (typeof msg === 'string') this.transport.send(conn, msg, type)
      else this.transport.sendBytes(conn, msg.buf, 0, msg.length, type)
      return
    }
    this.forwarding!.deliver(ref, msg, type)
  }

  private fail(conn: WsConnection, reason: string, action?: string, infoHash?: string): void {
    this.transport.send(conn, failureMessage(reason, action, infoHash), RES.error)
  }

  /** Expires peers and offers, and drops torrents the access list no longer allows. */
  clean(): void {
    const list = this.ctx.accessList
    this.swarm.clean(
      this.clock.now,
      list.mode === 'off'
        ? undefined
        : infoHash => {
            this.hashScratch.write(infoHash, 0, 20, 'latin1')
            return list.allows(this.hashScratch, 0)
          },
    )
  }
}
