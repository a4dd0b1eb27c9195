/**
 * HTTP connections once accepted (listeners.ts: plain or TLS on Node's sockets, plain through the
 * addon's batched I/O): the timer that ends every state, room for new clients at
 * `max_connections`, pipelined requests answered in order with backpressure, and reply bytes that
 * belong to their reply. Both I/O paths meet in a TcpLink, so everything here holds on both.
 * What a request means is the handler's (handler.ts).
 */
import type {TLSSocket} from 'node:tls'
import type {HttpConfig} from '../../config/index.js'
import type {TcpLink} from '../../io/tcp.js'
import {indexes, type TrafficStats} from '../../metrics/index.js'
import {HeadStatus, parseHead, RequestHead, type HeadLimits} from '../../protocol/http/index.js'
import {failureBody, RESPONSE_HEAD_MAX, writeResponseHead} from '../../protocol/http/response.js'
import type {Logger} from '../../util/log.js'
import {connectionCap} from '../fd-limit.js'
import type {WorkerPorts} from '../runtime/worker-api.js'
import type {WorkerClock} from '../shard.js'
import type {TlsMaterial} from '../tls.js'
import {CONNECTION_DROP_REASONS, HttpConnection, type HttpConnectionEvents} from './connection.js'
import {HttpListeners} from './listeners.js'

const DROP = indexes(CONNECTION_DROP_REASONS)

/** How long a connection we closed may wait for the client's side to close. */
const CLOSE_GRACE_MS = 5000

/** The reply buffer: a head and the largest body of most replies. */
const OUT_SIZE = 65_536

const EMPTY = Buffer.alloc(0)

/**
 * Reply bytes a connection may have waiting for the kernel before its next request is read:
 * past it, reading stops (the client's own writes then back up) until the kernel has taken them.
 */
const OUTPUT_MARK = 64 * 1024

/**
 * Bytes kept from the client beyond the request being answered. Reading stops once bytes wait
 * behind a request (forwarded, or behind unsent replies), so this holds at most a read or two; it
 * is a bound on a path that should never reach it.
 */
const PENDING_SLACK = 256 * 1024

/** What the transport hands each complete request head to. */
export interface HttpRequestHandler {
  /** `head` describes a request in `buf`; answer it with `respond`, or `hold` the connection. */
  request(conn: HttpConnection, buf: Buffer, head: RequestHead): void
}

export class HttpTransport implements HttpConnectionEvents {
  /** Open connections, least recently active first (eviction takes from the front). */
  private readonly open = new Set<HttpConnection>()
  /** Connections whose last reply said `Connection: close`, until they close. */
  private readonly closingSet = new Set<HttpConnection>()
  private readonly listeners: HttpListeners
  private readonly limits: HeadLimits
  private readonly head = new RequestHead()
  private readonly maxConnections: number
  /** Where replies are put together for links that copy what they are given. */
  private readonly out = Buffer.allocUnsafe(OUT_SIZE)
  /** While a request is handled: bytes the client sent after it, in the same input. */
  private inputLeft = 0

  constructor(
    private readonly cfg: HttpConfig,
    private readonly stats: TrafficStats,
    private readonly clock: WorkerClock,
    private readonly handler: HttpRequestHandler,
    private readonly ipHeader: Uint8Array | null,
    log: Logger,
    tlsMaterial: TlsMaterial | undefined,
    /** The response type (index into the worker's response types) of refusals for broken HTTP. */
    private readonly badRequestType: number,
  ) {
    const c = cfg.connections
    this.limits = {maxLineBytes: c.max_request_line_bytes, maxHeadBytes: c.max_request_head_bytes, maxHeaders: c.max_headers}
    this.maxConnections = connectionCap(c.max_connections, log, '[connections] max_connections')
    this.listeners = new HttpListeners(cfg, log, tlsMaterial, {admit: () => this.roomForOne(), connected: (...a) => this.connected(...a)})
  }

  /** Whether connections go through the addon's batched I/O. */
  get batched(): boolean {
    return this.listeners.batched
  }

  /** Open connections, those being closed included (each holds a file descriptor). */
  get size(): number {
    return this.open.size + this.closingSet.size
  }

  listen(address: string, family: 4 | 6, workers: number, ports?: WorkerPorts): Promise<number> {
    return this.listeners.listen(address, family, workers, ports)
  }

  /** New connections use the new pair; open ones keep theirs. */
  setTls(material: TlsMaterial): void {
    this.listeners.setTls(material)
  }

  /** A new connection (admitted: there was room); `tlsSocket` while its TLS handshake goes on. */
  private connected(link: TcpLink, ipFamily: 0 | 4 | 6, ip: Uint8Array, tlsSocket: TLSSocket | null): void {
    const conn = this.adopt(link, ipFamily, ip, tlsSocket !== null)
    if (tlsSocket) {
      tlsSocket.once('secure', () => (conn.handshaking = false))
      tlsSocket.on('error', () => {
        if (conn.handshaking) this.stats.drops[DROP.tls_error]++
      })
    }
    link.start()
  }

  /** A connection of either path gets its state and its place among the open ones. */
  private adopt(link: TcpLink, ipFamily: 0 | 4 | 6, ip: Uint8Array, tlsOn: boolean): HttpConnection {
    const conn = new HttpConnection(this, link, ipFamily, ip, this.clock.nowMs, tlsOn)
    link.attach(conn)
    this.open.add(conn)
    return conn
  }

  /** Room for a new connection: at the cap, one is closed for it, else it is refused and counted. */
  private roomForOne(): boolean {
    if (this.size < this.maxConnections || this.makeRoom()) return true
    this.stats.drops[DROP.max_connections]++
    return false
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
    conn.link.destroy()
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
        const sent = conn.link.sent
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
    // Our side has ended: a client that neither reads the last reply nor closes is cut off.
    const graceDeadline = now - CLOSE_GRACE_MS
    for (const conn of this.closingSet) if (conn.closingSince < graceDeadline) this.destroy(conn)
  }

  /** Bytes from the client: chunk[start, end), which may be reused once this returns. */
  received(conn: HttpConnection, chunk: Buffer, start: number, end: number): void {
    this.stats.rxBytes[conn.v] += end - start
    if (conn.closed || conn.closing) return
    if (conn.requestStart === 0) conn.requestStart = this.clock.nowMs
    const pending = conn.pending
    if (pending === null) {
      this.pump(conn, chunk, start, end, false)
    } else if (pending.length + end - start > this.limits.maxHeadBytes + PENDING_SLACK) {
      this.refuse(conn, 431, 'Request head too large')
    } else {
      const joined = Buffer.allocUnsafe(pending.length + end - start)
      pending.copy(joined, 0)
      chunk.copy(joined, pending.length, start, end)
      this.pump(conn, joined, 0, joined.length, true)
    }
  }

  /** The client has closed its side: answer what is complete, then close. */
  readEnded(conn: HttpConnection): void {
    conn.readEnded = true
    this.resume(conn)
  }

  /** Some replies left while reading was paused. */
  drained(conn: HttpConnection): void {
    if (conn.link.buffered > OUTPUT_MARK) return
    conn.stalledSince = 0
    this.resume(conn)
  }

  gone(conn: HttpConnection): void {
    conn.closed = true
    this.open.delete(conn)
    this.closingSet.delete(conn)
  }

  /** Goes on with what was kept in `pending`. */
  private resume(conn: HttpConnection): void {
    const buf = conn.pending
    if (buf === null) this.pump(conn, EMPTY, 0, 0, true)
    else this.pump(conn, buf, 0, buf.length, true)
  }

  /**
   * Answers the complete requests in buf[start, end) (owned: `pending` may keep it), in order,
   * while no request waits for another worker and the replies so far are not piling up; keeps
   * the rest; then reads on, or pauses until the replies have left.
   */
  private pump(conn: HttpConnection, buf: Buffer, start: number, end: number, owned: boolean): void {
    if (conn.closed || conn.closing) return
    const link = conn.link
    const first = start
    while (start < end && !conn.busy && !conn.closing) {
      link.cork()
      let status = HeadStatus.Ok
      while (start < end && !conn.busy && !conn.closing && link.buffered <= OUTPUT_MARK) {
        status = parseHead(buf, start, end, this.limits, this.ipHeader, this.head)
        if (status !== HeadStatus.Ok) break
        start = this.head.headEnd
        this.inputLeft = end - start
        this.handler.request(conn, buf, this.head)
      }
      this.inputLeft = 0
      if (status !== HeadStatus.Ok && status !== HeadStatus.Incomplete) {
        this.refuseHead(conn, status)
      }
      link.uncork()
      // The kernel usually takes the replies at once; go on unless they are still waiting.
      if (status !== HeadStatus.Ok || link.buffered > OUTPUT_MARK) break
    }
    if (conn.closed || conn.closing) return
    if (start >= end) {
      conn.pending = null
      if (!conn.busy) conn.requestStart = 0
    } else {
      // Keep only the rest: a copy when the input is not ours, or when it is small (the big
      // chunk can then be freed).
      const rest = buf.subarray(start, end)
      conn.pending = !owned || (rest.length < 4096 && buf.length > 65536) ? Buffer.from(rest) : rest
      // The next request is being received, or waits its turn.
      if (conn.requestStart === 0 || start > first) conn.requestStart = this.clock.nowMs
    }
    const over = link.buffered > OUTPUT_MARK
    if (over && conn.stalledSince === 0) {
      conn.stalledSince = this.clock.nowMs
      conn.sentMark = link.sent
    }
    const wait = conn.busy || over
    // A forwarded request alone does not stop reading: most clients send nothing until its reply,
    // and stopping and starting costs two epoll_ctl calls per forward. Bytes that come meanwhile do.
    const stop = over || (conn.busy && conn.pending !== null)
    if (stop !== conn.paused) {
      conn.paused = stop
      link.reading(!stop)
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
  }

  /** A request of `conn` went to another worker: nothing more is answered until `release`. */
  hold(conn: HttpConnection): void {
    conn.busy = true
  }

  /** The forwarded request was answered (or given up): go on with the requests that waited. */
  release(conn: HttpConnection): void {
    conn.busy = false
    if (conn.pending === null) conn.requestStart = 0
    this.resume(conn)
  }

  /** Sends a head and a copy of `body[0, length)`: the caller may reuse `body` at once. */
  respond(conn: HttpConnection, status: number, body: Buffer, length: number, keepAlive: boolean, http11: boolean, type: number): void {
    if (conn.closed || conn.closing) return
    const size = RESPONSE_HEAD_MAX + length
    // A link that keeps what it is given gets a buffer of its own; one that copies, the same one.
    const out = conn.link.copiesWrites && size <= this.out.length ? this.out : Buffer.allocUnsafe(size)
    const at = writeResponseHead(out, 0, status, length, keepAlive, http11)
    if (length <= 512) for (let i = 0; i < length; i++) out[at + i] = body[i]
    else body.copy(out, at, 0, length)
    conn.link.write(out, at + length, !keepAlive)
    this.sent(conn, at + length, keepAlive, type)
  }

  /** Sends a head and `body` itself, which must never change (a full-scrape snapshot). */
  respondImmutable(conn: HttpConnection, status: number, body: Buffer, keepAlive: boolean, http11: boolean, type: number): void {
    if (conn.closed || conn.closing) return
    const head = conn.link.copiesWrites ? this.out : Buffer.allocUnsafe(RESPONSE_HEAD_MAX)
    const at = writeResponseHead(head, 0, status, body.length, keepAlive, http11)
    conn.link.write(head, at)
    conn.link.write(body, body.length, !keepAlive)
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

  /**
   * Our side ends once the replies have left. With nothing more from the client waiting, the
   * connection closes then; else our side shuts down and what the client still sends is read
   * (and dropped) until it closes, so that its unread bytes do not reset the connection before
   * it has read the reply. A client that does neither is cut off after CLOSE_GRACE_MS.
   */
  private end(conn: HttpConnection): void {
    if (conn.closing || conn.closed) return
    conn.closing = true
    conn.closingSince = this.clock.nowMs
    this.open.delete(conn)
    const unread = conn.pending !== null || this.inputLeft > 0
    conn.pending = null
    const link = conn.link
    if (unread) {
      // Read on (and discard) so that the client's close is seen.
      if (conn.paused) link.reading(true)
      link.end()
    } else {
      link.close()
    }
    // Usually closed at once (batched I/O, nothing waiting for the kernel); else until it closes.
    if (!conn.closed) this.closingSet.add(conn)
  }

  async close(): Promise<void> {
    const stopped = this.listeners.stop()
    for (const conn of [...this.open, ...this.closingSet]) this.destroy(conn)
    await stopped
    await this.listeners.close()
  }
}
