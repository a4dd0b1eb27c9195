import {isIP} from 'node:net'

export interface SocketAddress {
  host: string
  port: number
  family: 4 | 6
}

/** "0.0.0.0:6969" or "[::]:6969" -> parts; undefined when it is not one. Port 0 = any free port. */
export function parseSocketAddress(text: string): SocketAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (!m) return undefined
  const host = m[1] ?? m[2]
  const port = Number(m[3])
  if (port > 65535) return undefined
  const family = isIP(host)
  if (m[1] !== undefined ? family !== 6 : family !== 4) return undefined
  return {host, port, family: family as 4 | 6}
}

export function formatSocketAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
