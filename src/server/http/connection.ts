/**
 * One HTTP connection's state, on either I/O path: what it has received and not answered, which
 * state it is in (each has a timer in the transport's sweep), its peer. Its link's events go to
 * the transport.
 */
import type {TcpLink, TcpLinkOwner} from '../../io/tcp.js'

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
/** What a connection's link reports, passed on to the transport. */
export interface HttpConnectionEvents {
  /** Bytes from the client: chunk[start, end), which may be reused once this returns. */
  received(conn: HttpConnection, chunk: Buffer, start: number, end: number): void
  /** The client has closed its side. */
  readEnded(conn: HttpConnection): void
  /** Some replies left while reading was paused. */
  drained(conn: HttpConnection): void
  gone(conn: HttpConnection): void
}

export class HttpConnection implements TcpLinkOwner {
  /** Bytes received but not yet answered (a partial request, or pipelined ones waiting); owned. */
  pending: Buffer | null = null
  /** A request was handed to another worker: nothing more is answered until its reply. */
  busy = false
  /** The TLS handshake is not done yet. */
  handshaking: boolean
  /** Answered with `Connection: close` (or refused): our side is ending. */
  closing = false
  /** Since when (ms) our side has been ending. */
  closingSince = 0
  closed = false
  /** Reading is paused (bytes wait behind a forwarded request, or replies wait for the kernel). */
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
    private readonly events: HttpConnectionEvents,
    readonly link: TcpLink,
    ipFamily: 0 | 4 | 6,
    ip: Uint8Array,
    now: number,
    tlsOn: boolean,
  ) {
    this.handshaking = tlsOn
    this.requestStart = now
    this.lastActive = now
    this.ipFamily = ipFamily
    this.ip.set(ip)
    this.v = ipFamily === 6 ? 1 : 0
  }

  receive(chunk: Buffer, start: number, end: number): void {
    this.events.received(this, chunk, start, end)
  }

  linkClosed(): void {
    this.events.gone(this)
  }

  linkDrained(): void {
    this.events.drained(this)
  }

  linkEnded(): void {
    this.events.readEnded(this)
  }
}
