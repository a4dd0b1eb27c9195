/**
 * WebTorrent tracker messages (JSON over WebSocket). Pure: no sockets, no state.
 *
 * Incoming messages are read from their UTF-8 bytes by a small JSON scanner rather than
 * JSON.parse: it validates the fields a tracker uses and keeps the offers' and answers' SDP
 * objects as byte ranges of the message, so that relaying them is copying bytes, never decoding,
 * parsing and re-serialising the SDP. Everything else in a message (unknown keys, their values) is
 * skipped but must still be well-formed JSON.
 *
 * `info_hash`, `peer_id` and `offer_id` are "binary strings": JSON strings of 20 characters each
 * U+0000-U+00FF (one per byte). They are kept as JS strings of 20 chars (latin1), and written back
 * with the escaping JSON needs.
 */

export class MessageError extends Error {}

const enum C {
  Quote = 34,
  Backslash = 92,
  Comma = 44,
  Colon = 58,
  OpenBrace = 123,
  CloseBrace = 125,
  OpenBracket = 91,
  CloseBracket = 93,
  Minus = 45,
  Plus = 43,
  Dot = 46,
  Zero = 48,
  Nine = 57,
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9
}

function isDigit(c: number): boolean {
  return c >= C.Zero && c <= C.Nine
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** The keys the tracker reads; any other key is skipped. */
const KEYS = ['action', 'info_hash', 'peer_id', 'left', 'event', 'offers', 'answer', 'to_peer_id', 'offer_id', 'offer', 'type', 'sdp'] as const
const K_ACTION = 0
const K_INFO_HASH = 1
const K_PEER_ID = 2
const K_LEFT = 3
const K_EVENT = 4
const K_OFFERS = 5
const K_ANSWER = 6
const K_TO_PEER_ID = 7
const K_OFFER_ID = 8
const K_OFFER = 9
const K_TYPE = 10
const K_SDP = 11
const KEY_BYTES = KEYS.map(k => Buffer.from(k))

/** Scans JSON in UTF-8 bytes; every method returns a new position or throws MessageError. */
class Scanner {
  b: Buffer = Buffer.alloc(0)
  end = 0

  /** Starts on a new message (one scanner serves every message: it keeps no other state). */
  reset(bytes: Uint8Array): this {
    this.b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.end = bytes.length
    return this
  }

  fail(what: string): never {
    throw new MessageError(what)
  }

  space(i: number): number {
    const b = this.b
    while (i < this.end && isSpace(b[i])) i++
    return i
  }

  expect(i: number, c: number, what: string): number {
    i = this.space(i)
    if (this.b[i] !== c) this.fail(what)
    return i + 1
  }

  /** End of the string token starting at `i` (a quote), just past its closing quote. */
  stringEnd(i: number): number {
    const b = this.b
    const end = this.end
    for (let k = i + 1; k < end; k++) {
      const c = b[k]
      if (c === C.Quote) return k + 1
      if (c === C.Backslash) {
        const e = b[k + 1]
        // \" \\ \/ \b \f \n \r \t or \uXXXX
        if (e === 117) {
          if (k + 5 >= end || hexValue(b[k + 2]) < 0 || hexValue(b[k + 3]) < 0 || hexValue(b[k + 4]) < 0 || hexValue(b[k + 5]) < 0) {
            this.fail('Invalid request: bad \\u escape')
          }
          k += 5
        } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
          k++
        } else {
          this.fail('Invalid request: bad escape in a string')
        }
      } else if (c < 32) {
        this.fail('Invalid request: control character in a string')
      }
    }
    return this.fail('Invalid request: unterminated string')
  }

  /**
   * End of the string token starting at `i`, found by a native search for its closing quote (an
   * odd run of backslashes before a quote escapes it). Its content is not checked: this is for
   * SDP text, which the tracker relays as it came and never reads; the message is valid UTF-8
   * already, and a bad escape or raw control character in it only makes the relayed message
   * unreadable to its one recipient, as bad SDP would be.
   */
  relayedStringEnd(i: number): number {
    const b = this.b
    let k = i + 1
    for (;;) {
      const q = b.indexOf(C.Quote, k)
      if (q < 0) return this.fail('Invalid request: unterminated string')
      let backslashes = 0
      while (b[q - 1 - backslashes] === C.Backslash) backslashes++
      if ((backslashes & 1) === 0) return q + 1
      k = q + 1
    }
  }

  /** End of any JSON value starting at `i` (after spaces). */
  valueEnd(i: number, depth = 0): number {
    if (depth > 32) this.fail('Invalid request: nested too deeply')
    const b = this.b
    i = this.space(i)
    const c = b[i]
    if (c === C.Quote) return this.stringEnd(i)
    if (c === C.OpenBrace || c === C.OpenBracket) {
      const close = c === C.OpenBrace ? C.CloseBrace : C.CloseBracket
      let k = this.space(i + 1)
      if (b[k] === close) return k + 1
      for (;;) {
        if (c === C.OpenBrace) {
          k = this.space(k)
          if (b[k] !== C.Quote) this.fail('Invalid request: object key expected')
          k = this.expect(this.stringEnd(k), C.Colon, 'Invalid request: ":" expected')
        }
        k = this.space(this.valueEnd(k, depth + 1))
        const d = b[k]
        if (d === close) return k + 1
        if (d !== C.Comma) this.fail('Invalid request: "," expected')
        k++
      }
    }
    if (c === C.Minus || isDigit(c)) return this.numberEnd(i)
    if (this.word(i, 'true') || this.word(i, 'null')) return i + 4
    if (this.word(i, 'false')) return i + 5
    return this.fail(i >= this.end ? 'Invalid request: value expected' : 'Invalid request: bad literal')
  }

  word(i: number, w: string): boolean {
    if (i + w.length > this.end) return false
    for (let k = 0; k < w.length; k++) if (this.b[i + k] !== w.charCodeAt(k)) return false
    return true
  }

  /** End of a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  private numberEnd(i: number): number {
    const b = this.b
    let k = i
    if (b[k] === C.Minus) k++
    if (b[k] === C.Zero) k++
    else if (isDigit(b[k])) while (isDigit(b[k])) k++
    else this.fail('Invalid request: bad literal')
    if (b[k] === C.Dot) {
      k++
      if (!isDigit(b[k])) this.fail('Invalid request: bad literal')
      while (isDigit(b[k])) k++
    }
    if (b[k] === 101 || b[k] === 69) {
      k++
      if (b[k] === C.Plus || b[k] === C.Minus) k++
      if (!isDigit(b[k])) this.fail('Invalid request: bad literal')
      while (isDigit(b[k])) k++
    }
    // A number runs into the next token: "1x" or "01" is not JSON.
    const d = b[k]
    if (k < this.end && (isDigit(d) || (d >= 97 && d <= 122) || (d >= 65 && d <= 90) || d === C.Dot)) this.fail('Invalid request: bad literal')
    return k
  }

  /** Which of KEYS the string token [start, end) names, or -1. */
  key(start: number, end: number): number {
    const b = this.b
    const length = end - start - 2
    let escaped = false
    for (let k = start + 1; k < end - 1; k++) if (b[k] === C.Backslash) escaped = true
    if (escaped) return (KEYS as readonly string[]).indexOf(this.stringValue(start, end))
    next: for (let id = 0; id < KEY_BYTES.length; id++) {
      const key = KEY_BYTES[id]
      if (key.length !== length) continue
      for (let k = 0; k < length; k++) if (key[k] !== b[start + 1 + k]) continue next
      return id
    }
    return -1
  }

  /** The decoded value of the string token [start, end). */
  stringValue(start: number, end: number): string {
    const b = this.b
    let escaped = false
    for (let k = start + 1; k < end - 1; k++) if (b[k] === C.Backslash) escaped = true
    const raw = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    if (!escaped) return raw.toString('utf8', start + 1, end - 1)
    try {
      return JSON.parse(raw.toString('utf8', start, end)) as string
    } catch {
      return this.fail('Invalid request: bad escape in a string')
    }
  }

  /** Whether the string token [start, end) holds exactly the ASCII text `text`, unescaped. */
  isText(start: number, end: number, text: string): boolean {
    if (end - start - 2 !== text.length || this.b[start] !== C.Quote) return false
    for (let k = 0; k < text.length; k++) if (this.b[start + 1 + k] !== text.charCodeAt(k)) return false
    return true
  }

  isString(start: number): boolean {
    return this.b[start] === C.Quote
  }

  isNull(start: number, end: number): boolean {
    return end - start === 4 && this.word(start, 'null')
  }

  /** Where the value of the member read by `member` starts. */
  valueStart = 0

  /**
   * Opens the object at `i`: returns the position of its first member, or -1 when it is empty
   * (then `valueStart` is just past the closing brace).
   */
  open(i: number, what: string): number {
    const k = this.space(this.expect(i, C.OpenBrace, what))
    if (this.b[k] !== C.CloseBrace) return k
    this.valueStart = k + 1
    return -1
  }

  /** Reads `"key":` at `k`: returns which of KEYS it is (or -1); `valueStart` gets its value's start. */
  member(k: number): number {
    k = this.space(k)
    if (this.b[k] !== C.Quote) this.fail('Invalid request: object key expected')
    const keyEnd = this.stringEnd(k)
    const key = this.key(k, keyEnd)
    this.valueStart = this.space(this.expect(keyEnd, C.Colon, 'Invalid request: ":" expected'))
    return key
  }

  /**
   * After a member's value ending at `ve`: the next member's position, or -1 when the object
   * closed (then `valueStart` is just past the closing brace).
   */
  nextMember(ve: number): number {
    const k = this.space(ve)
    if (this.b[k] === C.CloseBrace) {
      this.valueStart = k + 1
      return -1
    }
    if (this.b[k] !== C.Comma) this.fail('Invalid request: "," expected')
    return k + 1
  }
}

/** Decoded binary strings land here before becoming JS strings. */
const binaryScratch = new Uint8Array(20)

/**
 * The 20-character binary string whose token starts at `start`, read and checked in one pass
 * (its end goes to `s.valueStart`); throws naming the field otherwise.
 */
function binary20(s: Scanner, start: number, field: string): string {
  const b = s.b
  const end = s.end
  if (b[start] !== C.Quote) s.fail(`Invalid ${field}: expected a string of 20 characters`)
  let count = 0
  let wide = false
  let k = start + 1
  for (; ; count++) {
    if (k >= end) s.fail('Invalid request: unterminated string')
    let c = b[k]
    if (c === C.Quote) break
    if (c === C.Backslash) {
      const e = b[k + 1]
      if (e === 117) {
        // A bad hex digit (-1) makes the whole value negative.
        c = k + 5 < end ? (hexValue(b[k + 2]) << 12) | (hexValue(b[k + 3]) << 8) | (hexValue(b[k + 4]) << 4) | hexValue(b[k + 5]) : -1
        if (c < 0) s.fail('Invalid request: bad \\u escape')
        k += 6
      } else {
        c = ESCAPED[e]
        if (c === 0) s.fail('Invalid request: bad escape in a string')
        k += 2
      }
    } else if (c < 32) {
      s.fail('Invalid request: control character in a string')
    } else if (c < 0x80) {
      k++
    } else if ((c & 0xe0) === 0xc0) {
      c = ((c & 0x1f) << 6) | (b[k + 1] & 0x3f)
      k += 2
    } else {
      // Three or four UTF-8 bytes: a character past U+07FF (the message was checked as UTF-8).
      k += (c & 0xf0) === 0xe0 ? 3 : 4
      c = 0x10000
    }
    if (c > 0xff) wide = true
    else if (count < 20) binaryScratch[count] = c
  }
  s.valueStart = k + 1
  if (count !== 20) s.fail(`Invalid ${field}: expected 20 characters, got ${count}`)
  if (wide) s.fail(`Invalid ${field}: characters must be U+0000 to U+00FF`)
  const x = binaryScratch
  // Faster than decoding the bytes through Buffer#toString for 20 characters.
  return String.fromCharCode(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15], x[16], x[17], x[18], x[19])
}

/** What each simple escape (after the backslash) stands for; 0 for a byte that is not one. */
const ESCAPED = new Uint8Array(256)
for (const [e, c] of [
  [34, 34],
  [92, 92],
  [47, 47],
  [98, 8],
  [102, 12],
  [110, 10],
  [114, 13],
  [116, 9],
])
  ESCAPED[e] = c

function number(s: Scanner, start: number, end: number, field: string): number {
  if (s.isString(start) || s.b[start] === C.Minus || !isDigit(s.b[start])) s.fail(`Invalid ${field}: expected a non-negative number`)
  const b = s.b
  let v = 0
  let k = start
  for (; k < end && isDigit(b[k]) && k - start < 15; k++) v = v * 10 + b[k] - C.Zero
  if (k < end) v = Number(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', start, end))
  if (!Number.isFinite(v)) s.fail(`Invalid ${field}: expected a non-negative number`)
  return v
}

export const WS_EVENT_NONE = 0
export const WS_EVENT_COMPLETED = 1
export const WS_EVENT_STARTED = 2
export const WS_EVENT_STOPPED = 3

export interface WsOffer {
  offerId: string
  /** The `offer` value (an object with type and sdp): its byte range in the message. */
  start: number
  end: number
}

export interface WsAnnounce {
  action: 'announce'
  infoHash: string
  peerId: string
  /** -1 when absent or null (a magnet link that does not know the size yet). */
  left: number
  event: number
  offers: WsOffer[]
  /** The offers array held more than `maxOffers` entries (only the first ones were kept). */
  offersTruncated: boolean
  /** Answer relay fields: all present, or the announce carries no answer (answerStart -1). */
  answerStart: number
  answerEnd: number
  toPeerId: string | null
  offerId: string | null
}

export interface WsScrape {
  action: 'scrape'
  /** Empty for a full scrape (no info_hash). */
  infoHashes: string[]
}

export type WsRequest = WsAnnounce | WsScrape

/** An SDP object {"type": "offer"|"answer", "sdp": string} at `start`; returns its end. */
function sdpObject(s: Scanner, start: number, type: 'offer' | 'answer'): number {
  let seenType = false
  let seenSdp = false
  for (let k = s.open(start, `Invalid ${type}: expected an object`); k >= 0; ) {
    const key = s.member(k)
    const vs = s.valueStart
    let ve: number
    if (key === K_SDP) {
      if (!s.isString(vs)) s.fail(`Invalid ${type}: "sdp" must be a string`)
      ve = s.relayedStringEnd(vs)
      seenSdp = true
    } else {
      ve = s.valueEnd(vs)
      if (key === K_TYPE) {
        if (!s.isText(vs, ve, type) && !(s.isString(vs) && s.stringValue(vs, ve) === type)) s.fail(`Invalid ${type}: "type" must be "${type}"`)
        seenType = true
      }
    }
    k = s.nextMember(ve)
  }
  if (!seenType || !seenSdp) s.fail(`Invalid ${type}: it needs "type" and "sdp"`)
  return s.valueStart
}

const scanner = new Scanner()

/** The top-level binary strings of the message being parsed, by key (undefined: absent or not a string). */
const binaryValues: (string | undefined)[] = KEYS.map(() => undefined)
/** Which keys (index + 1, so that -1 for unknown keys reads 0) hold binary strings. */
const BINARY_KEY = new Uint8Array(KEYS.length + 1)
for (const key of [K_INFO_HASH, K_PEER_ID, K_TO_PEER_ID, K_OFFER_ID]) BINARY_KEY[key + 1] = 1

/** Value ranges of the top-level keys of the message being parsed (-1: absent). */
const ranges = new Int32Array(2 * KEYS.length)

/** The offers array at `start`, into `out`; returns its end. */
function offersArray(s: Scanner, start: number, maxOffers: number, out: WsAnnounce): number {
  const b = s.b
  out.offers = []
  out.offersTruncated = false
  if (b[start] !== C.OpenBracket) s.fail('Invalid offers: expected an array')
  let k = s.space(start + 1)
  if (b[k] === C.CloseBracket) return k + 1
  for (;;) {
    let offerId: string | undefined
    let os = -1
    let oe = -1
    for (let m = s.open(k, 'Invalid offers: each must be an object'); m >= 0; ) {
      const key = s.member(m)
      const vs = s.valueStart
      let ve: number
      if (key === K_OFFER_ID) {
        offerId = binary20(s, vs, 'offer_id')
        ve = s.valueStart
      } else if (key === K_OFFER) {
        ve = sdpObject(s, vs, 'offer')
        os = vs
        oe = ve
      } else {
        ve = s.valueEnd(vs)
      }
      m = s.nextMember(ve)
    }
    k = s.valueStart
    if (offerId === undefined || os < 0) s.fail('Invalid offers: each needs "offer_id" and "offer"')
    if (out.offers.length < maxOffers) out.offers.push({offerId, start: os, end: oe})
    else out.offersTruncated = true
    k = s.space(k)
    if (b[k] === C.CloseBracket) return k + 1
    if (b[k] !== C.Comma) s.fail('Invalid offers: "," expected')
    k++
  }
}

/**
 * Parses one incoming message from its UTF-8 bytes. Throws MessageError with a failure reason a
 * client can read. Byte ranges in the result index into `bytes`.
 */
export function parseWsMessage(bytes: Uint8Array, maxOffers: number, maxScrape: number): WsRequest {
  const s = scanner.reset(bytes)
  const b = bytes
  // Plain loops: fill() on these short arrays goes through slower runtime calls.
  for (let i = 0; i < ranges.length; i++) ranges[i] = -1
  for (let i = 0; i < binaryValues.length; i++) binaryValues[i] = undefined
  // Offers and answers are read where they stand, so their SDP is scanned once.
  const out: WsAnnounce = {
    action: 'announce',
    infoHash: '',
    peerId: '',
    left: -1,
    event: WS_EVENT_NONE,
    offers: [],
    offersTruncated: false,
    answerStart: -1,
    answerEnd: -1,
    toPeerId: null,
    offerId: null,
  }
  for (let k = s.open(0, 'Invalid request: a JSON object expected'); k >= 0; ) {
    const key = s.member(k)
    const vs = s.valueStart
    let ve: number
    if (key === K_OFFERS && !s.word(vs, 'null')) ve = offersArray(s, vs, maxOffers, out)
    else if (key === K_ANSWER && !s.word(vs, 'null')) ve = sdpObject(s, vs, 'answer')
    else if (BINARY_KEY[key + 1] === 1 && s.isString(vs)) {
      // Binary strings are read as they are scanned.
      binaryValues[key] = binary20(s, vs, KEYS[key])
      ve = s.valueStart
    } else ve = s.valueEnd(vs)
    if (key >= 0) {
      ranges[2 * key] = vs
      ranges[2 * key + 1] = ve
    }
    k = s.nextMember(ve)
  }
  if (s.space(s.valueStart) !== bytes.length) s.fail('Invalid request: trailing characters after the JSON object')
  const as = ranges[2 * K_ACTION]
  const ae = ranges[2 * K_ACTION + 1]
  if (as < 0) s.fail('Invalid request: "action" is missing')
  if (!s.isString(as)) s.fail('Invalid request: "action" must be a string')
  if (!s.isText(as, ae, 'announce')) {
    const action = s.isText(as, ae, 'scrape') ? 'scrape' : s.stringValue(as, ae)
    if (action !== 'scrape') {
      if (action === 'announce') return announce(s, out)
      s.fail(`Unknown action "${action}": expected announce or scrape`)
    }
    const infoHashes: string[] = []
    if (present(s, K_INFO_HASH)) {
      const start = ranges[2 * K_INFO_HASH]
      if (b[start] === C.OpenBracket) {
        // An array of binary strings.
        let i = s.space(start + 1)
        if (b[i] !== C.CloseBracket) {
          for (;;) {
            i = s.space(i)
            const infoHash = binary20(s, i, 'info_hash')
            if (infoHashes.length < maxScrape) infoHashes.push(infoHash)
            i = s.space(s.valueStart)
            if (b[i] === C.CloseBracket) break
            i++
          }
        }
      } else {
        infoHashes.push(binaryField(s, K_INFO_HASH, 'info_hash'))
      }
    }
    return {action: 'scrape', infoHashes}
  }
  return announce(s, out)
}

/** The announce fields of the message just scanned, into `out` (which holds its offers). */
function announce(s: Scanner, out: WsAnnounce): WsAnnounce {
  if (ranges[2 * K_INFO_HASH] < 0) s.fail('Invalid request: "info_hash" is missing')
  if (ranges[2 * K_PEER_ID] < 0) s.fail('Invalid request: "peer_id" is missing')
  out.infoHash = binaryField(s, K_INFO_HASH, 'info_hash')
  out.peerId = binaryField(s, K_PEER_ID, 'peer_id')
  if (present(s, K_LEFT)) out.left = number(s, ranges[2 * K_LEFT], ranges[2 * K_LEFT + 1], 'left')
  if (present(s, K_EVENT)) {
    const es = ranges[2 * K_EVENT]
    const ee = ranges[2 * K_EVENT + 1]
    if (s.isText(es, ee, 'started')) out.event = WS_EVENT_STARTED
    else if (s.isText(es, ee, 'stopped')) out.event = WS_EVENT_STOPPED
    else if (s.isText(es, ee, 'completed')) out.event = WS_EVENT_COMPLETED
    else {
      const e = s.isString(es) ? s.stringValue(es, ee) : '?'
      if (e === 'started') out.event = WS_EVENT_STARTED
      else if (e === 'stopped') out.event = WS_EVENT_STOPPED
      else if (e === 'completed') out.event = WS_EVENT_COMPLETED
      else if (e !== 'update' && e !== '' && e !== 'empty') s.fail('Invalid event: expected started, stopped, completed or update')
    }
  }
  if (present(s, K_ANSWER)) {
    if (ranges[2 * K_TO_PEER_ID] < 0 || ranges[2 * K_OFFER_ID] < 0) s.fail('Invalid answer: it needs "to_peer_id" and "offer_id"')
    out.answerStart = ranges[2 * K_ANSWER]
    out.answerEnd = ranges[2 * K_ANSWER + 1]
    out.toPeerId = binaryField(s, K_TO_PEER_ID, 'to_peer_id')
    out.offerId = binaryField(s, K_OFFER_ID, 'offer_id')
  }
  return out
}

/** The binary string the top-level `key` held (read while scanning), or a failure naming `field`. */
function binaryField(s: Scanner, key: number, field: string): string {
  const value = binaryValues[key]
  if (value === undefined) return s.fail(`Invalid ${field}: expected a string of 20 characters`)
  return value
}

/** Whether the top-level key was in the message with a value other than null. */
function present(s: Scanner, key: number): boolean {
  return ranges[2 * key] >= 0 && !s.isNull(ranges[2 * key], ranges[2 * key + 1])
}

/** The action a message names, for the failure that answers it (read without validating). */
export function peekAction(bytes: Uint8Array): 'announce' | 'scrape' | undefined {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 256)).toString('latin1')
  return /"action"\s*:\s*"(announce|scrape)"/.exec(head)?.[1] as 'announce' | 'scrape' | undefined
}

// ---------------------------------------------------------------------------------------------
// Outgoing

/** A binary string as a JSON string literal: quotes, backslash and control characters escaped. */
export function jsonBinary(v: string): string {
  let plain = true
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 32 || c === C.Quote || c === C.Backslash) {
      plain = false
      break
    }
  }
  return plain ? `"${v}"` : JSON.stringify(v)
}

const HEX = '0123456789abcdef'

/**
 * Builds one outgoing message in UTF-8 in a reused buffer: the relay path writes fixed text,
 * binary strings and spliced SDP bytes without making strings.
 */
export class MessageWriter {
  buf = Buffer.allocUnsafe(4096)
  length = 0

  /** Starts a new message. */
  reset(): this {
    this.length = 0
    return this
  }

  private room(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes))
    this.buf.copy(grown, 0, 0, this.length)
    this.buf = grown
  }

  /** ASCII text (the fixed parts of messages). */
  ascii(text: string): this {
    this.room(text.length)
    this.length += this.buf.write(text, this.length, 'latin1')
    return this
  }

  /** Bytes encoded once (the fixed parts of messages: see `fixed`). */
  raw(bytes: Uint8Array): this {
    this.room(bytes.length)
    this.buf.set(bytes, this.length)
    this.length += bytes.length
    return this
  }

  /** A non-negative integer or any other number. */
  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) return this.ascii(String(n))
    this.room(16)
    const buf = this.buf
    let digits = 1
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++
    let at = this.length + digits
    this.length = at
    let v = n
    do {
      buf[--at] = 48 + (v % 10)
      v = Math.floor(v / 10)
    } while (v > 0)
    return this
  }

  /** A binary string (chars U+0000-U+00FF) as a JSON string literal in UTF-8. */
  binary(v: string): this {
    this.room(2 + 6 * v.length)
    const buf = this.buf
    let at = this.length
    buf[at++] = C.Quote
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i)
      if (c >= 0x80) {
        buf[at++] = 0xc0 | (c >> 6)
        buf[at++] = 0x80 | (c & 0x3f)
      } else if (c === C.Quote || c === C.Backslash) {
        buf[at++] = C.Backslash
        buf[at++] = c
      } else if (c < 32) {
        buf[at++] = C.Backslash
        buf[at++] = 117
        buf[at++] = 48
        buf[at++] = 48
        buf[at++] = HEX.charCodeAt(c >> 4)
        buf[at++] = HEX.charCodeAt(c & 15)
      } else {
        buf[at++] = c
      }
    }
    buf[at++] = C.Quote
    this.length = at
    return this
  }

  bytes(src: Uint8Array, start: number, end: number): this {
    this.room(end - start)
    this.buf.set(src.subarray(start, end), this.length)
    this.length += end - start
    return this
  }

  toString(): string {
    return this.buf.toString('utf8', 0, this.length)
  }
}

/** The fixed parts of outgoing messages, encoded once. */
const fixed = (text: string) => Buffer.from(text, 'latin1')
const ANNOUNCE_INTERVAL = fixed('{"action":"announce","interval":')
const INFO_HASH_AFTER_FIRST = fixed(',"info_hash":')
const COMPLETE = fixed(',"complete":')
const INCOMPLETE = fixed(',"incomplete":')
const CLOSE_OBJECT = fixed('}')
const RELAY_INFO_HASH = fixed('{"action":"announce","info_hash":')
const RELAY_PEER_ID = fixed(',"peer_id":')
const RELAY_OFFER_ID = fixed(',"offer_id":')
const RELAY_OFFER = fixed(',"offer":')
const RELAY_ANSWER = fixed(',"answer":')

export function writeAnnounceResponse(w: MessageWriter, infoHash: string, complete: number, incomplete: number, interval: number): MessageWriter {
  return w
    .reset()
    .raw(ANNOUNCE_INTERVAL)
    .int(interval)
    .raw(INFO_HASH_AFTER_FIRST)
    .binary(infoHash)
    .raw(COMPLETE)
    .int(complete)
    .raw(INCOMPLETE)
    .int(incomplete)
    .raw(CLOSE_OBJECT)
}

/**
 * An offer or answer relayed to one peer: `src[start, end)` is the offerer's (or answerer's) SDP
 * object spliced in as it came.
 */
export function writeRelay(
  w: MessageWriter,
  kind: 'offer' | 'answer',
  infoHash: string,
  fromPeerId: string,
  offerId: string,
  src: Uint8Array,
  start: number,
  end: number,
): MessageWriter {
  return w
    .reset()
    .raw(RELAY_INFO_HASH)
    .binary(infoHash)
    .raw(RELAY_PEER_ID)
    .binary(fromPeerId)
    .raw(RELAY_OFFER_ID)
    .binary(offerId)
    .raw(kind === 'offer' ? RELAY_OFFER : RELAY_ANSWER)
    .bytes(src, start, end)
    .raw(CLOSE_OBJECT)
}

export interface ScrapeEntry {
  infoHash: string
  complete: number
  incomplete: number
  downloaded: number
}

export function scrapeResponse(entries: ScrapeEntry[]): string {
  const files = entries.map(e => `${jsonBinary(e.infoHash)}:{"complete":${e.complete},"incomplete":${e.incomplete},"downloaded":${e.downloaded}}`)
  return `{"action":"scrape","files":{${files.join(',')}}}`
}

export function failureMessage(reason: string, action?: string, infoHash?: string): string {
  return JSON.stringify({'failure reason': reason, ...(action ? {action} : {}), ...(infoHash !== undefined ? {info_hash: infoHash} : {})})
}
