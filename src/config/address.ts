import {isIP} from 'node:net'

export interface SocketAddress {
  host: string
  port: number
  family: 4 | 6
}

const ADDRESS = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/

/** "0.0.0.0:6969" or "[::]:6969" -> parts; undefined when it is not one. Port 0 = any free port. */
export function parseSocketAddress(text: string): SocketAddress | undefined {
  const m = ADDRESS.exec(text)
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

/**
 * `localhost` in an address the user writes stands for 127.0.0.1. It is never looked up: the hosts
 * file may list ::1 first, and each of the tracker's sockets has one family.
 */
export const LOCALHOST = '127.0.0.1'

/** What a user wrote for an address (config file or flag): the address to use, or why it is refused. */
export type AddressCheck = {ok: true; text: string; address: SocketAddress} | {ok: false; reason?: string}

/**
 * Checks an address as written by a user: an IP literal, or "localhost:PORT", which becomes
 * "127.0.0.1:PORT". `family` is the one the key requires, if any. A refusal carries a reason when
 * there is more to say than what was expected (a host name, a missing bracket, a port too big).
 */
export function checkSocketAddress(text: string, family?: 4 | 6): AddressCheck {
  const m = ADDRESS.exec(text)
  if (m && m[2]?.toLowerCase() === 'localhost') {
    if (family === 6) return {ok: false, reason: `localhost means ${LOCALHOST} (IPv4) here; for IPv6 loopback write "[::1]:${m[3]}"`}
    text = `${LOCALHOST}:${m[3]}`
  } else if (m && m[1]?.toLowerCase() === 'localhost') {
    return {ok: false, reason: `localhost means ${LOCALHOST} (IPv4), written without brackets; for IPv6 loopback write "[::1]:${m[3]}"`}
  }
  const address = parseSocketAddress(text)
  if (address && (family === undefined || address.family === family)) return {ok: true, text, address}
  if (!m) {
    if (family !== 4 && !text.includes('[') && (text.match(/:/g)?.length ?? 0) > 1 && isIP(text.slice(0, text.lastIndexOf(':'))) === 6)
      return {ok: false, reason: 'an IPv6 address and its port are written with brackets, e.g. "[::1]:6969"'}
    return {ok: false}
  }
  if (Number(m[3]) > 65535) return {ok: false, reason: `port ${m[3]} is above 65535`}
  const host = m[1] ?? m[2]
  if (isIP(host) === 0 && m[2] !== undefined)
    return {ok: false, reason: `"${host}" is a host name: write an IP address (only localhost is accepted, as ${LOCALHOST})`}
  return {ok: false}
}
