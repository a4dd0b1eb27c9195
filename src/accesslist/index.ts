import {readFile} from 'node:fs/promises'
import {setImmediate as nextTurn} from 'node:timers/promises'
import {HashSet20} from '../util/hashset20.js'

export type AccessListMode = 'allow' | 'deny' | 'off'

/** A bad access-list file: names the file, the line and its text. */
export class AccessListError extends Error {
  override name = 'AccessListError'
}

/**
 * Big lists are read while the tracker serves: the work is cut into slices of about this many
 * milliseconds, with a turn of the event loop (I/O included) between two slices.
 */
const SLICE_MS = 4
/**
 * Lines decoded, or keys added to a set, between two looks at the clock: about 0.5 ms each. The
 * first keys added to a big new set land on pages never touched yet, a page fault each.
 */
const DECODE_STEP = 4096
const BUILD_STEP = 1024

/** Hex digit values by byte; -1 for anything else. */
const HEX = new Int8Array(256).fill(-1)
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i
for (let i = 0; i < 6; i++) HEX[0x41 + i] = HEX[0x61 + i] = 10 + i

/** Space, tab, vertical tab, form feed, carriage return. */
const isBlank = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d && c !== 0x0a)

/**
 * Decodes an access list, one hex info hash per line (case-insensitive), blank lines and `#`
 * comments (whole-line or after the hash) allowed; any other line fails the whole file. Works on
 * the file's bytes, line by line, with no string made per line, so that it can stop after any
 * line and go on later (see `decodeAccessList`).
 */
class Decoder {
  /** 20-byte keys in file order, duplicates kept. A hash takes 41 bytes of file at least. */
  readonly keys: Buffer
  count = 0
  private pos = 0
  private line = 0

  constructor(
    private readonly bytes: Uint8Array,
    private readonly path: string,
  ) {
    this.keys = Buffer.allocUnsafe(20 * Math.floor((bytes.length + 1) / 41))
    // A UTF-8 byte order mark before the first line.
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) this.pos = 3
  }

  /** Decodes up to `lines` lines; true once the whole file is done. Throws AccessListError. */
  step(lines: number): boolean {
    const b = this.bytes
    const end = b.length
    const keys = this.keys
    let pos = this.pos
    for (let n = 0; n < lines && pos < end; n++) {
      const start = pos
      this.line++
      while (pos < end && isBlank(b[pos])) pos++
      if (pos + 40 <= end && HEX[b[pos]] >= 0) {
        const at = this.count * 20
        let i = 0
        for (; i < 40; i++) {
          const hi = HEX[b[pos + i]]
          const lo = HEX[b[pos + i + 1]]
          if (hi < 0 || lo < 0) break
          keys[at + (i >> 1)] = (hi << 4) | lo
          i++
        }
        if (i !== 40) return this.fail(start)
        pos += 40
        this.count++
        while (pos < end && isBlank(b[pos])) pos++
      }
      if (pos < end && b[pos] === 0x23) {
        // A comment runs to the end of the line.
        while (pos < end && b[pos] !== 0x0a) pos++
      }
      if (pos < end && b[pos] !== 0x0a) return this.fail(start)
      pos++
    }
    this.pos = pos
    return pos >= end
  }

  private fail(start: number): never {
    let stop = start
    while (stop < this.bytes.length && this.bytes[stop] !== 0x0a) stop++
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).toString('utf8', start, stop).replace(/\r$/, '')
    const shown = text.length > 80 ? text.slice(0, 77) + '...' : text
    throw new AccessListError(`access list ${this.path} line ${this.line}: ${JSON.stringify(shown)} is not an info hash: expected 40 hex characters`)
  }
}

/** Waits for the next turn of the event loop once the current slice has had its time. */
class Slicer {
  private until = performance.now() + SLICE_MS

  async pause(): Promise<void> {
    if (performance.now() < this.until) return
    await nextTurn()
    this.until = performance.now() + SLICE_MS
  }
}

/** Parses a whole list at once (small lists, tests). */
export function parseAccessList(text: string, path: string): HashSet20 {
  const d = new Decoder(Buffer.from(text, 'utf8'), path)
  d.step(Infinity)
  const set = new HashSet20(d.count)
  set.addKeys(d.keys, 0, d.count)
  return set
}

/** The 20-byte keys of a list file's bytes, in file order; decoded in slices. */
export async function decodeAccessList(bytes: Uint8Array, path: string): Promise<Buffer> {
  const d = new Decoder(bytes, path)
  const slicer = new Slicer()
  while (!d.step(DECODE_STEP)) await slicer.pause()
  return d.keys.subarray(0, d.count * 20)
}

/** A set of 20-byte keys (concatenated), built in slices; duplicates count once. */
export async function buildSet(keys: Uint8Array): Promise<HashSet20> {
  const n = Math.floor(keys.length / 20)
  const set = new HashSet20(n)
  const slicer = new Slicer()
  for (let i = 0; i < n; i += BUILD_STEP) {
    set.addKeys(keys, i, Math.min(n, i + BUILD_STEP))
    await slicer.pause()
  }
  return set
}

/**
 * Reads and decodes a list file without holding up the event loop for long: the keys, 20 bytes
 * each, in file order (duplicates kept). AccessListError when it cannot be read or a line is bad.
 */
export async function readAccessList(path: string): Promise<Buffer> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new AccessListError(`access list ${path} could not be read (${code}): check [access_list] path`)
  }
  return decodeAccessList(bytes, path)
}

export async function loadAccessListFile(path: string): Promise<HashSet20> {
  return buildSet(await readAccessList(path))
}

/** The list in force. Swapped whole on a successful reload; a failed reload leaves it as it is. */
export class AccessList {
  generation = 0
  constructor(
    readonly mode: AccessListMode,
    private set: HashSet20 = new HashSet20(),
  ) {}

  get entries(): number {
    return this.mode === 'off' ? 0 : this.set.size
  }

  /** Hot path: may this info hash (20 bytes at `offset`) be announced? */
  allows(buf: Uint8Array, offset: number): boolean {
    if (this.mode === 'off') return true
    const listed = this.set.has(buf, offset)
    return this.mode === 'allow' ? listed : !listed
  }

  replace(set: HashSet20): void {
    this.set = set
  }
}
