/**
 * BEP 15 messages <-> bytes. Pure: no sockets, no state. The server side parses into a reusable
 * object and writes into caller buffers with no allocation; the client side (load tester,
 * tests) builds requests and reads responses.
 */

import {MESSAGE} from '../messages.js'

export const PROTOCOL_ID = 0x41727101980n
const PROTOCOL_ID_HI = 0x417
const PROTOCOL_ID_LO = 0x27101980

export const ACTION_CONNECT = 0
export const ACTION_ANNOUNCE = 1
export const ACTION_SCRAPE = 2
export const ACTION_ERROR = 3

export const EVENT_NONE = 0
export const EVENT_COMPLETED = 1
export const EVENT_STARTED = 2
export const EVENT_STOPPED = 3

export const ANNOUNCE_REQUEST_LENGTH = 98

const error = (text: string): Buffer => Buffer.from(text, 'latin1')
export const ERROR_PORT_ZERO = error(MESSAGE.portZero)
export const ERROR_FULL_SCRAPE = error(MESSAGE.fullScrape)
export const ERROR_INFO_HASH_LIST = error(MESSAGE.infoHashList)
export const ERROR_INFO_HASH_NOT_ALLOWED = error(MESSAGE.infoHashNotAllowed)
export const ERROR_TRACKER_FULL = error(MESSAGE.torrentLimit)
export const ERROR_BUSY = error(MESSAGE.busy)

export const enum ParseStatus {
  /** A well-formed request. */
  Ok = 0,
  /** Not worth an answer: no reply at all. */
  Drop = 1,
  /** Malformed in a way the client should hear about (only if its connection id is valid). */
  Error = 2,
}

/** Filled by parseRequest; create one and reuse it. Offsets point into the parsed buffer. */
export class ParsedRequest {
  action = 0
  transactionId = 0
  infoHashOffset = 0
  peerIdOffset = 0
  /** Bytes left to download; exact up to 2^53, which is all that matters. */
  left = 0
  leftIsZero = false
  downloaded = 0
  uploaded = 0
  event = 0
  /** The `ip` field: ignored by the server (the packet's source is the peer's address). */
  ipField = 0
  key = 0
  numWant = 0
  port = 0
  scrapeOffset = 0
  scrapeCount = 0
  /** Set with ParseStatus.Error: the message to send. */
  errorMessage: Buffer | null = null
}

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
const i32 = (b: Uint8Array, o: number): number => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
/** A u64 as a Number (precise up to 2^53; beyond that only "non-zero" matters). */
const u64 = (b: Uint8Array, o: number): number => u32(b, o) * 4294967296 + u32(b, o + 4)

export function parseRequest(buf: Uint8Array, length: number, maxScrapeTorrents: number, out: ParsedRequest): ParseStatus {
  if (length < 16) return ParseStatus.Drop
  const action = u32(buf, 8)
  out.action = action
  out.transactionId = u32(buf, 12)
  out.errorMessage = null
  switch (action) {
    case ACTION_CONNECT:
      return u32(buf, 0) === PROTOCOL_ID_HI && u32(buf, 4) === PROTOCOL_ID_LO ? ParseStatus.Ok : ParseStatus.Drop
    case ACTION_ANNOUNCE: {
      if (length < ANNOUNCE_REQUEST_LENGTH) return ParseStatus.Drop
      const event = u32(buf, 80)
      if (event > 3) return ParseStatus.Drop
      out.infoHashOffset = 16
      out.peerIdOffset = 36
      out.downloaded = u64(buf, 56)
      out.leftIsZero = u32(buf, 64) === 0 && u32(buf, 68) === 0
      out.left = u64(buf, 64)
      out.uploaded = u64(buf, 72)
      out.event = event
      out.ipField = u32(buf, 84)
      out.key = u32(buf, 88)
      out.numWant = i32(buf, 92)
      out.port = (buf[96] << 8) | buf[97]
      if (out.port === 0) {
        out.errorMessage = ERROR_PORT_ZERO
        return ParseStatus.Error
      }
      return ParseStatus.Ok
    }
    case ACTION_SCRAPE: {
      const bytes = length - 16
      if (bytes === 0) {
        out.errorMessage = ERROR_FULL_SCRAPE
        return ParseStatus.Error
      }
      if (bytes % 20 !== 0) {
        out.errorMessage = ERROR_INFO_HASH_LIST
        return ParseStatus.Error
      }
      out.scrapeOffset = 16
      // More hashes than allowed are cut off, not refused (as aquatic does).
      out.scrapeCount = Math.min(bytes / 20, maxScrapeTorrents)
      return ParseStatus.Ok
    }
    default:
      return ParseStatus.Drop
  }
}

function put32(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24
  out[o + 1] = v >>> 16
  out[o + 2] = v >>> 8
  out[o + 3] = v
}

/** Connect response header; the caller writes the 8-byte connection id at offset 8. */
export function writeConnectResponse(out: Uint8Array, transactionId: number): number {
  put32(out, 0, ACTION_CONNECT)
  put32(out, 4, transactionId)
  return 16
}

/** Announce response header (20 bytes); peers follow at offset 20. Counts are capped at i32. */
export function writeAnnounceHeader(out: Uint8Array, transactionId: number, interval: number, leechers: number, seeders: number): number {
  put32(out, 0, ACTION_ANNOUNCE)
  put32(out, 4, transactionId)
  put32(out, 8, interval)
  put32(out, 12, Math.min(leechers, 0x7fffffff))
  put32(out, 16, Math.min(seeders, 0x7fffffff))
  return 20
}

export function writeScrapeHeader(out: Uint8Array, transactionId: number): number {
  put32(out, 0, ACTION_SCRAPE)
  put32(out, 4, transactionId)
  return 8
}

/** Entry `index` of a scrape response: seeders, completed, leechers. */
export function writeScrapeEntry(out: Uint8Array, index: number, seeders: number, completed: number, leechers: number): void {
  const o = 8 + 12 * index
  put32(out, o, Math.min(seeders, 0x7fffffff))
  put32(out, o + 4, Math.min(completed, 0x7fffffff))
  put32(out, o + 8, Math.min(leechers, 0x7fffffff))
}

export function writeErrorResponse(out: Uint8Array, transactionId: number, message: Uint8Array): number {
  put32(out, 0, ACTION_ERROR)
  put32(out, 4, transactionId)
  out.set(message, 8)
  return 8 + message.length
}

// ---------------------------------------------------------------------------------------------
// Client side

export function writeConnectRequest(out: Uint8Array, transactionId: number): number {
  put32(out, 0, PROTOCOL_ID_HI)
  put32(out, 4, PROTOCOL_ID_LO)
  put32(out, 8, ACTION_CONNECT)
  put32(out, 12, transactionId)
  return 16
}

export interface AnnounceFields {
  connectionId: Uint8Array
  transactionId: number
  infoHash: Uint8Array
  peerId: Uint8Array
  downloaded: number
  left: number
  uploaded: number
  event: number
  ip?: number
  key?: number
  numWant: number
  port: number
}

function put64(out: Uint8Array, o: number, v: number): void {
  put32(out, o, Math.floor(v / 4294967296))
  put32(out, o + 4, v >>> 0)
}

export function writeAnnounceRequest(out: Uint8Array, f: AnnounceFields): number {
  out.set(f.connectionId.subarray(0, 8), 0)
  put32(out, 8, ACTION_ANNOUNCE)
  put32(out, 12, f.transactionId)
  out.set(f.infoHash.subarray(0, 20), 16)
  out.set(f.peerId.subarray(0, 20), 36)
  put64(out, 56, f.downloaded)
  put64(out, 64, f.left)
  put64(out, 72, f.uploaded)
  put32(out, 80, f.event)
  put32(out, 84, f.ip ?? 0)
  put32(out, 88, f.key ?? 0)
  put32(out, 92, f.numWant)
  out[96] = f.port >>> 8
  out[97] = f.port & 0xff
  return ANNOUNCE_REQUEST_LENGTH
}

export function writeScrapeRequest(out: Uint8Array, connectionId: Uint8Array, transactionId: number, infoHashes: Uint8Array[]): number {
  out.set(connectionId.subarray(0, 8), 0)
  put32(out, 8, ACTION_SCRAPE)
  put32(out, 12, transactionId)
  infoHashes.forEach((h, i) => out.set(h.subarray(0, 20), 16 + 20 * i))
  return 16 + 20 * infoHashes.length
}

export type UdpResponse =
  | {action: 0; transactionId: number; connectionId: Uint8Array}
  | {action: 1; transactionId: number; interval: number; leechers: number; seeders: number; peers: {ip: Uint8Array; port: number}[]}
  | {action: 2; transactionId: number; torrents: {seeders: number; completed: number; leechers: number}[]}
  | {action: 3; transactionId: number; message: string}

/** Parses any response; `peerSize` is 6 for a reply that came over IPv4, 18 over IPv6. Null if malformed. */
export function parseResponse(buf: Uint8Array, length: number, peerSize: 6 | 18): UdpResponse | null {
  if (length < 8) return null
  const action = u32(buf, 0)
  const transactionId = u32(buf, 4)
  switch (action) {
    case ACTION_CONNECT:
      return length < 16 ? null : {action, transactionId, connectionId: Uint8Array.from(buf.subarray(8, 16))}
    case ACTION_ANNOUNCE: {
      if (length < 20 || (length - 20) % peerSize !== 0) return null
      const peers: {ip: Uint8Array; port: number}[] = []
      for (let o = 20; o < length; o += peerSize) {
        peers.push({ip: Uint8Array.from(buf.subarray(o, o + peerSize - 2)), port: (buf[o + peerSize - 2] << 8) | buf[o + peerSize - 1]})
      }
      return {action, transactionId, interval: u32(buf, 8), leechers: u32(buf, 12), seeders: u32(buf, 16), peers}
    }
    case ACTION_SCRAPE: {
      if ((length - 8) % 12 !== 0) return null
      const torrents: {seeders: number; completed: number; leechers: number}[] = []
      for (let o = 8; o < length; o += 12) torrents.push({seeders: u32(buf, o), completed: u32(buf, o + 4), leechers: u32(buf, o + 8)})
      return {action, transactionId, torrents}
    }
    case ACTION_ERROR:
      return {action, transactionId, message: Buffer.from(buf.subarray(8, length)).toString('latin1')}
    default:
      return null
  }
}
