import {SipHash24} from './siphash.js'

/**
 * Stateless, unforgeable BEP 15 connection ids: [u32 issue time][u32 tag], where the tag is
 * SipHash-2-4(secret; issue time || client IP) truncated to 32 bits. Any worker holding the
 * secret and the shared time base validates ids issued by any other. Forging one takes about
 * 2^31 guesses per address, and a guess stays valid for at most `maxAge` seconds.
 */
export class ConnectionIdValidator {
  private readonly sip: SipHash24
  private readonly scratch = new Uint8Array(20)

  constructor(
    secret: Uint8Array,
    readonly maxAge: number,
  ) {
    this.sip = new SipHash24(secret)
  }

  private tag(issued: number, ip: Uint8Array): number {
    const s = this.scratch
    s[0] = issued >>> 24
    s[1] = issued >>> 16
    s[2] = issued >>> 8
    s[3] = issued
    s.set(ip, 4)
    return this.sip.hash(s, 0, 4 + ip.length)
  }

  /** Writes the 8-byte id for `ip` (4 or 16 bytes) issued at `now` (seconds). */
  write(out: Uint8Array, offset: number, ip: Uint8Array, now: number): void {
    const tag = this.tag(now, ip)
    out[offset] = now >>> 24
    out[offset + 1] = now >>> 16
    out[offset + 2] = now >>> 8
    out[offset + 3] = now
    out[offset + 4] = tag >>> 24
    out[offset + 5] = tag >>> 16
    out[offset + 6] = tag >>> 8
    out[offset + 7] = tag
  }

  /** Is the id at buf[offset..offset+8] valid for `ip` at `now`? */
  validate(buf: Uint8Array, offset: number, ip: Uint8Array, now: number): boolean {
    const issued = ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0
    const given = ((buf[offset + 4] << 24) | (buf[offset + 5] << 16) | (buf[offset + 6] << 8) | buf[offset + 7]) >>> 0
    // Compute the tag whatever the time says, and compare all 32 bits at once.
    const same = (this.tag(issued, ip) ^ given) === 0
    const fresh = issued + this.maxAge > now
    const notFuture = issued <= now + 60
    return same && fresh && notFuture
  }
}
