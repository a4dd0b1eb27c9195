import {randomBytes} from 'node:crypto'

/**
 * A set of 20-byte keys (info hashes) looked up straight from request bytes, with no
 * string built per lookup. Open addressing with linear probing over a keyed hash, so a
 * client cannot pick keys that collide.
 */
export class HashSet20 {
  private keys: Uint8Array
  private used: Uint8Array
  private mask: number
  /** The hash's key: random per set, or the one of the set this one is a copy of. */
  readonly seed: Buffer
  private readonly k: Int32Array
  size = 0

  /** Room for `expected` keys without growing; `seed` only to copy another set's table. */
  constructor(expected = 16, seed: Uint8Array = randomBytes(20)) {
    let cap = 16
    while (cap < expected * 2) cap *= 2
    this.keys = new Uint8Array(cap * 20)
    this.used = new Uint8Array(cap)
    this.mask = cap - 1
    this.seed = Buffer.from(seed)
    this.k = new Int32Array(5)
    for (let i = 0; i < 5; i++) this.k[i] = this.seed.readInt32LE(i * 4)
  }

  /**
   * A set is copied to another process as its table (slot keys, then slot flags) and its seed:
   * the copy takes bytes as they come (`writeTable`), with no hashing, so that each of several
   * processes spends a memory copy on a big list and not a rebuild.
   */
  /** A copy of a set of `capacity`, `seed` and `size`, to be filled by `writeTable`. */
  static emptyCopy(capacity: number, seed: Uint8Array, size: number): HashSet20 {
    const set = new HashSet20(capacity / 2, seed)
    if (set.capacity !== capacity) throw new RangeError(`a set's capacity is a power of two from 16, not ${capacity}`)
    set.size = size
    return set
  }

  get capacity(): number {
    return this.used.length
  }

  get tableLength(): number {
    return this.used.length * 21
  }

  /** Bytes `from` to `to` of the table (a view, not a copy). */
  tableSlice(from: number, to: number): Uint8Array {
    const split = this.keys.length
    if (to <= split) return this.keys.subarray(from, to)
    if (from >= split) return this.used.subarray(from - split, to - split)
    throw new RangeError('a table slice must not straddle the keys and the flags')
  }

  /** Bytes of the original's table at `at` (see tableSlice). */
  writeTable(at: number, bytes: Uint8Array): void {
    const split = this.keys.length
    if (at + bytes.length <= split) this.keys.set(bytes, at)
    else if (at >= split) this.used.set(bytes, at - split)
    else throw new RangeError('a table slice must not straddle the keys and the flags')
  }

  private hash(b: Uint8Array, o: number): number {
    const k = this.k
    let h = 0x9e3779b9
    for (let i = 0; i < 5; i++) {
      const p = o + i * 4
      const w = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) ^ k[i]
      h = Math.imul(h ^ w, 0x85ebca6b)
      h ^= h >>> 13
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35)
    return (h ^ (h >>> 16)) >>> 0
  }

  private equals(slot: number, b: Uint8Array, o: number): boolean {
    const keys = this.keys
    const base = slot * 20
    for (let i = 0; i < 20; i++) if (keys[base + i] !== b[o + i]) return false
    return true
  }

  has(b: Uint8Array, o = 0): boolean {
    let slot = this.hash(b, o) & this.mask
    while (this.used[slot] === 1) {
      if (this.equals(slot, b, o)) return true
      slot = (slot + 1) & this.mask
    }
    return false
  }

  add(b: Uint8Array, o = 0): boolean {
    if ((this.size + 1) * 2 > this.used.length) this.grow()
    let slot = this.hash(b, o) & this.mask
    while (this.used[slot] === 1) {
      if (this.equals(slot, b, o)) return false
      slot = (slot + 1) & this.mask
    }
    this.used[slot] = 1
    const keys = this.keys
    const base = slot * 20
    for (let i = 0; i < 20; i++) keys[base + i] = b[o + i]
    this.size++
    return true
  }

  /** Adds keys `from` to `to` (by index) of 20-byte keys laid end to end. */
  addKeys(keys: Uint8Array, from: number, to: number): void {
    for (let i = from; i < to; i++) this.add(keys, i * 20)
  }

  private grow(): void {
    const oldKeys = this.keys
    const oldUsed = this.used
    const cap = oldUsed.length * 2
    this.keys = new Uint8Array(cap * 20)
    this.used = new Uint8Array(cap)
    this.mask = cap - 1
    this.size = 0
    for (let s = 0; s < oldUsed.length; s++) if (oldUsed[s] === 1) this.add(oldKeys, s * 20)
  }
}
