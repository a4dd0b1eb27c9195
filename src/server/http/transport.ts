/**
 * HTTP connections: accepting them (plain or TLS), the timer that ends every state, room for new
 * clients at `max_connections`, pipelined requests answered in order with backpressure, and reply
 * bytes that belong to their reply. What a request means is the handler's (handler.ts).
 */
import net, {type Server, type Socket} from 'node:net'
import tls, {type SecureContext} from 'node:tls'
import type {HttpConfig} from '../../config/index.js'
import {indexes, type TrafficStats} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import {HeadStatus, parseHead, RequestHead, type HeadLimits} from '../../protocol/http/index.js'
import {failureBody, RESPONSE_HEAD_MAX, writeResponseHead} from '../../protocol/http/response.js'
import type {Logger} from '../../util/log.js'
import {connectionCap} from '../fd-limit.js'
import {listenNetwork} from '../listen.js'
import type {WorkerClock} from '../shard.js'
import type {TlsMaterial} from '../tls.js'

/** Connections closed by the tracker, by reason (the first entries of the worker's drop reasons). */
export const CONNECTION_DROP_REASONS = [
  'idle_timeout',
  'request_timeout',
  'bad_request',
  'max_connections',
  'evicted',
  'slow_reader',
  'tls_error',
  'tls_handshake_timeout',
] as const
const DROP = indexes(CONNECTION_DROP_REASONS)

/** How long a connection we closed may wait for the client's side to close. */
const CLOSE_GRACE_MS = 5000

/**
 * Reply bytes a connection may have waiting for the kernel before its next request is read:
 * past it, reading stops (the client's own writes then back up) until the kernel has taken them.
 */
const OUTPUT_MARK = 64 * 1024

/**
 * Bytes kept from the client beyond the request being answered. Reading stops while a request
 * waits (forwarded, or behind unsent replies), so this holds at most a read or two; it is a bound
 * on a path that should never reach it.
 */
const PENDING_SLACK = 256 * 1024

export class HttpConnection {
  /** Bytes received but not yet answered (a partial request, or pipelined ones waiting). */
  pending: Buffer | null = null
  /** A request was handed to another worker: nothing more is answered until its reply. */
  busy = false
  /** The TLS handshake is not done yet. */
  handshaking: boolean
  /** Answered with `Connection: close` (or refused): our side is ending. */
  closing = false
  closed = false
  /** Reading is paused (a request waits, or replies wait for the kernel). */
  paused = false
  /** The client has closed its side. */
  readEnded = false
  /** When the request being received started (ms; or the connection opened), 0 between requests. */
  requestStart: number
  lastActive: number
  /** Since when (ms) replies have waited past OUTPUT_MARK with the kernel taking none; 0 when not. */
  stalledSince = 0
  /** Bytes the kernel had taken when `stalledSince` was last set. */
  sentMark = 0
  readonly ip = new Uint8Array(16)
  readonly ipFamily: 0 | 4 | 6
  /** IP version of the TCP peer, for metrics. */
  readonly v: 0 | 1

  constructor(
    readonly socket: Socket,
    remoteAddress: string | undefined,
    now: number,
    tlsOn: boolean,
  ) {
    this.handshaking = tlsOn
    this.requestStart = now
    this.lastActive = now
    this.ipFamily = parseIpInto(remoteAddress ?? '', this.ip)
    this.v = this.ipFamily === 6 ? 1 : 0
  }
}

/** What the transport hands each complete request head to. */
export interface HttpRequestHandler {
  /** `head` describes a request in `buf`; answer it with `respond`, or `hold` the connection. */
  request(conn: HttpConnection, buf: Buffer, head: RequestHead): void
}

export class HttpTransport {
  /** Open connections, least recently active first (eviction takes from the front). */
  private readonly open = new Set<HttpConnection>()
  /** Connections whose last reply said `Connection: close`, until their socket closes. */
  private readonly closingSet = new Set<HttpConnection>()
  private readonly servers: Server[] = []
  private readonly limits: HeadLimits
  private readonly head = new RequestHead()
  private readonly maxConnections: number
  private secureContext: SecureContext | undefined

  constructor(
    private readonly cfg: HttpConfig,
    private readonly stats: TrafficStats,
    private readonly clock: WorkerClock,
    private readonly handler: HttpRequestHandler,
    private readonly ipHeader: Uint8Array | null,
    private readonly log: Logger,
    tlsMaterial: TlsMaterial | undefined,
    /** The response type (index into the worker's response types) of refusals for broken HTTP. */
    private readonly badRequestType: number,
  ) {
    const c = cfg.connections
    this.limits = {maxLineBytes: c.max_request_line_bytes, maxHeadBytes: c.max_request_head_bytes, maxHeaders: c.max_headers}
    this.maxConnections = connectionCap(c.max_connections, log, '[connections] max_connections')
    if (tlsMaterial) this.setTls(tlsMaterial)
  }

  /** Open connections, those being closed included (each holds a file descriptor). */
  get size(): number {
    return this.open.size + this.closingSet.size
  }

  listen(address: string, family: 4 | 6, workers: number, ports?: {ipv4?: number; ipv6?: number}): Promise<number> {
    // Plain TCP keeps half-open connections to answer requests a client sent before shutting
    // down its side. TLS does not (Node 20 cannot close a TLS socket whose peer left mid-handshake).
    const server = net.createServer({noDelay: true, allowHalfOpen: this.secureContext === undefined}, socket => this.accept(socket))
    this.servers.push(server)
    return listenNetwork(server, this.cfg.network, address, family, workers, this.log, 'http', ports)
  }

  /** New connections use the new pair; open ones keep theirs. */
  setTls(material: TlsMaterial): void {
    this.secureContext = tls.createSecureContext({cert: material.cert, key: material.key})
  }

  private accept(raw: Socket): void {
    if (this.size >= this.maxConnections && !this.makeRoom()) {
      this.stats.drops[DROP.max_connections]++
      raw.destroy()
      return
    }
    const context = this.secureContext
    // The TLS handshake is a state like any other: it counts against max_connections and must
    // finish, with the request head, within request_timeout (the sweep ends it otherwise).
    const socket = context ? new tls.TLSSocket(raw, {isServer: true, secureContext: context}) : raw
    const conn = new HttpConnection(socket, raw.remoteAddress, this.clock.nowMs, context !== undefined)
    this.open.add(conn)
    if (context) socket.once('secure', () => (conn.handshaking = false))
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk))
    socket.on('drain', () => {
      conn.stalledSince = 0
      this.pump(conn)
    })
    socket.on('error', () => {
      if (conn.handshaking) this.stats.drops[DROP.tls_error]++
      socket.destroy()
    })
    socket.on('close', () => {
      conn.closed = true
      this.open.delete(conn)
      this.closingSet.delete(conn)
    })
    socket.on('end', () => {
      // The client has sent all it will: answer what is complete, then close.
      conn.readEnded = true
      this.pump(conn)
    })
  }

  /**
   * At the cap: closes a connection being closed, else the least recently active one that is
   * not waiting for another worker (idle, silent, handshaking or slow alike), so that a new
   * client always gets in. False when every connection is waiting for another worker.
   */
  private makeRoom(): boolean {
    for (const conn of this.closingSet) {
      this.destroy(conn)
      return true
    }
    for (const conn of this.open) {
      if (conn.busy) continue
      this.stats.drops[DROP.evicted]++
      this.destroy(conn)
      return true
    }
    return false
  }

  private destroy(conn: HttpConnection): void {
    conn.closed = true
    this.open.delete(conn)
    this.closingSet.delete(conn)
    conn.socket.destroy()
  }

  /** Once a second: ends connections that overstayed their state. */
  sweep(): void {
    const now = this.clock.nowMs
    const c = this.cfg.connections
    const requestDeadline = now - c.request_timeout * 1000
    const idleDeadline = now - c.idle_timeout * 1000
    const sendDeadline = now - c.send_timeout * 1000
    for (const conn of this.open) {
      // Waiting for another worker: the handler's forward timeout ends that.
      if (conn.busy) continue
      if (conn.stalledSince !== 0) {
        const socket = conn.socket
        const sent = socket.bytesWritten - socket.writableLength
        if (sent !== conn.sentMark) {
          conn.sentMark = sent
          conn.stalledSince = now
        } else if (conn.stalledSince < sendDeadline) {
          this.stats.drops[DROP.slow_reader]++
          this.destroy(conn)
        }
      } else if (conn.requestStart !== 0) {
        if (conn.requestStart < requestDeadline) {
          this.stats.drops[conn.handshaking ? DROP.tls_handshake_timeout : DROP.request_timeout]++
          this.destroy(conn)
        }
      } else if (conn.lastActive < idleDeadline) {
        this.stats.drops[DROP.idle_timeout]++
        this.destroy(conn)
      }
    }
  }

  private onData(conn: HttpConnection, chunk: Buffer): void {
    this.stats.rxBytes[conn.v] += chunk.length
    if (conn.closed || conn.closing) return
    if (conn.requestStart === 0) conn.requestStart = this.clock.nowMs
    if (conn.pending === null) {
      conn.pending = chunk
    } else if (conn.pending.length + chunk.length > this.limits.maxHeadBytes + PENDING_SLACK) {
      this.refuse(conn, 431, 'Request head too large')
      return
    } else {
      conn.pending = Buffer.concat([conn.pending, chunk])
    }
    this.pump(conn)
  }

  /**
   * Answers the complete requests in `conn.pending`, in order, while no request waits for another
   * worker and the replies so far are not piling up; then reads on, or pauses until they have left.
   */
  private pump(conn: HttpConnection): void {
    if (conn.closed || conn.closing) return
    const socket = conn.socket
    const buf = conn.pending
    let start = 0
    if (buf !== null) {
      while (start < buf.length && !conn.busy && !conn.closing) {
        socket.cork()
        let status = HeadStatus.Ok
        while (start < buf.length && !conn.busy && !conn.closing && socket.writableLength <= OUTPUT_MARK) {
          status = parseHead(buf, start, buf.length, this.limits, this.ipHeader, this.head)
          if (status !== HeadStatus.Ok) break
          start = this.head.headEnd
          this.handler.request(conn, buf, this.head)
        }
        if (status !== HeadStatus.Ok && status !== HeadStatus.Incomplete) {
          this.refuseHead(conn, status)
        }
        socket.uncork()
        // The kernel usually takes the replies at once; go on unless they are still waiting.
        if (status !== HeadStatus.Ok || socket.writableLength > OUTPUT_MARK) break
      }
      if (conn.closed || conn.closing) return
      if (start >= buf.length) {
        conn.pending = null
        if (!conn.busy) conn.requestStart = 0
      } else {
        // Keep only the rest; copied when small, so the big chunk can be freed.
        const rest = start === 0 ? buf : buf.subarray(start)
        conn.pending = rest.length < 4096 && buf.length > 65536 ? Buffer.from(rest) : rest
        // The next request is being received, or waits its turn.
        if (conn.requestStart === 0 || start > 0) conn.requestStart = this.clock.nowMs
      }
    }
    const over = socket.writableLength > OUTPUT_MARK
    if (over && conn.stalledSince === 0) {
      conn.stalledSince = this.clock.nowMs
      conn.sentMark = socket.bytesWritten - socket.writableLength
    }
    const wait = conn.busy || over
    if (wait !== conn.paused) {
      conn.paused = wait
      if (wait) socket.pause()
      else socket.resume()
    }
    // A client that has closed its side gets its answers, then the close.
    if (!wait && conn.readEnded) this.end(conn)
  }

  private refuseHead(conn: HttpConnection, status: HeadStatus): void {
    if (status === HeadStatus.LineTooLong) this.refuse(conn, 414, 'Request line too long')
    else if (status === HeadStatus.HeadTooLarge) this.refuse(conn, 431, 'Request head too large')
    else this.refuse(conn, 400, 'Malformed HTTP request')
  }

  /** Answers a request that breaks HTTP framing, then closes: nothing after it can be trusted. */
  refuse(conn: HttpConnection, status: number, reason: string): void {
    this.stats.drops[DROP.bad_request]++
    const body = failureBody(reason)
    this.respond(conn, status, body, body.length, false, true, this.badRequestType)
    conn.pending = null
  }

  /** A request of `conn` went to another worker: reading stops until `release`. */
  hold(conn: HttpConnection): void {
    conn.busy = true
  }

  /** The forwarded request was answered (or given up): go on with the requests that waited. */
  release(conn: HttpConnection): void {
    conn.busy = false
    if (conn.pending === null) conn.requestStart = 0
    this.pump(conn)
  }

  /** Sends a head and a copy of `body[0, length)`: the caller may reuse `body` at once. */
  respond(conn: HttpConnection, status: number, body: Buffer, length: number, keepAlive: boolean, http11: boolean, type: number): void {
    if (conn.closed || conn.closing) return
    const out = Buffer.allocUnsafe(RESPONSE_HEAD_MAX + length)
    const at = writeResponseHead(out, 0, status, length, keepAlive, http11)
    if (length <= 512) for (let i = 0; i < length; i++) out[at + i] = body[i]
    else body.copy(out, at, 0, length)
    conn.socket.write(out.subarray(0, at + length))
    this.sent(conn, at + length, keepAlive, type)
  }

  /** Sends a head and `body` itself, which must never change (a full-scrape snapshot). */
  respondImmutable(conn: HttpConnection, status: number, body: Buffer, keepAlive: boolean, http11: boolean, type: number): void {
    if (conn.closed || conn.closing) return
    const head = Buffer.allocUnsafe(RESPONSE_HEAD_MAX)
    const at = writeResponseHead(head, 0, status, body.length, keepAlive, http11)
    conn.socket.write(head.subarray(0, at))
    conn.socket.write(body)
    this.sent(conn, at + body.length, keepAlive, type)
  }

  private sent(conn: HttpConnection, bytes: number, keepAlive: boolean, type: number): void {
    this.stats.txBytes[conn.v] += bytes
    this.stats.responses[conn.v][type]++
    conn.lastActive = this.clock.nowMs
    if (!keepAlive) {
      this.end(conn)
      return
    }
    // Most recently active last, so that eviction finds the longest idle first.
    this.open.delete(conn)
    this.open.add(conn)
  }

  /** Our side ends once the replies have left; a client that never closes its side is cut off. */
  private end(conn: HttpConnection): void {
    if (conn.closing || conn.closed) return
    conn.closing = true
    this.open.delete(conn)
    this.closingSet.add(conn)
    conn.pending = null
    const socket = conn.socket
    // Read on (and discard) so that the client's close is seen.
    if (conn.paused) socket.resume()
    socket.end()
    socket.setTimeout(CLOSE_GRACE_MS, () => socket.destroy())
  }

  async close(): Promise<void> {
    const closed = Promise.all(this.servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
    for (const conn of [...this.open, ...this.closingSet]) this.destroy(conn)
    await closed
  }
}
