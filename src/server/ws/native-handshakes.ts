/**
 * Connections accepted by the addon (plain ws:// on batched I/O) until they are WebSockets: the
 * upgrade request is read and answered here instead of by Node's HTTP server, and the link goes
 * on as the WebSocket's. The same rules as handshakes.ts: a head within `handshake_timeout` and
 * 16 KiB, these connections count with the WebSockets against max_connections and the oldest
 * makes room at the cap, `GET /health` when health checks are on, 426 for other requests.
 */
import type {TcpLink, TcpLinkOwner} from '../../io/tcp.js'
import {HeadStatus, headerValue, parseHead, RequestHead, type HeadLimits} from '../../protocol/http/index.js'
import {httpErrorResponse, NOT_A_WEBSOCKET} from '../../protocol/ws/upgrade.js'
import {HandshakeDrop} from './handshakes.js'

/** As Node's HTTP server: 16 KiB of head (line included). */
const LIMITS: HeadLimits = {maxLineBytes: 16 * 1024, maxHeadBytes: 16 * 1024, maxHeaders: 100}

const UPGRADE = Buffer.from('upgrade')
const CONNECTION = Buffer.from('connection')
const SEC_WEBSOCKET_KEY = Buffer.from('sec-websocket-key')
const SEC_WEBSOCKET_VERSION = Buffer.from('sec-websocket-version')

const HEALTHY = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOk'
const NOT_WEBSOCKET = httpErrorResponse('426 Upgrade Required', NOT_A_WEBSOCKET, 'Upgrade: websocket\r\n')

/** An upgrade request, read: what answerUpgrade needs, and the bytes that came after its head. */
export interface ReadUpgrade {
  method: string
  upgrade: string | undefined
  version: string | undefined
  key: string | undefined
  rest: Buffer
}

/** What the transport does with a connection whose upgrade request has arrived. */
export interface UpgradeSink {
  /** Answers it (101 or a refusal) and, when accepted, makes the link a WebSocket. */
  upgrade(link: TcpLink, ipFamily: 0 | 4 | 6, request: ReadUpgrade): void
}

/** One connection waiting for its upgrade request. */
class PendingUpgrade implements TcpLinkOwner {
  private bytes: Buffer | null = null

  constructor(
    private readonly handshakes: NativeHandshakes,
    readonly link: TcpLink,
    readonly ipFamily: 0 | 4 | 6,
    readonly since: number,
  ) {}

  receive(chunk: Buffer, start: number, end: number): void {
    const held = this.bytes
    const buf = held === null ? chunk.subarray(start, end) : Buffer.concat([held, chunk.subarray(start, end)])
    this.handshakes.received(this, buf, held !== null)
  }

  keep(buf: Buffer, owned: boolean): void {
    this.bytes = owned ? buf : Buffer.from(buf)
  }

  linkClosed(): void {
    this.handshakes.gone(this)
  }

  linkEnded(): void {
    // Nothing complete came before the end: nothing to answer.
    this.handshakes.end(this, null)
  }
}

export class NativeHandshakes {
  /** Oldest first. */
  private readonly pending = new Set<PendingUpgrade>()
  private readonly head = new RequestHead()

  constructor(
    private readonly maxConnections: number,
    /** WebSocket connections open now. */
    private readonly established: () => number,
    private readonly drop: (reason: HandshakeDrop) => void,
    private readonly healthChecks: boolean,
    private readonly sink: UpgradeSink,
  ) {}

  get size(): number {
    return this.pending.size
  }

  /** A connection accepted; at the cap, the oldest one still in its handshake makes room. */
  accept(link: TcpLink, ipFamily: 0 | 4 | 6, now: number): void {
    while (this.pending.size > 0 && this.pending.size + this.established() >= this.maxConnections) {
      const oldest: PendingUpgrade = this.pending.values().next().value!
      this.pending.delete(oldest)
      this.drop(HandshakeDrop.Evicted)
      oldest.link.destroy()
    }
    // When every slot is a WebSocket this one still comes in (one over the cap): its upgrade is
    // answered 503 (the sink's), and the next connection accepted takes its place.
    const p = new PendingUpgrade(this, link, ipFamily, now)
    this.pending.add(p)
    link.attach(p)
  }

  received(p: PendingUpgrade, buf: Buffer, owned: boolean): void {
    if (!this.pending.has(p)) return
    const status = parseHead(buf, 0, buf.length, LIMITS, null, this.head)
    if (status === HeadStatus.Incomplete) {
      p.keep(buf, owned)
      return
    }
    if (status !== HeadStatus.Ok) {
      this.end(p, status === HeadStatus.Malformed ? httpErrorResponse('400 Bad Request', '') : httpErrorResponse('431 Request Header Fields Too Large', ''))
      return
    }
    const h = this.head
    const headEnd = h.headEnd
    const upgrade = headerValue(buf, 0, headEnd, UPGRADE)
    const method = buf.toString('latin1', h.methodStart, h.methodEnd)
    // As Node's HTTP server: an upgrade is a request with Upgrade and "Connection: upgrade".
    if (upgrade === undefined || !/\bupgrade\b/i.test(headerValue(buf, 0, headEnd, CONNECTION) ?? '')) {
      const health = this.healthChecks && method === 'GET' && buf.toString('latin1', h.pathStart, h.queryStart < 0 ? h.pathEnd : h.queryEnd) === '/health'
      this.end(p, health ? HEALTHY : NOT_WEBSOCKET)
      return
    }
    this.pending.delete(p)
    this.sink.upgrade(p.link, p.ipFamily, {
      method,
      upgrade,
      version: headerValue(buf, 0, headEnd, SEC_WEBSOCKET_VERSION),
      key: headerValue(buf, 0, headEnd, SEC_WEBSOCKET_KEY),
      rest: Buffer.from(buf.subarray(headEnd)),
    })
  }

  /** Answers with `response` (if any) and closes. */
  end(p: PendingUpgrade, response: string | null): void {
    if (!this.pending.delete(p)) return
    if (response !== null) {
      const bytes = Buffer.from(response, 'latin1')
      p.link.write(bytes, bytes.length, true)
    }
    p.link.close()
  }

  gone(p: PendingUpgrade): void {
    this.pending.delete(p)
  }

  /** Ends the handshakes older than `timeoutMs` (408). */
  sweep(now: number, timeoutMs: number): void {
    const before = now - timeoutMs
    for (const p of this.pending) {
      if (p.since >= before) break
      this.drop(HandshakeDrop.RequestTimeout)
      this.end(p, httpErrorResponse('408 Request Timeout', ''))
    }
  }

  /** Closes every connection still in its handshake. */
  close(): void {
    for (const p of this.pending) p.link.destroy()
    this.pending.clear()
  }
}
