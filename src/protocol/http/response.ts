/**
 * Hand-written bencode for tracker responses, written into caller-owned buffers, and the HTTP
 * framing around them. Keys are written in sorted order, as bencode requires.
 */
import {formatIp} from '../../net/ip.js'

/** Writes the ASCII of `s` at `at`; returns the new offset. */
function ascii(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i)
  return at + s.length
}

/** Writes a non-negative integer in decimal; returns the new offset. */
export function writeDecimal(out: Uint8Array, at: number, n: number): number {
  if (n < 10) {
    out[at] = 48 + n
    return at + 1
  }
  let digits = 1
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++
  let p = at + digits - 1
  for (let x = n; p >= at; p--) {
    out[p] = 48 + (x % 10)
    x = Math.floor(x / 10)
  }
  return at + digits
}

/** `i<n>e` */
function int(out: Uint8Array, at: number, n: number): number {
  out[at] = 105
  at = writeDecimal(out, at + 1, n)
  out[at] = 101
  return at + 1
}

/** `<len>:` followed by the bytes */
function bytes(out: Uint8Array, at: number, src: Uint8Array, start: number, length: number): number {
  at = writeDecimal(out, at, length)
  out[at++] = 58
  for (let i = 0; i < length; i++) out[at + i] = src[start + i]
  return at + length
}

export interface AnnounceCounts {
  seeders: number
  leechers: number
  completed: number
}

/** Bytes needed at most for a body with `peers` peers (non-compact IPv6 with ids is the largest). */
export function announceBodyMax(peers: number): number {
  return 160 + peers * 110
}

/**
 * A compact announce body (BEP 23, BEP 7): `peers` holds 6-byte IPv4 peers, `peers6` 18-byte IPv6
 * peers; the requester's family gets the list, the other an empty string.
 */
export function writeCompactAnnounce(
  out: Uint8Array,
  at: number,
  c: AnnounceCounts,
  interval: number,
  minInterval: number,
  family: 4 | 6,
  peerBuf: Uint8Array,
  peerCount: number,
): number {
  at = announceHead(out, at, c, interval, minInterval)
  const size = family === 4 ? 6 : 18
  at = ascii(out, at, '5:peers')
  at = family === 4 ? bytes(out, at, peerBuf, 0, peerCount * size) : ascii(out, at, '0:')
  at = ascii(out, at, '6:peers6')
  at = family === 6 ? bytes(out, at, peerBuf, 0, peerCount * size) : ascii(out, at, '0:')
  out[at] = 101
  return at + 1
}

/**
 * The original dictionary model (BEP 3): `peers` is a list of {ip, peer id, port}; `peer id` is
 * left out when `peerIds` is null (`no_peer_id=1`).
 */
export function writeDictAnnounce(
  out: Uint8Array,
  at: number,
  c: AnnounceCounts,
  interval: number,
  minInterval: number,
  family: 4 | 6,
  peerBuf: Uint8Array,
  peerCount: number,
  peerIds: Uint8Array | null,
): number {
  at = announceHead(out, at, c, interval, minInterval)
  at = ascii(out, at, '5:peersl')
  const size = family === 4 ? 6 : 18
  const ipLength = size - 2
  for (let p = 0; p < peerCount; p++) {
    const base = p * size
    at = ascii(out, at, 'd2:ip')
    const text = formatIp(peerBuf, base, family)
    at = writeDecimal(out, at, text.length)
    out[at++] = 58
    at = ascii(out, at, text)
    if (peerIds) {
      at = ascii(out, at, '7:peer id')
      at = bytes(out, at, peerIds, p * 20, 20)
    }
    at = ascii(out, at, '4:port')
    at = int(out, at, (peerBuf[base + ipLength] << 8) | peerBuf[base + ipLength + 1])
    out[at++] = 101
  }
  out[at++] = 101
  out[at] = 101
  return at + 1
}

function announceHead(out: Uint8Array, at: number, c: AnnounceCounts, interval: number, minInterval: number): number {
  out[at++] = 100
  at = ascii(out, at, '8:complete')
  at = int(out, at, c.seeders)
  at = ascii(out, at, '10:downloaded')
  at = int(out, at, c.completed)
  at = ascii(out, at, '10:incomplete')
  at = int(out, at, c.leechers)
  at = ascii(out, at, '8:interval')
  at = int(out, at, interval)
  at = ascii(out, at, '12:min interval')
  return int(out, at, minInterval)
}

/** Start of a scrape body: `d5:filesd` */
export function writeScrapeStart(out: Uint8Array, at: number): number {
  return ascii(out, at, 'd5:filesd')
}

/** One `files` entry: `20:<hash>d8:completei..e10:downloadedi..e10:incompletei..ee` */
export function writeScrapeEntry(out: Uint8Array, at: number, hash: Uint8Array, hashAt: number, seeders: number, completed: number, leechers: number): number {
  at = bytes(out, at, hash, hashAt, 20)
  at = ascii(out, at, 'd8:complete')
  at = int(out, at, seeders)
  at = ascii(out, at, '10:downloaded')
  at = int(out, at, completed)
  at = ascii(out, at, '10:incomplete')
  at = int(out, at, leechers)
  out[at] = 101
  return at + 1
}

/** Bytes one scrape entry takes at most. */
export const SCRAPE_ENTRY_MAX = 23 + 11 + 14 + 14 + 3 * 12 + 1

/** End of a scrape body: `ee` */
export function writeScrapeEnd(out: Uint8Array, at: number): number {
  out[at] = 101
  out[at + 1] = 101
  return at + 2
}

/** `d14:failure reason<n>:<text>e` */
export function failureBody(reason: string): Buffer {
  const text = Buffer.from(reason)
  return Buffer.concat([Buffer.from(`d14:failure reason${text.length}:`), text, Buffer.from('e')])
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  503: 'Service Unavailable',
}

/** Precomputed status lines and headers up to the Content-Length value. */
const HEADS = new Map<string, Buffer>()

/**
 * Writes the response head for a body of `length` bytes; returns the new offset.
 * `keepAlive` says whether the connection stays open; `http11` whether to say so explicitly.
 */
export function writeResponseHead(out: Uint8Array, at: number, status: number, length: number, keepAlive: boolean, http11: boolean): number {
  const key = `${status}${keepAlive ? 'k' : 'c'}${http11 ? '1' : '0'}`
  let head = HEADS.get(key)
  if (!head) {
    // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told. A close is
    // always announced, so that clients do not try to reuse the connection.
    const connection = !keepAlive ? 'Connection: close\r\n' : http11 ? '' : 'Connection: keep-alive\r\n'
    head = Buffer.from(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: text/plain\r\n${connection}Content-Length: `)
    HEADS.set(key, head)
  }
  for (let i = 0; i < head.length; i++) out[at + i] = head[i]
  at = writeDecimal(out, at + head.length, length)
  out[at] = 13
  out[at + 1] = 10
  out[at + 2] = 13
  out[at + 3] = 10
  return at + 4
}

/** Bytes a response head takes at most. */
export const RESPONSE_HEAD_MAX = 128
