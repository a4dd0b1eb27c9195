/**
 * Every frame the workers send each other over the mesh: its type number, its layout, and its
 * encode/decode pair. The mesh (mesh.ts) carries `[u32 length][u8 type][payload]`; this module
 * owns what is in the payload. Integers are little-endian unless a layout says otherwise.
 *
 * Encoders write into the caller's buffer at an offset and return the bytes written (the mesh
 * copies the payload, so one reused buffer serves every frame of a kind). Decoders fill a reused
 * object and return false for a frame that is too short or holds values no encoder writes: a
 * frame is never read past its length, and a decoder never throws.
 *
 * All workers of a tracker run the same build, so a layout may change between releases.
 * This file is long on purpose: every frame is here, one section per sender.
 */
import type {AnnounceQuery} from '../protocol/http/index.js'
import {ANNOUNCE_REQUEST_LENGTH} from '../protocol/udp/index.js'

const EMPTY = Buffer.alloc(0)

/**
 * Frame type numbers. Frames any protocol sends are numbered below 16; each protocol's own from
 * 16 (UDP), 17 (HTTP) and 33 (WebSocket). A number once retired is not given again.
 * Retired: 19 (HTTP full-scrape part, whole) and 36 (WebSocket full-scrape part, whole), now
 * sent in chunks as `fullScrapeChunk`.
 */
export const FRAME = {
  /** Scrape router: the hashes of one scrape that the receiver owns. */
  scrapeRequest: 2,
  /** Scrape router: their counts, back to the asking worker (a mesh answer). */
  scrapeResponse: 3,
  /** A chunk of one worker's full-scrape part (full-scrape.ts). */
  fullScrapeChunk: 4,
  /** UDP: an announce, to its torrent's owner. */
  udpAnnounce: 16,
  /** HTTP: an announce, to its torrent's owner. */
  httpAnnounce: 17,
  /** HTTP: the announce's reply body, back to the client's worker (a mesh answer). */
  httpAnnounceReply: 18,
  /** WebSocket: an announce message as it came, to its torrent's owner. */
  wsRequest: 33,
  /** WebSocket: a message for a connection of the receiver's (a mesh answer). */
  wsDeliver: 34,
  /** WebSocket: a closed connection's peer, to leave its torrent's swarm (a mesh answer). */
  wsRemove: 35,
} as const

// ---------------------------------------------------------------------------------------------
// Scrape router (scrape-router.ts)

/**
 * Scrape request: id (u32), count (u16), then per hash its index in the scrape (u16) and the
 * info hash (20 bytes).
 */
const SCRAPE_HEAD = 6
const SCRAPE_REQUEST_ENTRY = 22
const SCRAPE_RESPONSE_ENTRY = 14

/** Bytes of a scrape request for `hashes` info hashes. */
export const scrapeRequestBytes = (hashes: number): number => SCRAPE_HEAD + SCRAPE_REQUEST_ENTRY * hashes

/**
 * Scrape response: id (u32), count (u16), then per hash its index in the scrape (u16), seeders,
 * completed and leechers (u32 each).
 */
export const scrapeResponseBytes = (hashes: number): number => SCRAPE_HEAD + SCRAPE_RESPONSE_ENTRY * hashes

/** The head of a scrape request or response: the scrape's id and the entries that follow. */
export function writeScrapeHead(out: Buffer, at: number, id: number, count: number): void {
  out.writeUInt32LE(id, at)
  out.writeUInt16LE(count, at + 4)
}

/** Entry `k` of the request at `at`: `index` in the scrape, the hash at `hash[hashOffset]`. */
export function writeScrapeRequestEntry(out: Buffer, at: number, k: number, index: number, hash: Uint8Array, hashOffset: number): void {
  const to = at + SCRAPE_HEAD + SCRAPE_REQUEST_ENTRY * k
  out.writeUInt16LE(index, to)
  for (let i = 0; i < 20; i++) out[to + 2 + i] = hash[hashOffset + i]
}

export function writeScrapeResponseEntry(out: Buffer, at: number, k: number, index: number, seeders: number, completed: number, leechers: number): void {
  const to = at + SCRAPE_HEAD + SCRAPE_RESPONSE_ENTRY * k
  out.writeUInt16LE(index, to)
  out.writeUInt32LE(seeders, to + 2)
  out.writeUInt32LE(completed, to + 6)
  out.writeUInt32LE(leechers, to + 10)
}

/** A decoded scrape request or response: its head, and where entry `k` lies. */
class ScrapeFrame {
  buf: Buffer = EMPTY
  id = 0
  count = 0
  private at = 0

  constructor(private readonly entryBytes: number) {}

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < SCRAPE_HEAD) return false
    const count = buf.readUInt16LE(offset + 4)
    if (length < SCRAPE_HEAD + this.entryBytes * count) return false
    this.buf = buf
    this.id = buf.readUInt32LE(offset)
    this.count = count
    this.at = offset + SCRAPE_HEAD
    return true
  }

  /** Where entry `k` starts in `buf`; every entry starts with its index in the scrape (u16). */
  protected entry(k: number): number {
    return this.at + this.entryBytes * k
  }

  /** The index in the scrape of entry `k`. */
  index(k: number): number {
    return this.buf.readUInt16LE(this.entry(k))
  }
}

export class ScrapeRequestFrame extends ScrapeFrame {
  constructor() {
    super(SCRAPE_REQUEST_ENTRY)
  }

  /** Where entry `k`'s info hash lies in `buf`. */
  hashOffset(k: number): number {
    return this.entry(k) + 2
  }
}

export class ScrapeResponseFrame extends ScrapeFrame {
  constructor() {
    super(SCRAPE_RESPONSE_ENTRY)
  }

  seeders(k: number): number {
    return this.buf.readUInt32LE(this.entry(k) + 2)
  }

  completed(k: number): number {
    return this.buf.readUInt32LE(this.entry(k) + 6)
  }

  leechers(k: number): number {
    return this.buf.readUInt32LE(this.entry(k) + 10)
  }
}

// ---------------------------------------------------------------------------------------------
// Full scrape (full-scrape.ts)

/**
 * Full-scrape chunk: generation (u32), chunk index (u32), flags (u8: 1 = the part's last
 * chunk), then the chunk's bytes. The sender is the mesh link's; a worker's shard is its index.
 */
export const FULL_SCRAPE_CHUNK_HEAD = 9

export function writeFullScrapeChunk(
  out: Buffer,
  at: number,
  generation: number,
  index: number,
  last: boolean,
  part: Uint8Array,
  start: number,
  end: number,
): number {
  out.writeUInt32LE(generation, at)
  out.writeUInt32LE(index, at + 4)
  out[at + 8] = last ? 1 : 0
  out.set(part.subarray(start, end), at + FULL_SCRAPE_CHUNK_HEAD)
  return FULL_SCRAPE_CHUNK_HEAD + end - start
}

export class FullScrapeChunkFrame {
  generation = 0
  index = 0
  last = false
  /** The chunk's bytes: `buf[start, end)`. */
  start = 0
  end = 0

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < FULL_SCRAPE_CHUNK_HEAD || buf[offset + 8] > 1) return false
    this.generation = buf.readUInt32LE(offset)
    this.index = buf.readUInt32LE(offset + 4)
    this.last = buf[offset + 8] === 1
    this.start = offset + FULL_SCRAPE_CHUNK_HEAD
    this.end = offset + length
    return true
  }
}

// ---------------------------------------------------------------------------------------------
// UDP (udp/forwarding.ts)

/**
 * UDP announce: the socket family it came in on (u8: 0 IPv4, 1 IPv6), the client's port (u16,
 * big-endian), its IP version (u8: 4 or 6), its address in 16 bytes (an IPv4 address in the
 * first 4, zeros after), then the announce's fixed 98 bytes, whatever the datagram's length.
 */
const UDP_ANNOUNCE_HEAD = 20
export const UDP_ANNOUNCE_BYTES = UDP_ANNOUNCE_HEAD + ANNOUNCE_REQUEST_LENGTH

/** `ip` holds the address's own 4 or 16 bytes; `request[requestOffset]` the announce datagram. */
export function writeUdpAnnounce(
  out: Buffer,
  at: number,
  socketFamily: 0 | 1,
  port: number,
  ipFamily: 4 | 6,
  ip: Uint8Array,
  request: Uint8Array,
  requestOffset: number,
): number {
  out[at] = socketFamily
  out.writeUInt16BE(port, at + 1)
  out[at + 3] = ipFamily
  const n = ipFamily === 4 ? 4 : 16
  for (let i = 0; i < 16; i++) out[at + 4 + i] = i < n ? ip[i] : 0
  for (let i = 0; i < ANNOUNCE_REQUEST_LENGTH; i++) out[at + UDP_ANNOUNCE_HEAD + i] = request[requestOffset + i]
  return UDP_ANNOUNCE_BYTES
}

export class UdpAnnounceFrame {
  socketFamily: 0 | 1 = 0
  port = 0
  ipFamily: 4 | 6 = 4
  /** Where the address lies in the frame's buffer (4 or 16 bytes by `ipFamily`). */
  ipOffset = 0
  /** The announce datagram: `buf[requestStart, requestEnd)`. */
  requestStart = 0
  requestEnd = 0

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < UDP_ANNOUNCE_BYTES) return false
    const socketFamily = buf[offset]
    const ipFamily = buf[offset + 3]
    if (socketFamily > 1 || (ipFamily !== 4 && ipFamily !== 6)) return false
    this.socketFamily = socketFamily as 0 | 1
    this.port = buf.readUInt16BE(offset + 1)
    this.ipFamily = ipFamily
    this.ipOffset = offset + 4
    this.requestStart = offset + UDP_ANNOUNCE_HEAD
    this.requestEnd = offset + length
    return true
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP (http/forwarding.ts)

/**
 * HTTP announce: id (u32), IP version (u8: 4 or 6), address (16 bytes; IPv4 in the first 4),
 * port (u16), event (u8), flags (u8: 1 left=0, 2 compact, 4 no_peer_id), numwant (u16; 0xffff
 * when not given, at most 0xfffe), info hash (20), peer id (20).
 */
export const HTTP_ANNOUNCE_BYTES = 67
const NUMWANT_NONE = 0xffff

/** `ip` holds 16 bytes (an IPv4 address in the first 4). */
export function writeHttpAnnounce(out: Buffer, at: number, id: number, q: AnnounceQuery, ipFamily: 4 | 6, ip: Uint8Array): number {
  out.writeUInt32LE(id, at)
  out[at + 4] = ipFamily
  for (let i = 0; i < 16; i++) out[at + 5 + i] = ip[i]
  out.writeUInt16LE(q.port, at + 21)
  out[at + 23] = q.event
  out[at + 24] = (q.leftIsZero ? 1 : 0) | (q.compact ? 2 : 0) | (q.noPeerId ? 4 : 0)
  out.writeUInt16LE(q.numWant < 0 ? NUMWANT_NONE : Math.min(q.numWant, NUMWANT_NONE - 1), at + 25)
  for (let i = 0; i < 20; i++) out[at + 27 + i] = q.infoHash[i]
  for (let i = 0; i < 20; i++) out[at + 47 + i] = q.peerId[i]
  return HTTP_ANNOUNCE_BYTES
}

export class HttpAnnounceFrame {
  id = 0
  ipFamily: 4 | 6 = 4
  readonly ip = new Uint8Array(16)

  /** Fills `q` (and this frame's id and address). */
  decode(buf: Buffer, offset: number, length: number, q: AnnounceQuery): boolean {
    const ipFamily = buf[offset + 4]
    if (length < HTTP_ANNOUNCE_BYTES || (ipFamily !== 4 && ipFamily !== 6) || buf[offset + 24] > 7) return false
    this.id = buf.readUInt32LE(offset)
    this.ipFamily = ipFamily
    for (let i = 0; i < 16; i++) this.ip[i] = buf[offset + 5 + i]
    q.port = buf.readUInt16LE(offset + 21)
    q.event = buf[offset + 23]
    const flags = buf[offset + 24]
    q.leftIsZero = (flags & 1) !== 0
    q.compact = (flags & 2) !== 0
    q.noPeerId = (flags & 4) !== 0
    const numWant = buf.readUInt16LE(offset + 25)
    q.numWant = numWant === NUMWANT_NONE ? -1 : numWant
    for (let i = 0; i < 20; i++) q.infoHash[i] = buf[offset + 27 + i]
    for (let i = 0; i < 20; i++) q.peerId[i] = buf[offset + 47 + i]
    return true
  }
}

/** HTTP announce reply: the announce's id (u32), then the reply body. */
export const HTTP_ANNOUNCE_REPLY_HEAD = 4

export function writeHttpAnnounceReply(out: Buffer, at: number, id: number, body: Uint8Array, length: number): number {
  out.writeUInt32LE(id, at)
  out.set(body.subarray(0, length), at + HTTP_ANNOUNCE_REPLY_HEAD)
  return HTTP_ANNOUNCE_REPLY_HEAD + length
}

export class HttpAnnounceReplyFrame {
  id = 0
  /** The body: `buf[bodyStart, bodyStart + bodyLength)`. */
  bodyStart = 0
  bodyLength = 0

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < HTTP_ANNOUNCE_REPLY_HEAD) return false
    this.id = buf.readUInt32LE(offset)
    this.bodyStart = offset + HTTP_ANNOUNCE_REPLY_HEAD
    this.bodyLength = length - HTTP_ANNOUNCE_REPLY_HEAD
    return true
  }
}

// ---------------------------------------------------------------------------------------------
// WebSocket (ws/forwarding.ts)

/** WebSocket frames carrying a message start with the connection's id (u32) and one byte. */
export const WS_MESSAGE_HEAD = 5

/**
 * WebSocket request: the connection's id on the sending worker (u32), its socket family (u8:
 * 0 IPv4, 1 IPv6), then the message's bytes as they came (no re-encoding of the text).
 */
export function writeWsRequest(out: Buffer, at: number, connId: number, family: 0 | 1, message: Uint8Array, start: number, end: number): number {
  out.writeUInt32LE(connId, at)
  out[at + 4] = family
  out.set(message.subarray(start, end), at + WS_MESSAGE_HEAD)
  return WS_MESSAGE_HEAD + end - start
}

export class WsRequestFrame {
  connId = 0
  family: 0 | 1 = 0
  /** The message: `buf[start, end)`. */
  start = 0
  end = 0

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < WS_MESSAGE_HEAD || buf[offset + 4] > 1) return false
    this.connId = buf.readUInt32LE(offset)
    this.family = buf[offset + 4] as 0 | 1
    this.start = offset + WS_MESSAGE_HEAD
    this.end = offset + length
    return true
  }
}

/**
 * WebSocket delivery: the receiving worker's connection id (u32), the message's response type
 * (u8, an index into the worker's response types, for its metrics), then the message (UTF-8).
 */
export function writeWsDeliver(out: Buffer, at: number, connId: number, type: number, message: Uint8Array, start: number, end: number): number {
  out.writeUInt32LE(connId, at)
  out[at + 4] = type
  out.set(message.subarray(start, end), at + WS_MESSAGE_HEAD)
  return WS_MESSAGE_HEAD + end - start
}

/** The same with the message as text; `out` must hold `WS_MESSAGE_HEAD + Buffer.byteLength(text)` from `at`. */
export function writeWsDeliverText(out: Buffer, at: number, connId: number, type: number, text: string): number {
  out.writeUInt32LE(connId, at)
  out[at + 4] = type
  return WS_MESSAGE_HEAD + out.write(text, at + WS_MESSAGE_HEAD, 'utf8')
}

export class WsDeliverFrame {
  connId = 0
  type = 0
  /** The message: `buf[start, end)`. */
  start = 0
  end = 0

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < WS_MESSAGE_HEAD) return false
    this.connId = buf.readUInt32LE(offset)
    this.type = buf[offset + 4]
    this.start = offset + WS_MESSAGE_HEAD
    this.end = offset + length
    return true
  }
}

/**
 * WebSocket peer removal: the connection's id on the sending worker (u32), its socket family
 * (u8), the info hash and the peer id (20 bytes each; the swarm's binary strings, latin1).
 */
export const WS_REMOVE_BYTES = 45

export function writeWsRemove(out: Buffer, at: number, connId: number, family: 0 | 1, infoHash: string, peerId: string): number {
  out.writeUInt32LE(connId, at)
  out[at + 4] = family
  out.write(infoHash, at + 5, 20, 'latin1')
  out.write(peerId, at + 25, 20, 'latin1')
  return WS_REMOVE_BYTES
}

export class WsRemoveFrame {
  connId = 0
  family: 0 | 1 = 0
  infoHash = ''
  peerId = ''

  decode(buf: Buffer, offset: number, length: number): boolean {
    if (length < WS_REMOVE_BYTES || buf[offset + 4] > 1) return false
    this.connId = buf.readUInt32LE(offset)
    this.family = buf[offset + 4] as 0 | 1
    this.infoHash = buf.toString('latin1', offset + 5, offset + 25)
    this.peerId = buf.toString('latin1', offset + 25, offset + 45)
    return true
  }
}
