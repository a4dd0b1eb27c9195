/**
 * HTTP/1.x request heads, parsed from bytes: the request line, the headers the tracker reads, and
 * the limits that keep a head small. Pure: no sockets, no state beyond the caller's reusable
 * result object. Nothing here throws on any input.
 */

export const enum HeadStatus {
  /** A complete head was parsed into the result. */
  Ok = 0,
  /** No end of head yet: read more (the bytes so far are within the limits). */
  Incomplete = 1,
  /** The request line is longer than allowed (414). */
  LineTooLong = 2,
  /** The head is larger than allowed or has too many headers (431). */
  HeadTooLarge = 3,
  /** Not an HTTP/1.x request (400). */
  Malformed = 4,
}

export interface HeadLimits {
  maxLineBytes: number
  maxHeadBytes: number
  maxHeaders: number
}

const CR = 13
const LF = 10
const SP = 32
const COLON = 58
const QUESTION = 63

/** Lower-case ASCII names compared against header names. */
const CONNECTION = Buffer.from('connection')
const CONTENT_LENGTH = Buffer.from('content-length')
const TRANSFER_ENCODING = Buffer.from('transfer-encoding')

export class RequestHead {
  /** Offset just past the blank line that ends the head. */
  headEnd = 0
  methodStart = 0
  methodEnd = 0
  /** The path, without the query. */
  pathStart = 0
  pathEnd = 0
  /** The query after `?` (empty if none); -1 when the target had no `?`. */
  queryStart = -1
  queryEnd = -1
  /** HTTP/1.1 (true) or HTTP/1.0 (false). */
  http11 = true
  /** From the Connection header: 1 keep-alive, 0 close, -1 not given. */
  connection = -1
  /** Content-Length, or -1; chunked bodies are refused by the caller. */
  contentLength = -1
  chunked = false
  /** The value of the configured client-IP header (last occurrence), or -1. */
  ipHeaderStart = -1
  ipHeaderEnd = -1

  /** Whether the connection stays open after the response, by the HTTP/1.x rules. */
  keepAlive(): boolean {
    return this.connection === -1 ? this.http11 : this.connection === 1
  }
}

/** Bytes a header name may hold (RFC 9110 5.6.2 tchar). */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1
/**
 * Bytes a header value may hold (RFC 9110 5.5): tab, visible ASCII, space and obs-text. Any other
 * control byte (a NUL, a CR not followed by LF) is refused, so that no proxy in front of the
 * tracker can read the message boundaries differently (RFC 9112 2.2).
 */
const FIELD_VALUE = new Uint8Array(256)
FIELD_VALUE[9] = 1
for (let c = 0x20; c < 0x100; c++) if (c !== 0x7f) FIELD_VALUE[c] = 1

function lowerEquals(buf: Uint8Array, start: number, end: number, lower: Uint8Array): boolean {
  if (end - start !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower[i]) return false
  }
  return true
}

function containsToken(buf: Uint8Array, start: number, end: number, token: string): boolean {
  // Connection values are comma-separated tokens; compare case-insensitively.
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start)
    .toString('latin1')
    .toLowerCase()
  return text.split(',').some(t => t.trim() === token)
}

/**
 * Parses the request head that starts at `buf[start]` and ends before `end` (the bytes received).
 * `ipHeader` is the lower-case name of the reverse-proxy header to capture, if any.
 */
export function parseHead(buf: Uint8Array, start: number, end: number, limits: HeadLimits, ipHeader: Uint8Array | null, out: RequestHead): HeadStatus {
  // Tolerate blank lines before a request (RFC 9112 2.2).
  while (start < end && (buf[start] === CR || buf[start] === LF)) start++
  // Request line.
  let lineEnd = -1
  const lineLimit = Math.min(end, start + limits.maxLineBytes + 2)
  for (let i = start; i < lineLimit; i++) {
    if (buf[i] === LF) {
      lineEnd = i
      break
    }
  }
  if (lineEnd < 0) return end - start > limits.maxLineBytes + 1 ? HeadStatus.LineTooLong : HeadStatus.Incomplete
  const lineStop = lineEnd > start && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
  let i = start
  while (i < lineStop && buf[i] !== SP) {
    const c = buf[i]
    if (c < 65 || c > 90) return HeadStatus.Malformed
    i++
  }
  if (i === start || i >= lineStop) return HeadStatus.Malformed
  out.methodStart = start
  out.methodEnd = i
  const targetStart = i + 1
  let targetEnd = targetStart
  while (targetEnd < lineStop && buf[targetEnd] !== SP) {
    // Control bytes (a NUL, a bare CR) have no place in a request target.
    const c = buf[targetEnd]
    if (c < 0x21 || c === 0x7f) return HeadStatus.Malformed
    targetEnd++
  }
  if (targetEnd === targetStart || targetEnd >= lineStop) return HeadStatus.Malformed
  // "HTTP/1.0" or "HTTP/1.1"
  const v = targetEnd + 1
  if (
    lineStop - v !== 8 ||
    buf[v] !== 72 ||
    buf[v + 1] !== 84 ||
    buf[v + 2] !== 84 ||
    buf[v + 3] !== 80 ||
    buf[v + 4] !== 47 ||
    buf[v + 5] !== 49 ||
    buf[v + 6] !== 46 ||
    (buf[v + 7] !== 48 && buf[v + 7] !== 49)
  ) {
    return HeadStatus.Malformed
  }
  out.http11 = buf[v + 7] === 49
  out.pathStart = targetStart
  out.queryStart = out.queryEnd = -1
  let q = targetStart
  while (q < targetEnd && buf[q] !== QUESTION) q++
  out.pathEnd = q
  if (q < targetEnd) {
    out.queryStart = q + 1
    out.queryEnd = targetEnd
  }
  // Headers.
  out.connection = -1
  out.contentLength = -1
  out.chunked = false
  out.ipHeaderStart = out.ipHeaderEnd = -1
  let headers = 0
  let pos = lineEnd + 1
  const headLimit = start + limits.maxHeadBytes
  for (;;) {
    let eol = -1
    const stop = Math.min(end, headLimit)
    for (let k = pos; k < stop; k++) {
      if (buf[k] === LF) {
        eol = k
        break
      }
    }
    if (eol < 0) return end >= headLimit ? HeadStatus.HeadTooLarge : HeadStatus.Incomplete
    const stopAt = eol > pos && buf[eol - 1] === CR ? eol - 1 : eol
    if (stopAt === pos) {
      out.headEnd = eol + 1
      return HeadStatus.Ok
    }
    if (++headers > limits.maxHeaders) return HeadStatus.HeadTooLarge
    // A name is one token (no spaces: obsolete line folding is refused too, RFC 9112 5.1, 5.2).
    let colon = pos
    while (colon < stopAt && TCHAR[buf[colon]] === 1) colon++
    if (colon === pos || colon === stopAt || buf[colon] !== COLON) return HeadStatus.Malformed
    for (let k = colon + 1; k < stopAt; k++) if (FIELD_VALUE[buf[k]] === 0) return HeadStatus.Malformed
    let vs = colon + 1
    while (vs < stopAt && (buf[vs] === SP || buf[vs] === 9)) vs++
    let ve = stopAt
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === 9)) ve--
    const nameLength = colon - pos
    if (nameLength === 10 && lowerEquals(buf, pos, colon, CONNECTION)) {
      if (containsToken(buf, vs, ve, 'close')) out.connection = 0
      else if (containsToken(buf, vs, ve, 'keep-alive')) out.connection = 1
    } else if (nameLength === 14 && lowerEquals(buf, pos, colon, CONTENT_LENGTH)) {
      let n = 0
      if (ve === vs || ve - vs > 15) return HeadStatus.Malformed
      for (let k = vs; k < ve; k++) {
        const d = buf[k] - 48
        if (d < 0 || d > 9) return HeadStatus.Malformed
        n = n * 10 + d
      }
      if (out.contentLength >= 0 && out.contentLength !== n) return HeadStatus.Malformed
      out.contentLength = n
    } else if (nameLength === 17 && lowerEquals(buf, pos, colon, TRANSFER_ENCODING)) {
      out.chunked = true
    } else if (ipHeader && lowerEquals(buf, pos, colon, ipHeader)) {
      out.ipHeaderStart = vs
      out.ipHeaderEnd = ve
    }
    pos = eol + 1
  }
}

/**
 * The value of the header named `lowerName` (lower-case bytes; its first occurrence, without the
 * spaces around it) in a head that parseHead accepted, buf[start, headEnd); undefined when absent.
 * For the rare heads that need more than RequestHead keeps (a WebSocket upgrade).
 */
export function headerValue(buf: Uint8Array, start: number, headEnd: number, lowerName: Uint8Array): string | undefined {
  let pos = start
  while (pos < headEnd && buf[pos] !== LF) pos++
  pos++
  while (pos < headEnd) {
    let eol = pos
    while (eol < headEnd && buf[eol] !== LF) eol++
    const stopAt = eol > pos && buf[eol - 1] === CR ? eol - 1 : eol
    if (stopAt === pos) return undefined
    let colon = pos
    while (colon < stopAt && buf[colon] !== COLON) colon++
    if (lowerEquals(buf, pos, colon, lowerName)) {
      let vs = colon + 1
      while (vs < stopAt && (buf[vs] === SP || buf[vs] === 9)) vs++
      let ve = stopAt
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === 9)) ve--
      return Buffer.from(buf.buffer, buf.byteOffset + vs, ve - vs).toString('latin1')
    }
    pos = eol + 1
  }
  return undefined
}
