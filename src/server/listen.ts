import type {Server} from 'node:net'
import {parseSocketAddress} from '../config/address.js'
import type {NativeListener, NativeTcp, OnNativeAccept} from '../io/native-tcp.js'
import type {Logger} from '../util/log.js'
import type {WorkerPorts} from './runtime/worker-api.js'

/**
 * A socket that could not be bound: the address, the config key that set it and the errno code
 * (EADDRINUSE, EACCES, EADDRNOTAVAIL...) by which `tracker serve` chooses its hint.
 */
export class BindError extends Error {
  override name = 'BindError'
  readonly code: string | undefined

  /** `what`: "bind TCP", "bind UDP", "serve metrics on". */
  constructor(
    readonly what: string,
    readonly address: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`could not ${what} ${address} (${key}): ${(cause as Error).message}`)
    this.code = (cause as NodeJS.ErrnoException).code
  }

  /** What a worker process sends of it, so that the primary can raise it again (see ipc.ts). */
  toFields(): BindErrorFields {
    return {what: this.what, address: this.address, key: this.key, code: this.code, reason: this.message.slice(this.message.indexOf('): ') + 3)}
  }

  static fromFields(f: BindErrorFields): BindError {
    return new BindError(f.what, f.address, f.key, Object.assign(new Error(f.reason), {code: f.code}))
  }
}

export interface BindErrorFields {
  what: string
  address: string
  key: string
  code: string | undefined
  reason: string
}

/** Node >= 22.12 / 23.1 can give every worker its own socket on the same port. */
export function nodeHasReusePort(versionText = process.versions.node): boolean {
  const [major, minor] = versionText.split('.').map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

export interface TcpListenOptions {
  address: string
  family: 4 | 6
  backlog: number
  ipv6Only: boolean
  /** Workers of this tracker: with more than one, each binds its own socket when Node can. */
  workers: number
  log: Logger
  /** For messages: "http", "ws". */
  what: string
  /** WorkerContext.ports. */
  ports?: WorkerPorts
}

/** The port to bind: the configured one, or worker 0's when the configured one is 0 and this worker binds a socket of its own. */
export function portToBind(configured: number, family: 4 | 6, ownSocket: boolean, ports?: WorkerPorts): number {
  if (configured !== 0 || !ownSocket) return configured
  return (family === 4 ? ports?.ipv4 : ports?.ipv6) ?? 0
}

/**
 * Binds a TCP (or TLS, or HTTP) server; resolves with its port. A bind error (BindError) names the
 * address and its config key. Later server errors are logged.
 */
export function listenTcp(server: Server, o: TcpListenOptions): Promise<number> {
  const {host, port} = parseSocketAddress(o.address)!
  const reusePort = o.workers > 1 && nodeHasReusePort()
  return new Promise((resolve, reject) => {
    server.once('error', error => reject(new BindError('bind TCP', o.address, `[network] address_ipv${o.family}`, error)))
    server.listen(
      {
        host,
        port: portToBind(port, o.family, reusePort, o.ports),
        backlog: o.backlog,
        ipv6Only: o.ipv6Only,
        exclusive: reusePort,
        ...(reusePort ? {reusePort: true} : {}),
      },
      () => {
        server.removeAllListeners('error')
        server.on('error', error => o.log.warn(`${o.what} server error: ${error.message}`))
        resolve((server.address() as {port: number}).port)
      },
    )
  })
}

/** The [network] keys every TCP protocol (HTTP, WebSocket) binds with. */
export interface TcpNetworkConfig {
  tcp_backlog: number
  set_only_ipv6: boolean
}

/** Binds a TCP protocol's server on one of its `[network]` addresses (see listenTcp). */
export function listenNetwork(
  server: Server,
  network: TcpNetworkConfig,
  address: string,
  family: 4 | 6,
  workers: number,
  log: Logger,
  what: string,
  ports?: {ipv4?: number; ipv6?: number},
): Promise<number> {
  return listenTcp(server, {address, family, backlog: network.tcp_backlog, ipv6Only: family === 6 && network.set_only_ipv6, workers, log, what, ports})
}

/**
 * Binds a TCP protocol's `[network]` address on the addon (batched I/O): every worker binds its
 * own socket (SO_REUSEPORT) and the kernel spreads connections among them. A client that connects
 * and sends nothing waits in the kernel (TCP_DEFER_ACCEPT, for `deferAcceptSeconds`), not in a
 * slot of ours. Throws a BindError naming the address and its key.
 */
export function listenBatched(
  native: NativeTcp,
  network: TcpNetworkConfig,
  address: string,
  family: 4 | 6,
  workers: number,
  deferAcceptSeconds: number,
  onAccept: OnNativeAccept,
  ports?: WorkerPorts,
): NativeListener {
  const {host, port} = parseSocketAddress(address)!
  const reusePort = workers > 1
  try {
    return native.listen(
      {
        family,
        host,
        port: portToBind(port, family, reusePort, ports),
        reusePort,
        ipv6Only: family === 6 && network.set_only_ipv6,
        backlog: network.tcp_backlog,
        deferAcceptSeconds,
      },
      onAccept,
    )
  } catch (error) {
    throw new BindError('bind TCP', address, `[network] address_ipv${family}`, error)
  }
}
