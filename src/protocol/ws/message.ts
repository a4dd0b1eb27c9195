/**
 * WebTorrent tracker messages (JSON over WebSocket). Pure: no sockets, no state.
 *
 * Incoming messages are read by a small JSON scanner rather than JSON.parse: it validates the
 * fields a tracker uses and keeps the offers' and answers' SDP objects as raw JSON text, so that
 * relaying them is splicing text, never parsing and re-serialising the SDP. Everything else in a
 * message (unknown keys, their values) is skipped but must still be well-formed JSON.
 *
 * `info_hash`, `peer_id` and `offer_id` are "binary strings": JSON strings of 20 characters each
 * U+0000-U+00FF (one per byte). They are kept as JS strings of 20 chars, and written back with
 * the escaping JSON needs.
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
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9
}

/** The characters that end or interrupt a JSON string's plain run. */
const SPECIAL = /["\\\x00-\x1f]/g

/** Scans JSON text; every method returns a new position or throws MessageError. */
class Scanner {
  constructor(readonly text: string) {}

  fail(what: string): never {
    throw new MessageError(what)
  }

  space(i: number): number {
    const t = this.text
    while (i < t.length && isSpace(t.charCodeAt(i))) i++
    return i
  }

  expect(i: number, c: number, what: string): number {
    i = this.space(i)
    if (this.text.charCodeAt(i) !== c) this.fail(what)
    return i + 1
  }

  /** End of the string token starting at `i` (a quote), just past its closing quote. */
  stringEnd(i: number): number {
    const t = this.text
    // Jump from one quote, backslash or control character to the next (SDP is long).
    const special = SPECIAL
    special.lastIndex = i + 1
    for (;;) {
      const m = special.exec(t)
      if (!m) return this.fail('Invalid request: unterminated string')
      const k = m.index
      const c = t.charCodeAt(k)
      if (c === C.Quote) return k + 1
      if (c !== C.Backslash) this.fail('Invalid request: control character in a string')
      const e = t.charCodeAt(k + 1)
      // \" \\ \/ \b \f \n \r \t or \uXXXX
      if (e === 117) {
        if (!/^[0-9a-fA-F]{4}$/.test(t.slice(k + 2, k + 6))) this.fail('Invalid request: bad \\u escape')
        special.lastIndex = k + 6
      } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
        special.lastIndex = k + 2
      } else {
        this.fail('Invalid request: bad escape in a string')
      }
    }
  }

  /** End of any JSON value starting at `i` (after spaces). */
  valueEnd(i: number, depth = 0): number {
    if (depth > 32) this.fail('Invalid request: nested too deeply')
    const t = this.text
    i = this.space(i)
    const c = t.charCodeAt(i)
    if (c === C.Quote) return this.stringEnd(i)
    if (c === C.OpenBrace || c === C.OpenBracket) {
      const close = c === C.OpenBrace ? C.CloseBrace : C.CloseBracket
      let k = this.space(i + 1)
      if (t.charCodeAt(k) === close) return k + 1
      for (;;) {
        if (c === C.OpenBrace) {
          k = this.space(k)
          if (t.charCodeAt(k) !== C.Quote) this.fail('Invalid request: object key expected')
          k = this.expect(this.stringEnd(k), C.Colon, 'Invalid request: ":" expected')
        }
        k = this.space(this.valueEnd(k, depth + 1))
        const d = t.charCodeAt(k)
        if (d === close) return k + 1
        if (d !== C.Comma) this.fail('Invalid request: "," expected')
        k++
      }
    }
    // number, true, false, null
    let k = i
    while (k < t.length) {
      const d = t.charCodeAt(k)
      if ((d >= 48 && d <= 57) || d === 45 || d === 43 || d === 46 || d === 101 || d === 69 || (d >= 97 && d <= 122)) k++
      else break
    }
    if (k === i) this.fail('Invalid request: value expected')
    const word = t.slice(i, k)
    if (word !== 'true' && word !== 'false' && word !== 'null' && !/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(word)) this.fail('Invalid request: bad literal')
    return k
  }

  /** Calls `onKey(key, valueStart, valueEnd)` for each member of the object at `i`; returns its end. */
  object(i: number, onKey: (key: string, start: number, end: number) => void): number {
    const t = this.text
    i = this.expect(i, C.OpenBrace, 'Invalid request: a JSON object expected')
    let k = this.space(i)
    if (t.charCodeAt(k) === C.CloseBrace) return k + 1
    for (;;) {
      k = this.space(k)
      if (t.charCodeAt(k) !== C.Quote) this.fail('Invalid request: object key expected')
      const keyEnd = this.stringEnd(k)
      const key = this.stringValue(k, keyEnd)
      const vs = this.expect(keyEnd, C.Colon, 'Invalid request: ":" expected')
      const start = this.space(vs)
      const end = this.valueEnd(start)
      onKey(key, start, end)
      k = this.space(end)
      const d = t.charCodeAt(k)
      if (d === C.CloseBrace) return k + 1
      if (d !== C.Comma) this.fail('Invalid request: "," expected')
      k++
    }
  }

  /** The decoded value of the string token text[start..end). */
  stringValue(start: number, end: number): string {
    const raw = this.text.slice(start + 1, end - 1)
    if (raw.indexOf('\\') < 0) return raw
    try {
      return JSON.parse(this.text.slice(start, end)) as string
    } catch {
      return this.fail('Invalid request: bad escape in a string')
    }
  }

  isString(start: number): boolean {
    return this.text.charCodeAt(start) === C.Quote
  }

  isNull(start: number, end: number): boolean {
    return end - start === 4 && this.text.startsWith('null', start)
  }
}

/** A 20-character binary string; throws naming the field otherwise. */
function binary20(s: Scanner, start: number, end: number, field: string): string {
  if (!s.isString(start)) s.fail(`Invalid ${field}: expected a string of 20 characters`)
  const v = s.stringValue(start, end)
  if (v.length !== 20) s.fail(`Invalid ${field}: expected 20 characters, got ${v.length}`)
  for (let i = 0; i < 20; i++) if (v.charCodeAt(i) > 255) s.fail(`Invalid ${field}: characters must be U+0000 to U+00FF`)
  return v
}

function number(s: Scanner, start: number, end: number, field: string): number {
  const v = Number(s.text.slice(start, end))
  if (s.isString(start) || !Number.isFinite(v) || v < 0) s.fail(`Invalid ${field}: expected a non-negative number`)
  return v
}

export const WS_EVENT_NONE = 0
export const WS_EVENT_COMPLETED = 1
export const WS_EVENT_STARTED = 2
export const WS_EVENT_STOPPED = 3

export interface WsOffer {
  offerId: string
  /** The `offer` value as raw JSON text (an object with type and sdp). */
  offerJson: string
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
  /** Answer relay fields: all three present, or the announce carries no answer. */
  answerJson: string | null
  toPeerId: string | null
  offerId: string | null
}

export interface WsScrape {
  action: 'scrape'
  /** Empty for a full scrape (no info_hash). */
  infoHashes: string[]
}

export type WsRequest = WsAnnounce | WsScrape

/** An SDP object: {"type": "offer"|"answer", "sdp": string}, kept as raw text. */
function sdpObject(s: Scanner, start: number, end: number, type: 'offer' | 'answer'): string {
  let seenType = false
  let seenSdp = false
  s.object(start, (key, vs, ve) => {
    if (key === 'type') {
      if (!s.isString(vs) || s.stringValue(vs, ve) !== type) s.fail(`Invalid ${type}: "type" must be "${type}"`)
      seenType = true
    } else if (key === 'sdp') {
      if (!s.isString(vs)) s.fail(`Invalid ${type}: "sdp" must be a string`)
      seenSdp = true
    }
  })
  if (!seenType || !seenSdp) s.fail(`Invalid ${type}: it needs "type" and "sdp"`)
  return s.text.slice(start, end)
}

/**
 * Parses one incoming message. Throws MessageError with a failure reason a client can read; the
 * error's `infoHash` and `action` are set when they were read before the problem.
 */
export function parseWsMessage(text: string, maxOffers: number, maxScrape: number): WsRequest {
  const s: Scanner = new Scanner(text)
  let action: string | undefined
  const ranges = new Map<string, [number, number]>()
  const end = s.object(0, (key, vs, ve) => {
    ranges.set(key, [vs, ve])
    if (key === 'action') {
      if (!s.isString(vs)) s.fail('Invalid request: "action" must be a string')
      action = s.stringValue(vs, ve)
    }
  })
  if (s.space(end) !== text.length) s.fail('Invalid request: trailing characters after the JSON object')
  const get = (key: string) => ranges.get(key)
  if (action === 'scrape') {
    const r = get('info_hash')
    const infoHashes: string[] = []
    if (r && !s.isNull(r[0], r[1])) {
      if (s.text.charCodeAt(r[0]) === C.OpenBracket) {
        // An array of binary strings.
        let k = s.space(r[0] + 1)
        if (s.text.charCodeAt(k) !== C.CloseBracket) {
          for (;;) {
            k = s.space(k)
            const e = s.valueEnd(k)
            if (infoHashes.length < maxScrape) infoHashes.push(binary20(s, k, e, 'info_hash'))
            k = s.space(e)
            if (s.text.charCodeAt(k) === C.CloseBracket) break
            k++
          }
        }
      } else {
        infoHashes.push(binary20(s, r[0], r[1], 'info_hash'))
      }
    }
    return {action: 'scrape', infoHashes}
  }
  if (action !== 'announce') s.fail(action === undefined ? 'Invalid request: "action" is missing' : `Unknown action "${action}": expected announce or scrape`)
  const ih = get('info_hash')
  const pid = get('peer_id')
  if (!ih) s.fail('Invalid request: "info_hash" is missing')
  if (!pid) s.fail('Invalid request: "peer_id" is missing')
  const out: WsAnnounce = {
    action: 'announce', infoHash: binary20(s, ih[0], ih[1], 'info_hash'), peerId: binary20(s, pid[0], pid[1], 'peer_id'),
    left: -1, event: WS_EVENT_NONE, offers: [], offersTruncated: false, answerJson: null, toPeerId: null, offerId: null,
  }
  const left = get('left')
  if (left && !s.isNull(left[0], left[1])) out.left = number(s, left[0], left[1], 'left')
  const event = get('event')
  if (event && !s.isNull(event[0], event[1])) {
    const e = s.isString(event[0]) ? s.stringValue(event[0], event[1]) : ''
    if (e === 'started') out.event = WS_EVENT_STARTED
    else if (e === 'stopped') out.event = WS_EVENT_STOPPED
    else if (e === 'completed') out.event = WS_EVENT_COMPLETED
    else if (e !== 'update' && e !== '' && e !== 'empty') s.fail('Invalid event: expected started, stopped, completed or update')
  }
  const offers = get('offers')
  if (offers && !s.isNull(offers[0], offers[1])) {
    if (s.text.charCodeAt(offers[0]) !== C.OpenBracket) s.fail('Invalid offers: expected an array')
    let k = s.space(offers[0] + 1)
    if (s.text.charCodeAt(k) !== C.CloseBracket) {
      for (;;) {
        k = s.space(k)
        let offerId: string | undefined
        let offerJson: string | undefined
        const e = s.object(k, (key, vs, ve) => {
          if (key === 'offer_id') offerId = binary20(s, vs, ve, 'offer_id')
          else if (key === 'offer') offerJson = sdpObject(s, vs, ve, 'offer')
        })
        if (offerId === undefined || offerJson === undefined) s.fail('Invalid offers: each needs "offer_id" and "offer"')
        if (out.offers.length < maxOffers) out.offers.push({offerId: offerId as string, offerJson: offerJson as string})
        else out.offersTruncated = true
        k = s.space(e)
        if (s.text.charCodeAt(k) === C.CloseBracket) break
        if (s.text.charCodeAt(k) !== C.Comma) s.fail('Invalid offers: "," expected')
        k++
      }
    }
  }
  const answer = get('answer')
  if (answer && !s.isNull(answer[0], answer[1])) {
    const to = get('to_peer_id')
    const oid = get('offer_id')
    if (!to || !oid) s.fail('Invalid answer: it needs "to_peer_id" and "offer_id"')
    out.answerJson = sdpObject(s, answer[0], answer[1], 'answer')
    out.toPeerId = binary20(s, to[0], to[1], 'to_peer_id')
    out.offerId = binary20(s, oid[0], oid[1], 'offer_id')
  }
  return out
}

/** The action a message names, for the failure that answers it (read without validating). */
export function peekAction(text: string): 'announce' | 'scrape' | undefined {
  return /"action"\s*:\s*"(announce|scrape)"/.exec(text)?.[1] as 'announce' | 'scrape' | undefined
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

export function announceResponse(infoHashJson: string, complete: number, incomplete: number, interval: number): string {
  return `{"action":"announce","interval":${interval},"info_hash":${infoHashJson},"complete":${complete},"incomplete":${incomplete}}`
}

/** An offer relayed to one peer: the offerer's SDP object spliced in as it came. */
export function offerMessage(infoHashJson: string, fromPeerIdJson: string, offerId: string, offerJson: string): string {
  return `{"action":"announce","info_hash":${infoHashJson},"peer_id":${fromPeerIdJson},"offer_id":${jsonBinary(offerId)},"offer":${offerJson}}`
}

export function answerMessage(infoHashJson: string, fromPeerIdJson: string, offerId: string, answerJson: string): string {
  return `{"action":"announce","info_hash":${infoHashJson},"peer_id":${fromPeerIdJson},"offer_id":${jsonBinary(offerId)},"answer":${answerJson}}`
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
