/**
 * Where HTTP connections come from: the addon's listening sockets for plain http:// (batched I/O:
 * every worker binds its own socket with SO_REUSEPORT and the kernel spreads connections), or
 * Node's servers (TLS, `batched_io = false`, no addon). Either way a connection arrives as a
 * TcpLink and its peer's address.
 */
import net, {type Server, type Socket} from 'node:net'
import tls, {type SecureContext, type TLSSocket} from 'node:tls'
import type {HttpConfig} from '../../config/index.js'
import {NativeTcp, type NativeListener, type OnNativeAccept} from '../../io/native-tcp.js'
import {StreamLink, type TcpLink} from '../../io/tcp.js'
import {parseIpInto} from '../../net/ip.js'
import type {Logger} from '../../util/log.js'
import {listenBatched, listenNetwork} from '../listen.js'
import type {WorkerPorts} from '../runtime/worker-api.js'
import type {TlsMaterial} from '../tls.js'

/** What the listeners ask of the transport for each new connection. */
export interface HttpConnectionSink {
  /** Whether there is room for one more (making room if it can); a refused one is closed. */
  admit(): boolean
  /** A new connection; `tlsSocket` while its TLS handshake goes on. `ip` is reused: copy it. */
  connected(link: TcpLink, ipFamily: 0 | 4 | 6, ip: Uint8Array, tlsSocket: TLSSocket | null): void
}

export class HttpListeners {
  private readonly servers: Server[] = []
  private readonly sockets: NativeListener[] = []
  /** Batched I/O for plain HTTP; null on Node's sockets. */
  private readonly native: NativeTcp | null
  private secureContext: SecureContext | undefined
  private readonly peerIp = new Uint8Array(16)

  constructor(
    private readonly cfg: HttpConfig,
    private readonly log: Logger,
    tlsMaterial: TlsMaterial | undefined,
    private readonly sink: HttpConnectionSink,
  ) {
    if (tlsMaterial) this.setTls(tlsMaterial)
    this.native = cfg.network.batched_io && !tlsMaterial ? NativeTcp.open() : null
  }

  /** Whether connections go through the addon's batched I/O. */
  get batched(): boolean {
    return this.native !== null
  }

  /** Binds `address` (BindError when it cannot); resolves with the port it got. */
  listen(address: string, family: 4 | 6, workers: number, ports?: WorkerPorts): Promise<number> {
    if (this.native) return Promise.resolve(this.listenBatched(this.native, address, family, workers, ports))
    // Plain TCP keeps half-open connections to answer requests a client sent before shutting
    // down its side. TLS does not (Node 20 cannot close a TLS socket whose peer left mid-handshake).
    const server = net.createServer({noDelay: true, allowHalfOpen: this.secureContext === undefined}, socket => this.accept(socket))
    this.servers.push(server)
    return listenNetwork(server, this.cfg.network, address, family, workers, this.log, 'http', ports)
  }

  private listenBatched(native: NativeTcp, address: string, family: 4 | 6, workers: number, ports?: WorkerPorts): number {
    const accept: OnNativeAccept = (link, ipFamily, ip) => {
      if (this.sink.admit()) this.sink.connected(link, ipFamily, ip, null)
      else link.destroy()
    }
    const socket = listenBatched(native, this.cfg.network, address, family, workers, this.cfg.connections.request_timeout, accept, ports)
    this.sockets.push(socket)
    return socket.port
  }

  /** New connections use the new pair; open ones keep theirs. */
  setTls(material: TlsMaterial): void {
    this.secureContext = tls.createSecureContext({cert: material.cert, key: material.key})
  }

  /** A connection from Node's server. */
  private accept(raw: Socket): void {
    if (!this.sink.admit()) {
      raw.destroy()
      return
    }
    const context = this.secureContext
    // The TLS handshake is a state like any other: it counts against max_connections and must
    // finish, with the request head, within request_timeout (the transport's sweep ends it).
    const socket = context ? new tls.TLSSocket(raw, {isServer: true, secureContext: context}) : null
    const ipFamily = parseIpInto(raw.remoteAddress ?? '', this.peerIp)
    this.sink.connected(new StreamLink(socket ?? raw), ipFamily, this.peerIp, socket)
  }

  /** Accepts no more; connections stay open. */
  stop(): Promise<void> {
    for (const s of this.sockets) s.close()
    return Promise.all(this.servers.map(s => new Promise<void>(resolve => s.close(() => resolve())))).then(() => {})
  }

  /** After every connection is destroyed: the addon's links let go in the next tick, then its hub closes. */
  async close(): Promise<void> {
    const native = this.native
    if (native) await new Promise<void>(resolve => setTimeout(() => resolve(native.close()), 0))
  }
}
