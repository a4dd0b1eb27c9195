/**
 * Sockets from TCP accept until they are WebSockets: the TLS handshake (wss://), then the HTTP
 * upgrade request. Each phase has a timer (Node's, set by `serverTimers`), and these sockets count
 * with the WebSocket connections against max_connections: at the cap, the oldest of them is
 * closed to make room, so sockets that never finish their handshake cannot lock clients out.
 * WebSocket connections are never closed to make room (a new one over the cap gets 503).
 */
import type http from 'node:http'
import type https from 'node:https'
import type {Socket} from 'node:net'
import type {Duplex} from 'node:stream'

/** Why a socket was closed before it became a WebSocket. */
export const enum HandshakeDrop {
  /** A TLS error other than the timeout. */
  TlsError,
  /** The TLS handshake did not finish within the timeout. */
  TlsTimeout,
  /** The upgrade request (its head) did not arrive within the timeout. */
  RequestTimeout,
  /** Closed at max_connections to make room for a new socket. */
  Evicted,
}

/**
 * Node's HTTP server checks its timeouts every `connectionsCheckingInterval` (30 s by default):
 * this often, so that a stalled request is closed within half a second of its timeout.
 */
const CHECK_INTERVAL_MS = 500

/** Options for http(s).createServer: every pre-WebSocket phase ends within `timeoutMs`. */
export function serverTimers(timeoutMs: number): {
  handshakeTimeout: number
  headersTimeout: number
  requestTimeout: number
  connectionsCheckingInterval: number
} {
  return {
    handshakeTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, timeoutMs),
  }
}

const RESPONSES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
}
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'

export class Handshakes {
  /** Raw TCP sockets not yet WebSockets, oldest first. */
  private readonly pending = new Set<Socket>()

  constructor(
    private readonly maxConnections: number,
    /** WebSocket connections open now. */
    private readonly established: () => number,
    private readonly drop: (reason: HandshakeDrop) => void,
  ) {}

  /** Sockets accepted and not yet WebSockets. */
  get size(): number {
    return this.pending.size
  }

  watch(server: http.Server | https.Server, tls: boolean): void {
    server.on('connection', (socket: Socket) => this.accepted(socket))
    if (tls) {
      // With this listener Node leaves the socket open: it is closed here.
      server.on('tlsClientError', (error: Error & {code?: string}, socket: Duplex) => {
        // A socket closed to make room fails its handshake too; it is counted as evicted only.
        if (this.pending.has(rawOf(socket))) this.drop(error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? HandshakeDrop.TlsTimeout : HandshakeDrop.TlsError)
        socket.destroy()
      })
    }
    // What Node does without a listener (an HTTP error response when none was begun, then close),
    // plus the count of request timeouts. TLS errors come here too; they are counted above.
    server.on('clientError', (error: Error & {code?: string}, socket: Duplex) => {
      if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') this.drop(HandshakeDrop.RequestTimeout)
      const message = (socket as Duplex & {_httpMessage?: {headersSent?: boolean}})._httpMessage
      if (socket.writable && !message?.headersSent) socket.write(RESPONSES[error.code ?? ''] ?? BAD_REQUEST)
      socket.destroy()
    })
  }

  /** A TCP socket accepted; at the cap, the oldest socket still in its handshake makes room. */
  private accepted(socket: Socket): void {
    while (this.pending.size > 0 && this.pending.size + this.established() >= this.maxConnections) {
      const oldest: Socket = this.pending.values().next().value!
      this.pending.delete(oldest)
      this.drop(HandshakeDrop.Evicted)
      oldest.destroy()
    }
    // When every slot is a WebSocket, this one still comes in (one over the cap): its upgrade is
    // answered 503, and the next socket accepted takes its place.
    this.pending.add(socket)
    socket.once('close', () => this.pending.delete(socket))
  }

  /** The handshake of `socket` (plain, or the TLS socket over a raw one) is done: it is a WebSocket now. */
  upgraded(socket: Duplex): void {
    this.pending.delete(rawOf(socket))
  }
}

/** The accepted TCP socket under `socket`: a TLS socket made by the server keeps it as its parent. */
function rawOf(socket: Duplex): Socket {
  return (socket as Duplex & {_parent?: Socket})._parent ?? (socket as Socket)
}
