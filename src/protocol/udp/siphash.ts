/**
 * SipHash-2-4 (Aumasson and Bernstein) in 32-bit halves: a keyed PRF fast enough to run on
 * every UDP packet. No allocation per call. The 64-bit result is left in `hi` and `lo`.
 */
export class SipHash24 {
  private readonly k0h: number
  private readonly k0l: number
  private readonly k1h: number
  private readonly k1l: number
  hi = 0
  lo = 0

  constructor(key: Uint8Array) {
    if (key.length < 16) throw new Error('SipHash key must be 16 bytes')
    const le32 = (o: number) => (key[o] | (key[o + 1] << 8) | (key[o + 2] << 16) | (key[o + 3] << 24)) >>> 0
    this.k0l = le32(0)
    this.k0h = le32(4)
    this.k1l = le32(8)
    this.k1h = le32(12)
  }

  /** Hashes buf[offset, offset+length); returns the low 32 bits (all 64 in hi/lo). */
  hash(buf: Uint8Array, offset: number, length: number): number {
    let v0h = (this.k0h ^ 0x736f6d65) >>> 0
    let v0l = (this.k0l ^ 0x70736575) >>> 0
    let v1h = (this.k1h ^ 0x646f7261) >>> 0
    let v1l = (this.k1l ^ 0x6e646f6d) >>> 0
    let v2h = (this.k0h ^ 0x6c796765) >>> 0
    let v2l = (this.k0l ^ 0x6e657261) >>> 0
    let v3h = (this.k1h ^ 0x74656462) >>> 0
    let v3l = (this.k1l ^ 0x79746573) >>> 0
    let t = 0
    let carry = 0
    const end = offset + length
    const blocks = end - (length & 7)
    let mh = 0
    let ml = 0
    for (let p = offset; ; p += 8) {
      if (p < blocks) {
        ml = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0
        mh = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0
      } else {
        // Last block: remaining bytes, length in the top byte.
        ml = 0
        mh = (length & 0xff) << 24
        const rem = end - p
        for (let i = 0; i < rem; i++) {
          if (i < 4) ml |= buf[p + i] << (8 * i)
          else mh |= buf[p + i] << (8 * (i - 4))
        }
        ml >>>= 0
        mh >>>= 0
      }
      v3h ^= mh
      v3l ^= ml
      for (let r = 0; r < 2; r++) {
        // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        t = (v0l + v1l) >>> 0
        carry = t < v0l ? 1 : 0
        v0l = t
        v0h = (v0h + v1h + carry) >>> 0
        t = ((v1h << 13) | (v1l >>> 19)) >>> 0
        v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0
        v1h = t
        v1h = (v1h ^ v0h) >>> 0
        v1l = (v1l ^ v0l) >>> 0
        t = v0h
        v0h = v0l
        v0l = t
        // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
        t = (v2l + v3l) >>> 0
        carry = t < v2l ? 1 : 0
        v2l = t
        v2h = (v2h + v3h + carry) >>> 0
        t = ((v3h << 16) | (v3l >>> 16)) >>> 0
        v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0
        v3h = t
        v3h = (v3h ^ v2h) >>> 0
        v3l = (v3l ^ v2l) >>> 0
        // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
        t = (v0l + v3l) >>> 0
        carry = t < v0l ? 1 : 0
        v0l = t
        v0h = (v0h + v3h + carry) >>> 0
        t = ((v3h << 21) | (v3l >>> 11)) >>> 0
        v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0
        v3h = t
        v3h = (v3h ^ v0h) >>> 0
        v3l = (v3l ^ v0l) >>> 0
        // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        t = (v2l + v1l) >>> 0
        carry = t < v2l ? 1 : 0
        v2l = t
        v2h = (v2h + v1h + carry) >>> 0
        t = ((v1h << 17) | (v1l >>> 15)) >>> 0
        v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0
        v1h = t
        v1h = (v1h ^ v2h) >>> 0
        v1l = (v1l ^ v2l) >>> 0
        t = v2h
        v2h = v2l
        v2l = t
      }
      v0h = (v0h ^ mh) >>> 0
      v0l = (v0l ^ ml) >>> 0
      if (p >= blocks) break
    }
    v2l = (v2l ^ 0xff) >>> 0
    for (let r = 0; r < 4; r++) {
      t = (v0l + v1l) >>> 0
      carry = t < v0l ? 1 : 0
      v0l = t
      v0h = (v0h + v1h + carry) >>> 0
      t = ((v1h << 13) | (v1l >>> 19)) >>> 0
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0
      v1h = t
      v1h = (v1h ^ v0h) >>> 0
      v1l = (v1l ^ v0l) >>> 0
      t = v0h
      v0h = v0l
      v0l = t
      t = (v2l + v3l) >>> 0
      carry = t < v2l ? 1 : 0
      v2l = t
      v2h = (v2h + v3h + carry) >>> 0
      t = ((v3h << 16) | (v3l >>> 16)) >>> 0
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0
      v3h = t
      v3h = (v3h ^ v2h) >>> 0
      v3l = (v3l ^ v2l) >>> 0
      t = (v0l + v3l) >>> 0
      carry = t < v0l ? 1 : 0
      v0l = t
      v0h = (v0h + v3h + carry) >>> 0
      t = ((v3h << 21) | (v3l >>> 11)) >>> 0
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0
      v3h = t
      v3h = (v3h ^ v0h) >>> 0
      v3l = (v3l ^ v0l) >>> 0
      t = (v2l + v1l) >>> 0
      carry = t < v2l ? 1 : 0
      v2l = t
      v2h = (v2h + v1h + carry) >>> 0
      t = ((v1h << 17) | (v1l >>> 15)) >>> 0
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0
      v1h = t
      v1h = (v1h ^ v2h) >>> 0
      v1l = (v1l ^ v2l) >>> 0
      t = v2h
      v2h = v2l
      v2l = t
    }
    this.hi = (v0h ^ v1h ^ v2h ^ v3h) >>> 0
    this.lo = (v0l ^ v1l ^ v2l ^ v3l) >>> 0
    return this.lo
  }
}
