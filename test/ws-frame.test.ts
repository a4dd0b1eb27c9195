/** WebSocket framing (RFC 6455) on its own: headers written and parsed back, truncated, random; masking. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  acceptKey,
  FIN,
  FrameHeader,
  frameHeaderLength,
  FrameStatus,
  isValidCloseCode,
  isWebSocketKey,
  maskPayload,
  OP_CLOSE,
  parseFrameHeader,
  writeFrameHeader,
} from '../src/protocol/ws/frame.js'

/** Lengths of all three forms (7-bit, 16-bit, 64-bit), their edges, and past 2^32. */
const lengths = fc.oneof(
  fc.integer({min: 0, max: 125}),
  fc.integer({min: 126, max: 65_535}),
  fc.integer({min: 65_536, max: 2 ** 33}),
  fc.integer({min: 2 ** 32 - 4, max: 2 ** 32 + 4}),
  fc.constantFrom(0, 125, 126, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
)

const headers = fc.record({
  fin: fc.boolean(),
  rsv: fc.constantFrom<number>(0, 0, 0, 0x10, 0x20, 0x40, 0x70),
  opcode: fc.nat(15),
  length: lengths,
  /** A masking key, or -1 for none. */
  mask: fc.oneof(fc.constant(-1), fc.nat(0xffffffff)),
  /** Where in the buffer the frame starts. */
  at: fc.nat(8),
})
type Header = typeof headers extends fc.Arbitrary<infer T> ? T : never

const isControl = (h: Header) => h.opcode >= OP_CLOSE
const expected = (h: Header): FrameStatus =>
  h.rsv !== 0 ? FrameStatus.ReservedBits : isControl(h) && (!h.fin || h.length > 125) ? FrameStatus.BadControlFrame : FrameStatus.Ok

/** The header written by `writeFrameHeader` at h.at, followed by a few payload bytes. */
function written(h: Header): {buf: Buffer; end: number} {
  const buf = Buffer.alloc(h.at + 14 + 4, 0xee)
  const end = writeFrameHeader(buf, h.at, (h.fin ? FIN : 0) | h.rsv | h.opcode, h.length, h.mask)
  return {buf, end}
}

/** The same header by another hand (Buffer's own writers), so that a bug made twice shows. */
function reference(h: Header): Buffer {
  const masked = h.mask >= 0
  const parts = [Buffer.from([(h.fin ? 0x80 : 0) | h.rsv | h.opcode])]
  const m = masked ? 0x80 : 0
  if (h.length < 126) parts.push(Buffer.from([m | h.length]))
  else if (h.length < 65_536) {
    const b = Buffer.alloc(3)
    b[0] = m | 126
    b.writeUInt16BE(h.length, 1)
    parts.push(b)
  } else {
    const b = Buffer.alloc(9)
    b[0] = m | 127
    b.writeBigUInt64BE(BigInt(h.length), 1)
    parts.push(b)
  }
  if (masked) {
    const k = Buffer.alloc(4)
    k.writeUInt32BE(h.mask)
    parts.push(k)
  }
  return Buffer.concat(parts)
}

test('frame headers round-trip: every length form, masked and not, FIN, RSV and opcode bits', () => {
  fc.assert(
    fc.property(headers, h => {
      const masked = h.mask >= 0
      const {buf, end} = written(h)
      assert.equal(end - h.at, frameHeaderLength(h.length, masked))
      assert.deepEqual(buf.subarray(h.at, end), reference(h))
      const out = new FrameHeader()
      assert.equal(parseFrameHeader(buf, h.at, buf.length, masked, out), expected(h))
      assert.equal(out.fin, h.fin)
      assert.equal(out.rsv, h.rsv)
      assert.equal(out.opcode, h.opcode)
      assert.equal(out.masked, masked)
      if (h.rsv !== 0) return
      assert.equal(out.length, h.length)
      assert.equal(out.headerLength, end - h.at)
      // Masked where unmasked is expected, and the other way round.
      assert.equal(parseFrameHeader(buf, h.at, buf.length, !masked, out), FrameStatus.WrongMasking)
    }),
  )
})

test('every truncation of a valid header needs more bytes, and says how many; the fields read so far are set', () => {
  const valid = headers.map(h => ({...h, rsv: 0, fin: h.fin || h.opcode >= OP_CLOSE, length: h.opcode >= OP_CLOSE ? h.length % 126 : h.length}))
  fc.assert(
    fc.property(valid, h => {
      const masked = h.mask >= 0
      const {buf, end} = written(h)
      const out = new FrameHeader()
      for (let k = 0; k < end - h.at; k++) {
        assert.equal(parseFrameHeader(buf, h.at, h.at + k, masked, out), FrameStatus.NeedMore, `${k} bytes`)
        assert.ok(out.need > k && out.need <= end - h.at, `need ${out.need} after ${k} bytes`)
        if (k >= 2) assert.equal(out.opcode, h.opcode)
        // The length is known once its bytes are there, before the masking key.
        if (out.length >= 0) assert.equal(out.length, h.length)
        if (k >= frameHeaderLength(h.length)) assert.equal(out.length, h.length)
      }
      assert.equal(parseFrameHeader(buf, h.at, end, masked, out), FrameStatus.Ok)
    }),
  )
})

test('random bytes never throw: a status, and Ok only for a header that is there', () => {
  const out = new FrameHeader()
  fc.assert(
    fc.property(fc.uint8Array({maxLength: 24}), fc.nat(24), fc.nat(24), fc.boolean(), (bytes, a, b, fromClient) => {
      const pos = Math.min(a, bytes.length)
      const end = Math.max(pos, Math.min(b, bytes.length))
      const status = parseFrameHeader(bytes, pos, end, fromClient, out)
      assert.ok(status >= FrameStatus.Ok && status <= FrameStatus.BadControlFrame)
      if (status === FrameStatus.Ok) assert.ok(out.headerLength <= end - pos && out.length >= 0)
      if (status === FrameStatus.NeedMore) assert.ok(out.need > end - pos)
    }),
    {numRuns: 5000},
  )
})

test('a 64-bit length past 2^53 reads as Infinity (too big for anyone), not as a wrong number', () => {
  const out = new FrameHeader()
  const buf = Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])
  assert.equal(parseFrameHeader(buf, 0, buf.length, true, out), FrameStatus.Ok)
  assert.equal(out.length, Infinity)
  assert.equal(out.headerLength, 14)
})

test('masking is an XOR with the key, byte by byte, whatever the length (native and JS paths); twice undoes it', () => {
  fc.assert(
    fc.property(fc.uint8Array({maxLength: 200}), fc.uint8Array({minLength: 4, maxLength: 4}), fc.nat(3), (data, key, keyAt) => {
      const keys = Buffer.alloc(8)
      keys.set(key, keyAt)
      const payload = Buffer.from(data)
      maskPayload(payload, keys, keyAt)
      assert.deepEqual(payload, Buffer.from(data.map((b, i) => b ^ key[i & 3])))
      maskPayload(payload, keys, keyAt)
      assert.deepEqual(payload, Buffer.from(data))
    }),
  )
})

test('the handshake: the accept key of RFC 6455 section 1.3, keys of 16 bytes in base64, close codes', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  assert.ok(isWebSocketKey('dGhlIHNhbXBsZSBub25jZQ=='))
  for (const bad of [undefined, '', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ=', 'dGhlIHNhbXBsZSBub25jZQ==x', 'dGhlIHNhbXBsZSBub25jZ!==']) {
    assert.equal(isWebSocketKey(bad), false, String(bad))
  }
  for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]) assert.ok(isValidCloseCode(code), String(code))
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000]) assert.equal(isValidCloseCode(code), false, String(code))
})
