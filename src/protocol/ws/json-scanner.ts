import {hexValue} from '../../util/hex.js'

/**
 * A small JSON scanner over UTF-8 bytes, for WebTorrent tracker messages: it finds tokens and
 * checks them as JSON without building values, so that a reader decodes only the fields it uses
 * and can keep the rest (SDP objects) as byte ranges of the message.
 */

/** A message that is not valid JSON or not a valid tracker request; its text is the failure reason sent back. */
export class MessageError extends Error {}

export const enum Char {
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

export function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9
}

export function isDigit(c: number): boolean {
  return c >= Char.Zero && c <= Char.Nine
}

/**
 * Scans JSON in UTF-8 bytes; every method returns a new position or throws MessageError. `keys`
 * are the object keys its reader cares about: `key` and `member` name them by index.
 */
export class Scanner {
  b: Buffer = Buffer.alloc(0)
  end = 0
  private readonly keyBytes: Buffer[]

  constructor(private readonly keys: readonly string[]) {
    this.keyBytes = keys.map(k => Buffer.from(k))
  }

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
      if (c === Char.Quote) return k + 1
      if (c === Char.Backslash) {
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
      const q = b.indexOf(Char.Quote, k)
      if (q < 0) return this.fail('Invalid request: unterminated string')
      let backslashes = 0
      while (b[q - 1 - backslashes] === Char.Backslash) backslashes++
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
    if (c === Char.Quote) return this.stringEnd(i)
    if (c === Char.OpenBrace || c === Char.OpenBracket) {
      const close = c === Char.OpenBrace ? Char.CloseBrace : Char.CloseBracket
      let k = this.space(i + 1)
      if (b[k] === close) return k + 1
      for (;;) {
        if (c === Char.OpenBrace) {
          k = this.space(k)
          if (b[k] !== Char.Quote) this.fail('Invalid request: object key expected')
          k = this.expect(this.stringEnd(k), Char.Colon, 'Invalid request: ":" expected')
        }
        k = this.space(this.valueEnd(k, depth + 1))
        const d = b[k]
        if (d === close) return k + 1
        if (d !== Char.Comma) this.fail('Invalid request: "," expected')
        k++
      }
    }
    if (c === Char.Minus || isDigit(c)) return this.numberEnd(i)
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
    if (b[k] === Char.Minus) k++
    if (b[k] === Char.Zero) k++
    else if (isDigit(b[k])) while (isDigit(b[k])) k++
    else this.fail('Invalid request: bad literal')
    if (b[k] === Char.Dot) {
      k++
      if (!isDigit(b[k])) this.fail('Invalid request: bad literal')
      while (isDigit(b[k])) k++
    }
    if (b[k] === 101 || b[k] === 69) {
      k++
      if (b[k] === Char.Plus || b[k] === Char.Minus) k++
      if (!isDigit(b[k])) this.fail('Invalid request: bad literal')
      while (isDigit(b[k])) k++
    }
    // A number runs into the next token: "1x" or "01" is not JSON.
    const d = b[k]
    if (k < this.end && (isDigit(d) || (d >= 97 && d <= 122) || (d >= 65 && d <= 90) || d === Char.Dot)) this.fail('Invalid request: bad literal')
    return k
  }

  /** Which of `keys` the string token [start, end) names, or -1. */
  key(start: number, end: number): number {
    const b = this.b
    const length = end - start - 2
    let escaped = false
    for (let k = start + 1; k < end - 1; k++) if (b[k] === Char.Backslash) escaped = true
    if (escaped) return this.keys.indexOf(this.stringValue(start, end))
    const keyBytes = this.keyBytes
    next: for (let id = 0; id < keyBytes.length; id++) {
      const key = keyBytes[id]
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
    for (let k = start + 1; k < end - 1; k++) if (b[k] === Char.Backslash) escaped = true
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
    if (end - start - 2 !== text.length || this.b[start] !== Char.Quote) return false
    for (let k = 0; k < text.length; k++) if (this.b[start + 1 + k] !== text.charCodeAt(k)) return false
    return true
  }

  isString(start: number): boolean {
    return this.b[start] === Char.Quote
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
    const k = this.space(this.expect(i, Char.OpenBrace, what))
    if (this.b[k] !== Char.CloseBrace) return k
    this.valueStart = k + 1
    return -1
  }

  /** Reads `"key":` at `k`: returns which of `keys` it is (or -1); `valueStart` gets its value's start. */
  member(k: number): number {
    k = this.space(k)
    if (this.b[k] !== Char.Quote) this.fail('Invalid request: object key expected')
    const keyEnd = this.stringEnd(k)
    const key = this.key(k, keyEnd)
    this.valueStart = this.space(this.expect(keyEnd, Char.Colon, 'Invalid request: ":" expected'))
    return key
  }

  /**
   * After a member's value ending at `ve`: the next member's position, or -1 when the object
   * closed (then `valueStart` is just past the closing brace).
   */
  nextMember(ve: number): number {
    const k = this.space(ve)
    if (this.b[k] === Char.CloseBrace) {
      this.valueStart = k + 1
      return -1
    }
    if (this.b[k] !== Char.Comma) this.fail('Invalid request: "," expected')
    return k + 1
  }
}
