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
    server.listen({host, port, backlog: o.backlog, ipv6Only: o.ipv6Only, exclusive: reusePort, ...(reusePort ? {reusePort: true} : {})}, () => {
      server.removeAllListeners('error')
      server.on('error', error => o.log.warn(`${o.what} server error: ${error.message}`))
      resolve((server.address() as {port: number}).port)
    })
  })
}
