/**
 * WebSocket framing (RFC 6455), shared by the tracker's WebSocket connections (WsSocket) and the
 * load generator's client (LoadSocket): the handshake's accept key, frame headers written into a
 * given buffer and parsed from one, and masking. Pure and allocation-free: no sockets, no
 * objects per frame (a parse fills a FrameHeader the caller reuses).
 *
 * No extension is ever negotiated (permessage-deflate included), so RSV bits are an error.
 */
import {createHash} from 'node:crypto'
import bufferUtil from 'bufferutil'

/** The handshake's GUID (RFC 6455 section 1.3). */
export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The FIN bit of a frame's first byte: the last frame of its message. */
export const FIN = 0x80

/** Frame opcodes (RFC 6455 section 5.2); 8 and up are control frames. */
export const OP_CONTINUATION = 0
export const OP_TEXT = 1
export const OP_BINARY = 2
export const OP_CLOSE = 8
export const OP_PING = 9
export const OP_PONG = 10

/** Close codes (RFC 6455 section 7.4.1). */
export const CLOSE_NORMAL = 1000
export const CLOSE_PROTOCOL_ERROR = 1002
export const CLOSE_INVALID_DATA = 1007
export const CLOSE_TOO_BIG = 1009

/** The largest payload of a control frame (RFC 6455 section 5.5). */
export const MAX_CONTROL_PAYLOAD = 125

/** Whether `key` is a Sec-WebSocket-Key: 16 bytes in base64. */
export function isWebSocketKey(key: unknown): key is string {
  return typeof key === 'string' && /^[+/0-9A-Za-z]{22}==$/.test(key)
}

/** The Sec-WebSocket-Accept that answers `key`. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64')
}

/** Whether a close frame may carry `code` (RFC 6455 section 7.4: defined, not reserved for local use). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

// ---------------------------------------------------------------------------------------------
// Headers

/** Bytes of a frame header for a payload of `length` bytes (4 more when masked). */
export function frameHeaderLength(length: number, masked = false): number {
  return (length < 126 ? 2 : length < 65_536 ? 4 : 10) + (masked ? 4 : 0)
}

/**
 * Writes a frame header at `at`: `first` is the first byte (FIN | RSV bits | opcode), `mask` the
 * masking key as a 32-bit number, or -1 for an unmasked frame (a server's). Returns where the
 * payload starts.
 */
export function writeFrameHeader(target: Uint8Array, at: number, first: number, length: number, mask = -1): number {
  const m = mask < 0 ? 0 : 0x80
  target[at] = first
  let p: number
  if (length < 126) {
    target[at + 1] = m | length
    p = at + 2
  } else if (length < 65_536) {
    target[at + 1] = m | 126
    target[at + 2] = length >>> 8
    target[at + 3] = length & 0xff
    p = at + 4
  } else {
    target[at + 1] = m | 127
    writeU32(target, at + 2, Math.floor(length / 2 ** 32))
    writeU32(target, at + 6, length >>> 0)
    p = at + 10
  }
  if (mask < 0) return p
  writeU32(target, p, mask)
  return p + 4
}

function writeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value >>> 24
  target[at + 1] = (value >>> 16) & 0xff
  target[at + 2] = (value >>> 8) & 0xff
  target[at + 3] = value & 0xff
}

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0

export const enum FrameStatus {
  /** The header is whole; the frame is whole once `headerLength + length` bytes are there. */
  Ok = 0,
  /** The header is not whole yet: it takes `need` bytes (what it holds so far is filled in). */
  NeedMore = 1,
  /** RSV bits set: no extension is negotiated. */
  ReservedBits = 2,
  /** A client's frame unmasked, or a server's masked (RFC 6455 section 5.1). */
  WrongMasking = 3,
  /** A control frame fragmented or longer than 125 bytes (RFC 6455 section 5.5). */
  BadControlFrame = 4,
}

/** Filled by parseFrameHeader; create one and reuse it. */
export class FrameHeader {
  fin = false
  /** The RSV bits, in place (0x70 of the first byte). */
  rsv = 0
  opcode = 0
  masked = false
  /**
   * The payload's length; -1 while its bytes are not there. Past 2^53 it reads as Infinity: too
   * big for anyone (the 64-bit form's top bit, which must be 0, is not checked apart).
   */
  length = -1
  /** Bytes from the frame's start to its payload, masking key included. */
  headerLength = 0
  /** With NeedMore: the header bytes needed, counted from the frame's start. */
  need = 0
}

/**
 * Reads the header of the frame at data[pos, end). `fromClient`: frames must be masked (a
 * server reading a client's), else must not be (a client reading a server's). The header is
 * read in the order its bytes come, and every check is made as soon as its bytes are there, so
 * that a caller can refuse a frame before the rest of its header arrives: with NeedMore, the
 * first byte's fields and `masked` are set once 2 bytes are there, and `length` once its
 * extended bytes are (else it is -1). The opcode's meaning is not checked. Never throws.
 */
export function parseFrameHeader(data: Uint8Array, pos: number, end: number, fromClient: boolean, out: FrameHeader): FrameStatus {
  const available = end - pos
  out.length = -1
  if (available < 2) {
    out.need = 2
    return FrameStatus.NeedMore
  }
  const b0 = data[pos]
  const b1 = data[pos + 1]
  out.fin = (b0 & 0x80) !== 0
  out.rsv = b0 & 0x70
  out.opcode = b0 & 0x0f
  out.masked = (b1 & 0x80) !== 0
  if (out.rsv !== 0) return FrameStatus.ReservedBits
  if (out.masked !== fromClient) return FrameStatus.WrongMasking
  let length = b1 & 0x7f
  let header = 2
  if (length === 126) {
    header = 4
    if (available < 4) {
      out.need = 4
      return FrameStatus.NeedMore
    }
    length = (data[pos + 2] << 8) | data[pos + 3]
  } else if (length === 127) {
    header = 10
    if (available < 10) {
      out.need = 10
      return FrameStatus.NeedMore
    }
    const high = u32(data, pos + 2)
    length = high > 0x1f_ffff ? Infinity : high * 2 ** 32 + u32(data, pos + 6)
  }
  if (out.masked) header += 4
  out.length = length
  out.headerLength = header
  if (out.opcode >= OP_CLOSE && (!out.fin || length > MAX_CONTROL_PAYLOAD)) return FrameStatus.BadControlFrame
  if (available < header) {
    out.need = header
    return FrameStatus.NeedMore
  }
  return FrameStatus.Ok
}

// ---------------------------------------------------------------------------------------------
// Masking

/** The masking key handed to the native helper (copied rather than viewed: no object per frame). */
const MASK = Buffer.alloc(4)

/**
 * XORs `payload` in place with the 4-byte masking key at key[keyAt, keyAt + 4) (RFC 6455
 * section 5.3): masks and unmasks alike.
 */
export function maskPayload(payload: Buffer, key: Uint8Array, keyAt: number): void {
  const length = payload.length
  if (length >= 32) {
    MASK[0] = key[keyAt]
    MASK[1] = key[keyAt + 1]
    MASK[2] = key[keyAt + 2]
    MASK[3] = key[keyAt + 3]
    bufferUtil.unmask(payload, MASK)
  } else {
    // The native call costs more than it saves on short frames (as in `ws`).
    for (let i = 0; i < length; i++) payload[i] ^= key[keyAt + (i & 3)]
  }
}
