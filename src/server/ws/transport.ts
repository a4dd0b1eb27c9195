/**
 * WebSocket connections: the HTTP(S) servers and their upgrades, the handshake phase
 * (handshakes.ts), ping rounds with tokens, the idle and send-timeout sweep, backpressure, and
 * sending with the per-connection bound. What a message means is the handler's (handler.ts).
 */
import {randomFillSync} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type {Duplex} from 'node:stream'
import type {WsConfig} from '../../config/index.js'
import type {TrafficStats} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import type {ConnectionRef, WebTorrentPeerRef} from '../../swarm/index.js'
import {connectionCap} from '../fd-limit.js'
import {listenBatched, listenNetwork} from '../listen.js'
import type {WorkerContext} from '../runtime/worker-api.js'
import type {WorkerClock} from '../shard.js'
import type {TlsMaterial} from '../tls.js'
import {Handshakes, serverTimers} from './handshakes.js'
import {FlushQueue} from '../../io/flush-queue.js'
import {NativeTcp, type NativeListener, type OnNativeAccept} from '../../io/native-tcp.js'
import {StreamLink, type TcpLink} from '../../io/tcp.js'
import {CLOSE_NORMAL} from '../../protocol/ws/frame.js'
import {answerUpgrade, AT_CONNECTION_LIMIT, httpErrorResponse, NOT_A_WEBSOCKET} from '../../protocol/ws/upgrade.js'
import {NativeHandshakes, type ReadUpgrade} from './native-handshakes.js'
import {acceptHandshake, refuse, WsSocket, type WsSocketHandler} from './socket.js'
import {DROP, DROP_HANDSHAKE} from './stats.js'

/** The WebSocket layer closes (1009) a connection that sends more than this many times the limit. */
const HARD_LIMIT_FACTOR = 4

/** Bytes of the token each ping carries; only a pong that echoes it answers the ping. */
const PING_TOKEN = 8

/** A WebSocket and what the tracker knows of it. */
export class WsConnection extends WsSocket {
  /**
   * Torrents this connection announced, with the peer it stored: one per torrent. The peer itself
   * when its torrent lives on this worker (the next announce needs no lookup), else its peer id.
   * The handler's bookkeeping, kept with the connection it is about.
   */
  readonly announced = new Map<string, WebTorrentPeerRef | string>()
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
    link: TcpLink,
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

/** What the transport hands each connection's messages and its end to. */
export interface WsMessageHandler {
  /** A whole message (valid UTF-8); `data` is only valid during the call. */
  message(conn: WsConnection, data: Buffer): void
  /** Once, when the connection is gone (it is no longer among `connections`). */
  closed(conn: WsConnection): void
}

export class WsTransport implements WsSocketHandler {
  /** Open WebSockets by id. */
  readonly connections = new Map<number, WsConnection>()
  /** Batched I/O for plain ws:// connections; null for wss://, when off, or without the addon. */
  readonly batched: NativeTcp | null
  private readonly cfg: WsConfig
  private readonly servers: (http.Server | https.Server)[] = []
  /** The addon's listening sockets (batched I/O), and its connections in their handshake. */
  private readonly listeners: NativeListener[] = []
  private readonly nativeHandshakes: NativeHandshakes
  private readonly flushQueue = new FlushQueue()
  private nextId = 1
  private readonly ipScratch = new Uint8Array(16)
  private readonly handshakes: Handshakes
  /** max_connections, as far as the open-file limit allows. */
  private readonly maxConnections: number
  /** Ping tokens of one round, PING_TOKEN bytes per connection. */
  private tokens = Buffer.alloc(0)

  constructor(
    private readonly ctx: WorkerContext<WsConfig>,
    private readonly stats: TrafficStats,
    private readonly clock: WorkerClock,
    private readonly handler: WsMessageHandler,
  ) {
    const cfg = (this.cfg = ctx.config)
    this.maxConnections = connectionCap(cfg.connections.max_connections, ctx.log, '[connections] max_connections')
    this.handshakes = new Handshakes(
      this.maxConnections,
      () => this.connections.size,
      reason => this.stats.drops[DROP_HANDSHAKE[reason]]++,
    )
    this.batched = cfg.network.batched_io && !ctx.tls ? NativeTcp.open(this.flushQueue) : null
    this.nativeHandshakes = new NativeHandshakes(
      this.maxConnections,
      () => this.connections.size,
      reason => this.stats.drops[DROP_HANDSHAKE[reason]]++,
      cfg.network.enable_http_health_checks,
      {upgrade: (link, ipFamily, request) => this.onNativeUpgrade(link, ipFamily, request)},
    )
  }

  listen(address: string, family: 4 | 6): Promise<number> {
    if (this.batched) return Promise.resolve(this.listenBatched(this.batched, address, family))
    const material = this.ctx.tls
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => this.onHttpRequest(req, res)
    const timers = serverTimers(this.cfg.connections.handshake_timeout * 1000)
    const server = material ? https.createServer({cert: material.cert, key: material.key, ...timers}, onRequest) : http.createServer(timers, onRequest)
    this.handshakes.watch(server, material !== undefined)
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head))
    this.servers.push(server)
    return listenNetwork(server, this.cfg.network, address, family, this.ctx.count, this.ctx.log, 'ws', this.ctx.ports)
  }

  /** Batched I/O: the addon accepts, and the upgrade request is read by NativeHandshakes. */
  private listenBatched(native: NativeTcp, address: string, family: 4 | 6): number {
    const accept: OnNativeAccept = (link, ipFamily) => this.nativeHandshakes.accept(link, ipFamily, this.clock.nowMs)
    const socket = listenBatched(native, this.cfg.network, address, family, this.ctx.count, this.cfg.connections.handshake_timeout, accept, this.ctx.ports)
    this.listeners.push(socket)
    return socket.port
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
    res.end(NOT_A_WEBSOCKET)
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Sockets are counted from accept (Handshakes); WebSockets are never closed to make room.
    if (this.connections.size >= this.maxConnections) {
      this.stats.drops[DROP.max_connections]++
      refuse(socket, '503 Service Unavailable', AT_CONNECTION_LIMIT)
      return
    }
    if (!acceptHandshake(req, socket)) return
    this.handshakes.upgraded(socket)
    // The IP version of the TCP peer picks the swarm map (IPv4-mapped IPv6 is IPv4).
    const family = parseIpInto(req.socket.remoteAddress ?? '', this.ipScratch)
    // Node's server serves only where the addon does not (wss://, batched_io = false, no addon).
    this.open(new StreamLink(socket), family, head)
  }

  /** An upgrade request read by NativeHandshakes on a connection the addon accepted. */
  private onNativeUpgrade(link: TcpLink, ipFamily: 0 | 4 | 6, request: ReadUpgrade): void {
    const full = this.connections.size >= this.maxConnections
    if (full) this.stats.drops[DROP.max_connections]++
    const answer = full ? {accepted: false, response: httpErrorResponse('503 Service Unavailable', AT_CONNECTION_LIMIT)} : answerUpgrade(request)
    const bytes = Buffer.from(answer.response, 'latin1')
    link.write(bytes, bytes.length, !answer.accepted)
    if (!answer.accepted) {
      link.close()
      return
    }
    this.open(link, ipFamily, request.rest)
  }

  /** A WebSocket from now on: its connection, reading from `head` (what came after the handshake). */
  private open(link: TcpLink, ipFamily: 0 | 4 | 6, head: Buffer): void {
    const family: 0 | 1 = ipFamily === 6 ? 1 : 0
    const id = this.nextId++ >>> 0
    const conn = new WsConnection(
      this.ctx.index,
      id,
      family,
      this.clock.nowMs,
      link,
      this,
      this.flushQueue,
      this.cfg.network.max_message_size * HARD_LIMIT_FACTOR,
      this.cfg.connections.max_buffered_bytes,
    )
    this.connections.set(id, conn)
    conn.start(head)
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
  sweep(): void {
    this.nativeHandshakes.sweep(this.clock.nowMs, this.cfg.connections.handshake_timeout * 1000)
    const idleBefore = this.clock.nowMs - this.cfg.connections.max_connection_idle * 1000
    const stuckBefore = this.clock.nowMs - this.cfg.connections.send_timeout * 1000
    for (const conn of this.connections.values()) {
      if (conn.overSince !== 0 && conn.overSince < stuckBefore) {
        this.stats.drops[DROP.send_timeout]++
        conn.terminate()
        continue
      }
      if (conn.lastActive < idleBefore && conn.open) {
        this.stats.drops[DROP.idle_timeout]++
        conn.close(CLOSE_NORMAL, 'idle')
        // A client that does not answer the close is cut off by the next ping round.
      }
    }
  }

  ping(): void {
    // Random tokens, one per connection: a peer that does not read our pings cannot answer them.
    const size = PING_TOKEN * this.connections.size
    if (this.tokens.length < size) this.tokens = Buffer.allocUnsafe(size)
    randomFillSync(this.tokens, 0, size)
    let at = 0
    for (const conn of this.connections.values()) {
      if (conn.pongPending) {
        this.stats.drops[DROP.ping_timeout]++
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

  onMessage(socket: WsSocket, data: Buffer): void {
    const conn = socket as WsConnection
    this.stats.rxBytes[conn.family] += data.length
    this.handler.message(conn, data)
  }

  onClose(socket: WsSocket): void {
    const conn = socket as WsConnection
    this.connections.delete(conn.id)
    this.handler.closed(conn)
  }

  /** Whether a message may be queued to `conn`; a queue over its bound drops it (counted). */
  private admits(conn: WsConnection): boolean {
    if (!conn.open) return false
    if (conn.congested) {
      this.stats.drops[DROP.slow_consumer]++
      return false
    }
    return true
  }

  /** Queues a text message (messages to one connection in a turn of the event loop leave in one write). */
  send(conn: WsConnection, msg: string, type: number): void {
    if (!this.admits(conn)) return
    conn.sendText(msg)
    // UTF-8 bytes, not characters: binary strings hold characters above U+007F.
    this.stats.txBytes[conn.family] += Buffer.byteLength(msg)
    this.stats.responses[conn.family][type]++
  }

  /** Queues the message held in `bytes[start, end)` (UTF-8). */
  sendBytes(conn: WsConnection, bytes: Uint8Array, start: number, end: number, type: number): void {
    if (!this.admits(conn)) return
    conn.sendBytes(bytes, start, end)
    this.stats.txBytes[conn.family] += end - start
    this.stats.responses[conn.family][type]++
  }

  async close(): Promise<void> {
    for (const l of this.listeners) l.close()
    this.nativeHandshakes.close()
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

/** The peer id of an entry of `WsConnection.announced`. */
export function peerIdOf(entry: WebTorrentPeerRef | string): string {
  return typeof entry === 'string' ? entry : entry.peerId
}
