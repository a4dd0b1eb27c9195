import {randomFillSync} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type {Socket} from 'node:net'
import type {Duplex} from 'node:stream'
import type {WsConfig} from '../../config/index.js'
import {TrafficStats, registerWorkerMetrics} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import {MESSAGE} from '../../protocol/messages.js'
import {
  failureMessage,
  jsonBinary,
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
} from '../../protocol/ws/message.js'
import {AnswerStatus, WebTorrentSwarm, WsAnnounceStatus, type ConnectionRef, type WebTorrentPeer, type WsCounts} from '../../swarm/index.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {connectionCap} from '../fd-limit.js'
import {ScrapeRouter} from '../scrape-router.js'
import {
  FRAME,
  scrapeRequestBytes,
  WS_MESSAGE_HEAD,
  WsDeliverFrame,
  WsRemoveFrame,
  WsRequestFrame,
  writeWsDeliver,
  writeWsDeliverText,
  writeWsRemove,
  writeWsRequest,
} from '../frames.js'
import {FullScrape, type FullScrapeFormat} from '../full-scrape.js'
import {WorkerClock} from '../shard.js'
import type {TlsMaterial} from '../tls.js'
import {listenTcp} from '../listen.js'
import {acceptHandshake, refuse, WsSocket, type WsSocketHandler} from './socket.js'
import {CLOSE_NORMAL} from '../../protocol/ws/frame.js'
import {FlushQueue} from '../../io/flush-queue.js'
import {NativeTcp, StreamLink, type TcpLink as WsLink} from '../../io/tcp.js'
import {Handshakes, serverTimers} from './handshakes.js'

const REQUEST_TYPES = ['announce', 'scrape', 'full_scrape'] as const
const RESPONSE_TYPES = ['announce', 'scrape', 'full_scrape', 'offer', 'answer', 'error'] as const
const REQ_ANNOUNCE = 0
const REQ_SCRAPE = 1
const REQ_FULL_SCRAPE = 2
const RES_ANNOUNCE = 0
const RES_SCRAPE = 1
const RES_FULL_SCRAPE = 2
const RES_OFFER = 3
const RES_ANSWER = 4
const RES_ERROR = 5
/** Connections closed and messages not delivered, by reason. */
const DROP_REASONS = [
  'idle_timeout',
  'ping_timeout',
  'send_timeout',
  'slow_consumer',
  'max_connections',
  'answer_target_gone',
  'tls_error',
  'tls_handshake_timeout',
  'request_timeout',
  'handshake_evicted',
] as const
const DROP_IDLE = 0
const DROP_PING = 1
const DROP_SEND_TIMEOUT = 2
const DROP_SLOW = 3
const DROP_MAX_CONNECTIONS = 4
const DROP_TARGET_GONE = 5
const DROP_TLS_ERROR = 6
const DROP_TLS_TIMEOUT = 7
const DROP_REQUEST_TIMEOUT = 8
const DROP_EVICTED = 9
/** Indexed by HandshakeDrop. */
const DROP_HANDSHAKE = [DROP_TLS_ERROR, DROP_TLS_TIMEOUT, DROP_REQUEST_TIMEOUT, DROP_EVICTED]
const REFUSAL_REASONS = [
  'access_list',
  'invalid_request',
  'message_too_large',
  'full_scrape',
  'peer_id',
  'no_offer',
  'too_many_offers',
  'torrents_per_connection',
] as const
const REFUSED_ACCESS = 0
const REFUSED_INVALID = 1
const REFUSED_TOO_LARGE = 2
const REFUSED_FULL_SCRAPE = 3
const REFUSED_PEER_ID = 4
const REFUSED_NO_OFFER = 5
const REFUSED_TOO_MANY_OFFERS = 6
const REFUSED_TORRENTS_PER_CONNECTION = 7

/** The WebSocket layer closes (1009) a connection that sends more than this many times the limit. */
const HARD_LIMIT_FACTOR = 4

/** What a relayed message adds to the bytes it carries: its ids, escaped, and the keys around them. */
const RELAY_OVERHEAD = 1024

/** Bytes of the token each ping carries; only a pong that echoes it answers the ping. */
const PING_TOKEN = 8

export const NO_OFFER_MESSAGE = 'Could not find the offer corresponding to your answer. It may have expired.'

/** A WebSocket and what the tracker knows of it. */
class WsConnection extends WsSocket {
  /**
   * Torrents this connection announced, with the peer it stored: one per torrent. The peer itself
   * when its torrent lives on this worker (the next announce needs no lookup), else its peer id.
   */
  readonly announced = new Map<string, WebTorrentPeer | string>()
  /** Where this connection lives, as the swarm records it for its peers. */
  readonly ref: ConnectionRef
  lastActive: number
  /** Pinged this round and not answered yet. */
  pongPending = false
  /** This round's ping token (PING_TOKEN random bytes, as two words). */
  token0 = 0
  token1 = 0
  /** Since when (ms) the outgoing queue has been over its bound; 0 when it is not. */
  overSince = 0

  constructor(
    worker: number,
    readonly id: number,
    readonly family: 0 | 1,
    now: number,
    link: WsLink,
    handler: WsSocketHandler,
    flushQueue: FlushQueue,
    maxPayload: number,
    maxBuffered: number,
  ) {
    super(link, handler, flushQueue, maxPayload, maxBuffered)
    this.lastActive = now
    this.ref = {worker, id}
  }
}

/** The peer id of an entry of `WsConnection.announced`. */
function peerIdOf(entry: WebTorrentPeer | string): string {
  return typeof entry === 'string' ? entry : entry.peerId
}

export function createWorker(ctx: WorkerContext<WsConfig>): ProtocolWorker {
  return new WsWorker(ctx)
}

export class WsWorker implements ProtocolWorker, WsSocketHandler {
  readonly stats = new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
  readonly swarm: WebTorrentSwarm
  private readonly cfg: WsConfig
  private readonly servers: (http.Server | https.Server)[] = []
  private readonly connections = new Map<number, WsConnection>()
  private readonly flushQueue = new FlushQueue()
  /** Outgoing messages are built here, then copied into their connection's frames. */
  private readonly writer = new MessageWriter()
  private nextId = 1
  private readonly scrapes: ScrapeRouter
  private readonly hashScratch = Buffer.alloc(20)
  private readonly counts: WsCounts = {complete: 0, incomplete: 0, downloaded: 0}
  private readonly ipScratch = new Uint8Array(16)
  private readonly clock: WorkerClock
  private timers: NodeJS.Timeout[] = []
  /** Batched I/O for plain ws:// connections; null for wss://, when off, or without the addon. */
  private readonly batched: NativeTcp | null
  private readonly fullScrape: FullScrape | null
  /** Frames to other workers are written here; the mesh copies them. */
  private frame: Buffer
  private readonly requestIn = new WsRequestFrame()
  private readonly deliverIn = new WsDeliverFrame()
  private readonly removeIn = new WsRemoveFrame()
  private readonly handshakes: Handshakes
  /** max_connections, as far as the open-file limit allows. */
  private readonly maxConnections: number
  /** Ping tokens of one round, PING_TOKEN bytes per connection. */
  private tokens = Buffer.alloc(0)

  constructor(private readonly ctx: WorkerContext<WsConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.swarm = new WebTorrentSwarm({
      maxTorrents: cfg.limits.max_torrents,
      maxPeersPerTorrent: cfg.limits.max_peers_per_torrent,
      maxPeerAge: cfg.cleaning.max_peer_age,
      maxOfferAge: cfg.cleaning.max_offer_age,
      maxPendingOffersPerConnection: cfg.limits.max_pending_offers_per_connection,
      maxPendingOffersPerTorrent: cfg.limits.max_pending_offers_per_torrent,
    })
    this.maxConnections = connectionCap(cfg.connections.max_connections, ctx.log, '[connections] max_connections')
    this.handshakes = new Handshakes(
      this.maxConnections,
      () => this.connections.size,
      reason => this.stats.drops[DROP_HANDSHAKE[reason]]++,
    )
    this.scrapes = new ScrapeRouter(ctx, {scrape: (b, o, out) => this.swarm.scrapeBytes(b, o, out)})
    this.fullScrape = cfg.protocol.enable_full_scrape ? new FullScrape(ctx, new JsonFullScrape(this.swarm), cfg.protocol.full_scrape_interval * 1000) : null
    this.frame = Buffer.allocUnsafe(WS_MESSAGE_HEAD + cfg.network.max_message_size + RELAY_OVERHEAD)
    this.clock = new WorkerClock(ctx.epochMs)
    this.batched = cfg.network.batched_io && !ctx.tls ? NativeTcp.open(this.flushQueue) : null
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges(), () => this.connections.size)
    ctx.mesh?.onMessage((from, type, buf, offset, length) => this.onFrame(from, type, buf, offset, length))
    // The largest frames: a message as it came (an announce, or one relayed with its ids), a
    // scrape part, or (when on) a full-scrape chunk.
    ctx.mesh?.limitFrames(
      Math.max(
        WS_MESSAGE_HEAD + cfg.network.max_message_size + RELAY_OVERHEAD,
        scrapeRequestBytes(cfg.protocol.max_scrape_torrents),
        this.fullScrape?.maxFrame ?? 0,
      ),
    )
  }

  // -------------------------------------------------------------------------------------------
  // Sockets and connections

  async start(): Promise<Listener[]> {
    const c = this.cfg.connections
    this.timers.push(
      setInterval(() => {
        this.clock.tick()
        this.sweep()
      }, 1000),
    )
    this.timers.push(setInterval(() => this.ping(), c.ping_interval * 1000))
    this.fullScrape?.start()
    for (const t of this.timers) t.unref()
    const net = this.cfg.network
    const scheme = this.ctx.tls ? 'wss' : 'ws'
    const io = this.batched ? {io: 'batched I/O'} : {}
    const listening: Listener[] = []
    if (net.use_ipv4) listening.push(listenerAt(scheme, net.address_ipv4, await this.listen(net.address_ipv4, 4), io))
    if (net.use_ipv6) listening.push(listenerAt(scheme, net.address_ipv6, await this.listen(net.address_ipv6, 6), io))
    return listening
  }

  private listen(address: string, family: 4 | 6): Promise<number> {
    const material = this.ctx.tls
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => this.onHttpRequest(req, res)
    const timers = serverTimers(this.cfg.connections.handshake_timeout * 1000)
    const server = material ? https.createServer({cert: material.cert, key: material.key, ...timers}, onRequest) : http.createServer(timers, onRequest)
    this.handshakes.watch(server, material !== undefined)
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head))
    this.servers.push(server)
    const network = this.cfg.network
    return listenTcp(server, {
      address,
      family,
      backlog: network.tcp_backlog,
      ipv6Only: family === 6 && network.set_only_ipv6,
      workers: this.ctx.count,
      log: this.ctx.log,
      what: 'ws',
      ports: this.ctx.ports,
    })
  }

  setTls(material: TlsMaterial): void {
    for (const server of this.servers) (server as https.Server).setSecureContext?.({cert: material.cert, key: material.key})
  }

  private onHttpRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.cfg.network.enable_http_health_checks && req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, {'content-type': 'text/plain', 'content-length': 2})
      res.end('Ok')
      return
    }
    res.writeHead(426, {'content-type': 'text/plain', connection: 'close', upgrade: 'websocket'})
    res.end('This is a WebTorrent tracker: connect with a WebSocket.\n')
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Sockets are counted from accept (Handshakes); WebSockets are never closed to make room.
    if (this.connections.size >= this.maxConnections) {
      this.stats.drops[DROP_MAX_CONNECTIONS]++
      refuse(socket, '503 Service Unavailable', 'The tracker is at its connection limit; try again later.\n')
      return
    }
    if (!acceptHandshake(req, socket)) return
    this.handshakes.upgraded(socket)
    // The IP version of the TCP peer picks the swarm map (IPv4-mapped IPv6 is IPv4).
    const family: 0 | 1 = parseIpInto(req.socket.remoteAddress ?? '', this.ipScratch) === 6 ? 1 : 0
    const io = this.batched ? this.batched.adopt(socket as Socket, head) : {link: new StreamLink(socket), head}
    const id = this.nextId++ >>> 0
    const conn = new WsConnection(
      this.ctx.index,
      id,
      family,
      this.clock.nowMs,
      io.link,
      this,
      this.flushQueue,
      this.cfg.network.max_message_size * HARD_LIMIT_FACTOR,
      this.cfg.connections.max_buffered_bytes,
    )
    this.connections.set(id, conn)
    conn.start(io.head)
  }

  /** Only a pong that echoes this round's token answers the ping; others are allowed and ignored. */
  onPong(socket: WsSocket, payload: Buffer): void {
    const conn = socket as WsConnection
    if (payload.length === PING_TOKEN && payload.readUInt32LE(0) === conn.token0 && payload.readUInt32LE(4) === conn.token1) conn.pongPending = false
  }

  onBackpressure(socket: WsSocket, over: boolean): void {
    ;(socket as WsConnection).overSince = over ? this.clock.nowMs : 0
  }

  /** Once a second: close idle connections and those stuck behind a full queue. */
  private sweep(): void {
    const idleBefore = this.clock.nowMs - this.cfg.connections.max_connection_idle * 1000
    const stuckBefore = this.clock.nowMs - this.cfg.connections.send_timeout * 1000
    for (const conn of this.connections.values()) {
      if (conn.overSince !== 0 && conn.overSince < stuckBefore) {
        this.stats.drops[DROP_SEND_TIMEOUT]++
        conn.terminate()
        continue
      }
      if (conn.lastActive < idleBefore && conn.open) {
        this.stats.drops[DROP_IDLE]++
        conn.close(CLOSE_NORMAL, 'idle')
        // A client that does not answer the close is cut off by the next ping round.
      }
    }
  }

  private ping(): void {
    // Random tokens, one per connection: a peer that does not read our pings cannot answer them.
    const size = PING_TOKEN * this.connections.size
    if (this.tokens.length < size) this.tokens = Buffer.allocUnsafe(size)
    randomFillSync(this.tokens, 0, size)
    let at = 0
    for (const conn of this.connections.values()) {
      if (conn.pongPending) {
        this.stats.drops[DROP_PING]++
        conn.terminate()
        continue
      }
      // A connection that was asked to close is not pinged; if it is still there next round, it is cut off.
      conn.pongPending = true
      conn.token0 = this.tokens.readUInt32LE(at)
      conn.token1 = this.tokens.readUInt32LE(at + 4)
      conn.ping(this.tokens, at, at + PING_TOKEN)
      at += PING_TOKEN
    }
  }

  onClose(socket: WsSocket): void {
    const conn = socket as WsConnection
    this.connections.delete(conn.id)
    // The connection's peers leave their swarms at once.
    for (const [infoHash, peer] of conn.announced) {
      const peerId = peerIdOf(peer)
      const owner = typeof peer === 'string' ? this.ownerOf(infoHash) : this.ctx.index
      if (owner === this.ctx.index) {
        this.swarm.removePeer(conn.family, infoHash, peerId, conn.ref)
      } else {
        const length = writeWsRemove(this.frame, 0, conn.id, conn.family, infoHash, peerId)
        // An answer's bound: a peer left behind would linger until max_peer_age.
        this.ctx.mesh!.answer(owner, FRAME.wsRemove, this.frame, 0, length)
      }
    }
  }

  private ownerOf(infoHash: string): number {
    if (!this.ctx.mesh) return this.ctx.index
    this.hashScratch.write(infoHash, 0, 20, 'latin1')
    return this.ctx.ownerOf(this.hashScratch, 0)
  }

  /** Whether a message may be queued to `conn`; a queue over its bound drops it (counted). */
  private admits(conn: WsConnection): boolean {
    if (!conn.open) return false
    if (conn.congested) {
      this.stats.drops[DROP_SLOW]++
      return false
    }
    return true
  }

  /** Queues a text message (messages to one connection in a turn of the event loop leave in one write). */
  private send(conn: WsConnection, msg: string, type: number): void {
    if (!this.admits(conn)) return
    conn.sendText(msg)
    // UTF-8 bytes, not characters: binary strings hold characters above U+007F.
    this.stats.txBytes[conn.family] += Buffer.byteLength(msg)
    this.stats.responses[conn.family][type]++
  }

  /** Queues the message held in `bytes[start, end)` (UTF-8). */
  private sendBytes(conn: WsConnection, bytes: Uint8Array, start: number, end: number, type: number): void {
    if (!this.admits(conn)) return
    conn.sendBytes(bytes, start, end)
    this.stats.txBytes[conn.family] += end - start
    this.stats.responses[conn.family][type]++
  }

  /** Sends the message in `this.writer`, or a text, to a connection on any worker. */
  private deliver(ref: ConnectionRef, msg: MessageWriter | string, type: number): void {
    if (ref.worker === this.ctx.index) {
      const conn = this.connections.get(ref.id)
      if (!conn) return
      if (typeof msg === 'string') this.send(conn, msg, type)
      else this.sendBytes(conn, msg.buf, 0, msg.length, type)
      return
    }
    const frame = this.frameFor(typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length)
    const length = typeof msg === 'string' ? writeWsDeliverText(frame, 0, ref.id, type, msg) : writeWsDeliver(frame, 0, ref.id, type, msg.buf, 0, msg.length)
    // The outcome of work done here (a reply, a relayed offer or answer): an answer on the mesh.
    this.ctx.mesh!.answer(ref.worker, FRAME.wsDeliver, frame, 0, length)
  }

  /** `this.frame`, with room for a message of `bytes` after its head. */
  private frameFor(bytes: number): Buffer {
    if (this.frame.length < WS_MESSAGE_HEAD + bytes) this.frame = Buffer.allocUnsafe(WS_MESSAGE_HEAD + bytes)
    return this.frame
  }

  private fail(conn: WsConnection, reason: string, action?: string, infoHash?: string): void {
    this.send(conn, failureMessage(reason, action, infoHash), RES_ERROR)
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  onMessage(socket: WsSocket, data: Buffer): void {
    const conn = socket as WsConnection
    this.stats.rxBytes[conn.family] += data.length
    if (data.length > this.cfg.network.max_message_size) {
      this.stats.refusals[REFUSED_TOO_LARGE]++
      // Only the start is read: enough to name the action.
      this.fail(conn, `Message too large: ${data.length} bytes, the limit is ${this.cfg.network.max_message_size}`, peekAction(data))
      return
    }
    let req: WsRequest
    try {
      req = parseWsMessage(data, this.cfg.protocol.max_offers, this.cfg.protocol.max_scrape_torrents)
    } catch (error) {
      if (!(error instanceof MessageError)) throw error
      this.stats.refusals[REFUSED_INVALID]++
      this.fail(conn, error.message, peekAction(data))
      return
    }
    conn.lastActive = this.clock.nowMs
    if (req.action === 'scrape') {
      this.scrape(conn, req.infoHashes)
      return
    }
    this.stats.requests[conn.family][REQ_ANNOUNCE]++
    if (req.offersTruncated) {
      this.stats.refusals[REFUSED_TOO_MANY_OFFERS]++
      this.fail(conn, `Too many offers: at most ${this.cfg.protocol.max_offers} per announce`, 'announce', req.infoHash)
      return
    }
    this.hashScratch.write(req.infoHash, 0, 20, 'latin1')
    if (!this.ctx.accessList.allows(this.hashScratch, 0)) {
      this.stats.refusals[REFUSED_ACCESS]++
      this.fail(conn, MESSAGE.infoHashNotAllowed, 'announce', req.infoHash)
      return
    }
    const previous = conn.announced.get(req.infoHash)
    if (previous !== undefined && peerIdOf(previous) !== req.peerId) {
      this.stats.refusals[REFUSED_PEER_ID]++
      this.fail(conn, 'Only one peer id can be used per torrent on a connection', 'announce', req.infoHash)
      return
    }
    const maxTorrents = this.cfg.limits.max_torrents_per_connection
    if (previous === undefined && req.event !== WS_EVENT_STOPPED && conn.announced.size >= maxTorrents) {
      this.stats.refusals[REFUSED_TORRENTS_PER_CONNECTION]++
      this.fail(conn, `Too many torrents on one connection: at most ${maxTorrents}`, 'announce', req.infoHash)
      return
    }
    const owner = typeof previous === 'object' ? this.ctx.index : this.ownerOf(req.infoHash)
    if (owner === this.ctx.index) {
      this.announce(conn.ref, conn.family, req, data, previous as WebTorrentPeer | undefined)
      if (req.event === WS_EVENT_STOPPED) conn.announced.delete(req.infoHash)
      else {
        const self = this.swarm.announced
        if (self !== previous) conn.announced.set(req.infoHash, self ?? req.peerId)
      }
      return
    }
    // The bytes as they came: no re-encoding of the text.
    const frame = this.frameFor(data.length)
    const length = writeWsRequest(frame, 0, conn.id, conn.family, data, 0, data.length)
    // A link too full to take it: the announce did not happen (the mesh counts the drop).
    if (!this.ctx.mesh!.send(owner, FRAME.wsRequest, frame, 0, length)) {
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
  private announce(from: ConnectionRef, family: 0 | 1, req: WsAnnounce, bytes: Uint8Array, known?: WebTorrentPeer): void {
    const c = this.counts
    const status = this.swarm.announce(family, req.infoHash, req.peerId, from, req.left === 0, req.event, this.clock.now, c, known)
    if (status === WsAnnounceStatus.PeerIdTaken) {
      this.stats.refusals[REFUSED_PEER_ID]++
      this.deliver(from, failureMessage('Peer id is in use by another connection', 'announce', req.infoHash), RES_ERROR)
      return
    }
    if (status === WsAnnounceStatus.TorrentLimit) {
      this.deliver(from, failureMessage(MESSAGE.torrentLimit, 'announce', req.infoHash), RES_ERROR)
      return
    }
    // An announce that only carries an answer gets no response (as bittorrent-tracker does, and
    // its client expects none): it saves a message per relayed offer.
    const w = this.writer
    if (req.answerStart < 0 || req.offers.length > 0 || req.event !== WS_EVENT_NONE) {
      this.deliver(from, writeAnnounceResponse(w, req.infoHash, c.complete, c.incomplete, this.cfg.protocol.peer_announce_interval), RES_ANNOUNCE)
    }
    if (req.event === WS_EVENT_STOPPED) return
    const self = this.swarm.announced
    if (req.offers.length > 0 && self !== undefined) {
      const targets = this.swarm.offerTargets(self, req.offers, this.clock.now)
      for (let i = 0; i < targets.length; i++) {
        const o = req.offers[i]
        this.deliver(targets[i].conn, writeRelay(w, 'offer', req.infoHash, req.peerId, o.offerId, bytes, o.start, o.end), RES_OFFER)
      }
    }
    if (req.answerStart >= 0) {
      const target = this.swarm.answerTarget(req.peerId, req.toPeerId!, req.offerId!, this.clock.now)
      if (target === AnswerStatus.NoPeer) {
        this.stats.drops[DROP_TARGET_GONE]++
      } else if (target === AnswerStatus.NoOffer) {
        this.stats.refusals[REFUSED_NO_OFFER]++
        this.deliver(from, failureMessage(NO_OFFER_MESSAGE, 'announce', req.infoHash), RES_ERROR)
      } else {
        this.deliver(target.conn, writeRelay(w, 'answer', req.infoHash, req.peerId, req.offerId!, bytes, req.answerStart, req.answerEnd), RES_ANSWER)
      }
    }
  }

  private scrape(conn: WsConnection, infoHashes: string[]): void {
    if (infoHashes.length === 0) {
      this.stats.requests[conn.family][REQ_FULL_SCRAPE]++
      if (!this.fullScrape) {
        this.stats.refusals[REFUSED_FULL_SCRAPE]++
        this.fail(conn, MESSAGE.fullScrape, 'scrape')
        return
      }
      const body = this.fullScrape.reply()
      this.sendBytes(conn, body, 0, body.length, RES_FULL_SCRAPE)
      return
    }
    this.stats.requests[conn.family][REQ_SCRAPE]++
    const unique = [...new Set(infoHashes)]
    const hashes = Buffer.from(unique.join(''), 'latin1')
    this.scrapes.scrape(hashes, 0, unique.length, counts => {
      if (!counts) return this.fail(conn, MESSAGE.busy, 'scrape')
      const entries = unique.map((infoHash, i) => ({infoHash, complete: counts[3 * i], downloaded: counts[3 * i + 1], incomplete: counts[3 * i + 2]}))
      this.send(conn, scrapeResponse(entries), RES_SCRAPE)
    })
  }

  // -------------------------------------------------------------------------------------------
  // Other workers

  private onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): void {
    if (this.scrapes.onFrame(from, type, buf, offset, length)) return
    if (type === FRAME.wsRequest) {
      const f = this.requestIn
      if (!f.decode(buf, offset, length)) return
      const bytes = buf.subarray(f.start, f.end)
      // Checked by the connection's worker already; parsed again here, where the swarm is.
      let req: WsRequest
      try {
        req = parseWsMessage(bytes, this.cfg.protocol.max_offers, this.cfg.protocol.max_scrape_torrents)
      } catch {
        return
      }
      if (req.action === 'announce') this.announce({worker: from, id: f.connId}, f.family, req, bytes)
    } else if (type === FRAME.wsDeliver) {
      const f = this.deliverIn
      if (!f.decode(buf, offset, length)) return
      const conn = this.connections.get(f.connId)
      if (conn) this.sendBytes(conn, buf, f.start, f.end, f.type)
    } else if (type === FRAME.wsRemove) {
      const f = this.removeIn
      if (f.decode(buf, offset, length)) this.swarm.removePeer(f.family, f.infoHash, f.peerId, {worker: from, id: f.connId})
    } else this.fullScrape?.onFrame(from, type, buf, offset, length)
  }

  // -------------------------------------------------------------------------------------------

  clean(): void {
    this.clock.tick()
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

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    this.fullScrape?.close()
    for (const conn of this.connections.values()) conn.terminate()
    // Terminated links report their close after this tick; the addon lets go once they have.
    if (this.batched) process.nextTick(() => this.batched!.close())
    await Promise.all(
      this.servers.map(
        s =>
          new Promise<void>(resolve => {
            s.close(() => resolve())
            s.closeAllConnections()
          }),
      ),
    )
  }
}

/** WebSocket full-scrape parts: a shard's `"hash":{...}` entries, joined by commas. */
class JsonFullScrape implements FullScrapeFormat {
  constructor(private readonly swarm: WebTorrentSwarm) {}

  part(): Buffer {
    const entries: string[] = []
    this.swarm.forEachTorrent((infoHash, complete, incomplete, downloaded) => {
      entries.push(`${jsonBinary(infoHash)}:{"complete":${complete},"incomplete":${incomplete},"downloaded":${downloaded}}`)
    })
    return Buffer.from(entries.join(','))
  }

  merge(parts: readonly (Buffer | undefined)[]): Buffer {
    const pieces: Buffer[] = [JSON_OPEN]
    for (const part of parts) {
      if (!part || part.length === 0) continue
      if (pieces.length > 1) pieces.push(COMMA)
      pieces.push(part)
    }
    pieces.push(JSON_CLOSE)
    return Buffer.concat(pieces)
  }
}

const JSON_OPEN = Buffer.from('{"action":"scrape","files":{')
const COMMA = Buffer.from(',')
const JSON_CLOSE = Buffer.from('}}')
