import {hexValue} from '../../util/hex.js'
import {MESSAGE} from '../messages.js'

/**
 * Tracker queries (the part of a request target after `?`), parsed from bytes: announce and
 * scrape parameters, percent-decoded where they stand. Pure: no sockets, no state beyond the
 * caller's reusable result objects. Nothing here throws on any input.
 */

/** Why a query was refused; the text goes out as the bencoded failure reason. */
export type QueryError = string

export class AnnounceQuery {
  readonly infoHash = new Uint8Array(20)
  readonly peerId = new Uint8Array(20)
  port = 0
  /** 0 none, 1 completed, 2 started, 3 stopped (the swarm's EVENT_* values). */
  event = 0
  leftIsZero = false
  /** -1 when not given. */
  numWant = -1
  compact = true
  noPeerId = false
}

const enum Seen {
  InfoHash = 1,
  PeerId = 2,
  Port = 4,
  Uploaded = 8,
  Downloaded = 16,
  Left = 32,
}

/**
 * Percent-decodes `buf[start..end]` into `out` at `at`; it must decode to exactly 20 bytes.
 * `+` is taken literally (RFC 3986), as aquatic and libtorrent do. Returns false otherwise.
 */
export function decode20(buf: Uint8Array, start: number, end: number, out: Uint8Array, at: number): boolean {
  let n = 0
  for (let i = start; i < end; i++) {
    if (n === 20) return false
    let c = buf[i]
    if (c === 37) {
      if (i + 2 >= end) return false
      const hi = hexValue(buf[i + 1])
      const lo = hexValue(buf[i + 2])
      if (hi < 0 || lo < 0) return false
      c = (hi << 4) | lo
      i += 2
    }
    out[at + n++] = c
  }
  return n === 20
}

/** A decimal integer up to 2^53; -1 for anything else (empty, signs, other characters, too big). */
function parseUint(buf: Uint8Array, start: number, end: number): number {
  if (start === end || end - start > 16) return -1
  let n = 0
  for (let i = start; i < end; i++) {
    const d = buf[i] - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

function isZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 48) return false
  return true
}

/** End of the parameter that starts at `i`: the next `&`, or `end`. */
function paramEnd(buf: Uint8Array, i: number, end: number): number {
  while (i < end && buf[i] !== 38) i++
  return i
}

/** End of the key of the parameter buf[i..amp): its `=`, or `amp` when it has none. */
function keyEnd(buf: Uint8Array, i: number, amp: number): number {
  while (i < amp && buf[i] !== 61) i++
  return i
}

function keyIs(buf: Uint8Array, start: number, end: number, key: string): boolean {
  if (end - start !== key.length) return false
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key.charCodeAt(i)) return false
  return true
}

function valueIs(buf: Uint8Array, start: number, end: number, value: string): boolean {
  return keyIs(buf, start, end, value)
}

const MISSING: Record<number, string> = {
  [Seen.InfoHash]: 'info_hash',
  [Seen.PeerId]: 'peer_id',
  [Seen.Port]: 'port',
  [Seen.Uploaded]: 'uploaded',
  [Seen.Downloaded]: 'downloaded',
  [Seen.Left]: 'left',
}

/**
 * Parses an announce query (`buf[start..end]`, after the `?`). Returns null when it is valid,
 * else the failure reason. Unknown keys are ignored; so are `ip`, `key` and `trackerid`.
 */
export function parseAnnounceQuery(buf: Uint8Array, start: number, end: number, out: AnnounceQuery): QueryError | null {
  let seen = 0
  out.event = 0
  out.numWant = -1
  out.compact = true
  out.noPeerId = false
  out.leftIsZero = false
  let i = start
  while (i < end) {
    const amp = paramEnd(buf, i, end)
    const eq = keyEnd(buf, i, amp)
    const vs = eq < amp ? eq + 1 : amp
    const ks = i
    const ke = eq
    i = amp + 1
    switch (ke - ks) {
      case 9:
        if (keyIs(buf, ks, ke, 'info_hash')) {
          if (seen & Seen.InfoHash) return 'info_hash given twice'
          if (!decode20(buf, vs, amp, out.infoHash, 0)) return 'Invalid info_hash: it must be 20 bytes, percent-encoded'
          seen |= Seen.InfoHash
        }
        break
      case 7:
        if (keyIs(buf, ks, ke, 'peer_id')) {
          if (!decode20(buf, vs, amp, out.peerId, 0)) return 'Invalid peer_id: it must be 20 bytes, percent-encoded'
          seen |= Seen.PeerId
        } else if (keyIs(buf, ks, ke, 'numwant')) {
          const n = parseUint(buf, vs, amp)
          if (n < 0) return 'Invalid numwant: it must be a whole number'
          out.numWant = n
        } else if (keyIs(buf, ks, ke, 'compact')) {
          if (valueIs(buf, vs, amp, '0')) out.compact = false
          else if (valueIs(buf, vs, amp, '1')) out.compact = true
          else return 'Invalid compact: it must be 0 or 1'
        }
        break
      case 4:
        if (keyIs(buf, ks, ke, 'port')) {
          const n = parseUint(buf, vs, amp)
          if (n < 0 || n > 65535) return 'Invalid port: it must be a number from 1 to 65535'
          if (n === 0) return MESSAGE.portZero
          out.port = n
          seen |= Seen.Port
        } else if (keyIs(buf, ks, ke, 'left')) {
          if (parseUint(buf, vs, amp) < 0) return 'Invalid left: it must be a whole number of bytes'
          out.leftIsZero = isZero(buf, vs, amp)
          seen |= Seen.Left
        }
        break
      case 8:
        if (keyIs(buf, ks, ke, 'uploaded')) {
          if (parseUint(buf, vs, amp) < 0) return 'Invalid uploaded: it must be a whole number of bytes'
          seen |= Seen.Uploaded
        }
        break
      case 10:
        if (keyIs(buf, ks, ke, 'downloaded')) {
          if (parseUint(buf, vs, amp) < 0) return 'Invalid downloaded: it must be a whole number of bytes'
          seen |= Seen.Downloaded
        } else if (keyIs(buf, ks, ke, 'no_peer_id')) {
          out.noPeerId = !valueIs(buf, vs, amp, '0')
        }
        break
      case 5:
        if (keyIs(buf, ks, ke, 'event')) {
          if (vs === amp || valueIs(buf, vs, amp, 'empty') || valueIs(buf, vs, amp, 'paused')) out.event = 0
          else if (valueIs(buf, vs, amp, 'completed')) out.event = 1
          else if (valueIs(buf, vs, amp, 'started')) out.event = 2
          else if (valueIs(buf, vs, amp, 'stopped')) out.event = 3
          else return 'Invalid event: it must be started, stopped, completed or empty'
        }
        break
    }
  }
  const all = Seen.InfoHash | Seen.PeerId | Seen.Port | Seen.Uploaded | Seen.Downloaded | Seen.Left
  if (seen !== all) {
    for (const bit of [Seen.InfoHash, Seen.PeerId, Seen.Port, Seen.Uploaded, Seen.Downloaded, Seen.Left]) {
      if (!(seen & bit)) return `Missing ${MISSING[bit]}`
    }
  }
  return null
}

/**
 * Collects the `info_hash` values of a scrape query into `out` (20 bytes each), at most `max`;
 * extra ones are ignored. Returns the count, or a failure reason for a malformed hash.
 */
export function parseScrapeQuery(buf: Uint8Array, start: number, end: number, max: number, out: Uint8Array): number | QueryError {
  let count = 0
  let i = start
  while (i < end) {
    const amp = paramEnd(buf, i, end)
    const eq = keyEnd(buf, i, amp)
    if (count < max && keyIs(buf, i, eq, 'info_hash')) {
      if (!decode20(buf, eq < amp ? eq + 1 : amp, amp, out, count * 20)) return 'Invalid info_hash: it must be 20 bytes, percent-encoded'
      count++
    }
    i = amp + 1
  }
  return count
}
