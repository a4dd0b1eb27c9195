import {formatSocketAddress, parseSocketAddress} from '../../config/address.js'

/** What a tracker serves on a socket: the protocol's own services, and the metrics endpoint. */
export type Service = 'udp' | 'http' | 'https' | 'ws' | 'wss' | 'metrics'

/** A socket a tracker listens on, as bound (the port is the one it got, for a configured 0). */
export interface Listener {
  service: Service
  family: 4 | 6
  host: string
  port: number
  /** The path requests go to: "/announce", "/metrics". */
  path?: string
  /** How the socket does its I/O, where the operator may want to know: "batched I/O", "node:dgram". */
  io?: string
}

/** The listener of a socket bound at a configured "host:port" (valid: the config checked it), on the port it got. */
export function listenerAt(service: Service, address: string, port: number, more: {path?: string; io?: string} = {}): Listener {
  const {host, family} = parseSocketAddress(address)!
  return {service, family, host, port, ...more}
}

/**
 * The line logs and the status file show (`tracker accesslist reload` and older readers read the
 * status file's): `udp 127.0.0.1:6969 (batched I/O)`, `http://[::1]:6969/announce`,
 * `ws://127.0.0.1:8000 (batched I/O)`, `metrics http://127.0.0.1:9000/metrics`.
 */
export function formatListener(l: Listener): string {
  const scheme = l.service === 'udp' ? 'udp ' : l.service === 'metrics' ? 'metrics http://' : `${l.service}://`
  return `${scheme}${formatSocketAddress(l.host, l.port)}${l.path ?? ''}${l.io ? ` (${l.io})` : ''}`
}
