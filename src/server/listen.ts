import type {Server} from 'node:net'
import type {Logger} from '../util/log.js'
import {splitHostPort} from './runtime.js'

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
  ports?: {ipv4?: number; ipv6?: number}
}

/** The port to bind: the configured one, or worker 0's when the configured one is 0 and this worker binds a socket of its own. */
export function portToBind(configured: number, family: 4 | 6, ownSocket: boolean, ports?: {ipv4?: number; ipv6?: number}): number {
  if (configured !== 0 || !ownSocket) return configured
  return (family === 4 ? ports?.ipv4 : ports?.ipv6) ?? 0
}

/**
 * Binds a TCP (or TLS, or HTTP) server; resolves with its port. A bind error names the address
 * and its config key. Later server errors are logged.
 */
export function listenTcp(server: Server, o: TcpListenOptions): Promise<number> {
  const [host, port] = splitHostPort(o.address)
  const reusePort = o.workers > 1 && nodeHasReusePort()
  return new Promise((resolve, reject) => {
    server.once('error', error => reject(new Error(`could not bind TCP ${o.address} ([network] address_ipv${o.family}): ${error.message}`)))
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
