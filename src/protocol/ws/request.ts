import {hexValue} from '../../util/hex.js'
import {Char, isDigit, Scanner} from './json-scanner.js'

/**
 * Incoming WebTorrent tracker messages (JSON over WebSocket), parsed from their UTF-8 bytes. Pure:
 * no sockets, no state.
 *
 * Messages are read by a small JSON scanner rather than JSON.parse: it validates the fields a
 * tracker uses and keeps the offers' and answers' SDP objects as byte ranges of the message, so
 * that relaying them is copying bytes, never decoding, parsing and re-serialising the SDP.
 * Everything else in a message (unknown keys, their values) is skipped but must still be
 * well-formed JSON.
 *
 * `info_hash`, `peer_id` and `offer_id` are "binary strings": JSON strings of 20 characters each
 * U+0000-U+00FF (one per byte). They are kept as JS strings of 20 chars (latin1), and written back
 * with the escaping JSON needs (response.ts).
 */

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

/** Decoded binary strings land here before becoming JS strings. */
const binaryScratch = new Uint8Array(20)

/**
 * The 20-character binary string whose token starts at `start`, read and checked in one pass
 * (its end goes to `s.valueStart`); throws naming the field otherwise.
 */
function binary20(s: Scanner, start: number, field: string): string {
  const b = s.b
  const end = s.end
  if (b[start] !== Char.Quote) s.fail(`Invalid ${field}: expected a string of 20 characters`)
  let count = 0
  let wide = false
  let k = start + 1
  for (; ; count++) {
    if (k >= end) s.fail('Invalid request: unterminated string')
    let c = b[k]
    if (c === Char.Quote) break
    if (c === Char.Backslash) {
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
  if (s.isString(start) || s.b[start] === Char.Minus || !isDigit(s.b[start])) s.fail(`Invalid ${field}: expected a non-negative number`)
  const b = s.b
  let v = 0
  let k = start
  for (; k < end && isDigit(b[k]) && k - start < 15; k++) v = v * 10 + b[k] - Char.Zero
  if (k < end) v = Number(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', start, end))
  if (!Number.isFinite(v)) s.fail(`Invalid ${field}: expected a non-negative number`)
  return v
}

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

const scanner = new Scanner(KEYS)

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
  if (b[start] !== Char.OpenBracket) s.fail('Invalid offers: expected an array')
  let k = s.space(start + 1)
  if (b[k] === Char.CloseBracket) return k + 1
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
    if (b[k] === Char.CloseBracket) return k + 1
    if (b[k] !== Char.Comma) s.fail('Invalid offers: "," expected')
    k++
  }
}

/**
 * Parses one incoming message from its UTF-8 bytes. Throws MessageError (json-scanner.ts) with a failure reason a
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
      if (b[start] === Char.OpenBracket) {
        // An array of binary strings.
        let i = s.space(start + 1)
        if (b[i] !== Char.CloseBracket) {
          for (;;) {
            i = s.space(i)
            const infoHash = binary20(s, i, 'info_hash')
            if (infoHashes.length < maxScrape) infoHashes.push(infoHash)
            i = s.space(s.valueStart)
            if (b[i] === Char.CloseBracket) break
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
