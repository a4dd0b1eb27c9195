import {randomBytes} from 'node:crypto'

/** Bytes that break naive string handling: control bytes, quote, backslash, high bytes. */
const NASTY = [0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xc3, 0xff]

/** A random 20-byte value (info hash, peer id) guaranteed to hold several nasty bytes. */
export function nastyId(): Buffer {
  const b = randomBytes(20)
  for (let i = 0; i < 5; i++) b[b[19 - i] % 20] = NASTY[b[i] % NASTY.length]
  b[0] = NASTY[b[1] % NASTY.length]
  return b
}
