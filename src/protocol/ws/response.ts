import {Char} from './json-scanner.js'

/**
 * Outgoing WebTorrent tracker messages: announce responses and relayed offers and answers written
 * as UTF-8 into a reused buffer, scrape responses and failures as text. Binary strings (info
 * hash, peer id, offer id: one char per byte) get the escaping JSON needs.
 */

/** A binary string as a JSON string literal: quotes, backslash and control characters escaped. */
export function jsonBinary(v: string): string {
  let plain = true
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 32 || c === Char.Quote || c === Char.Backslash) {
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
    buf[at++] = Char.Quote
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i)
      if (c >= 0x80) {
        buf[at++] = 0xc0 | (c >> 6)
        buf[at++] = 0x80 | (c & 0x3f)
      } else if (c === Char.Quote || c === Char.Backslash) {
        buf[at++] = Char.Backslash
        buf[at++] = c
      } else if (c < 32) {
        buf[at++] = Char.Backslash
        buf[at++] = 117
        buf[at++] = 48
        buf[at++] = 48
        buf[at++] = HEX.charCodeAt(c >> 4)
        buf[at++] = HEX.charCodeAt(c & 15)
      } else {
        buf[at++] = c
      }
    }
    buf[at++] = Char.Quote
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

/** A scrape response is SCRAPE_OPEN, entries joined by commas, SCRAPE_CLOSE (a full scrape is built from parts of entries). */
export const SCRAPE_OPEN = '{"action":"scrape","files":{'
export const SCRAPE_CLOSE = '}}'

/** One torrent's `"hash":{...}` entry of a scrape response. */
export function scrapeEntry(infoHash: string, complete: number, incomplete: number, downloaded: number): string {
  return `${jsonBinary(infoHash)}:{"complete":${complete},"incomplete":${incomplete},"downloaded":${downloaded}}`
}

export function scrapeResponse(entries: ScrapeEntry[]): string {
  return SCRAPE_OPEN + entries.map(e => scrapeEntry(e.infoHash, e.complete, e.incomplete, e.downloaded)).join(',') + SCRAPE_CLOSE
}

export function failureMessage(reason: string, action?: string, infoHash?: string): string {
  return JSON.stringify({'failure reason': reason, ...(action ? {action} : {}), ...(infoHash !== undefined ? {info_hash: infoHash} : {})})
}
