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
  private readonly k: Int32Array
  size = 0

  constructor(expected = 16) {
    let cap = 16
    while (cap < expected * 2) cap *= 2
    this.keys = new Uint8Array(cap * 20)
    this.used = new Uint8Array(cap)
    this.mask = cap - 1
    const kb = randomBytes(20)
    this.k = new Int32Array(5)
    for (let i = 0; i < 5; i++) this.k[i] = kb.readInt32LE(i * 4)
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
    this.keys.set(b.subarray(o, o + 20), slot * 20)
    this.size++
    return true
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

  /** All keys, 20 bytes each, concatenated (for passing a list between processes). */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.size * 20)
    let n = 0
    for (let s = 0; s < this.used.length; s++) {
      if (this.used[s] === 1) out.set(this.keys.subarray(s * 20, s * 20 + 20), 20 * n++)
    }
    return out
  }

  static fromBuffer(buf: Uint8Array): HashSet20 {
    const set = new HashSet20(buf.length / 20)
    for (let o = 0; o + 20 <= buf.length; o += 20) set.add(buf, o)
    return set
  }
}
