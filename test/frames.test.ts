/** Every mesh frame: encode then decode gives the values back; cut and random frames never throw. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {AnnounceQuery} from '../src/protocol/http/index.js'
import * as f from '../src/server/frames.js'

const bytes = (n: number) => fc.uint8Array({minLength: n, maxLength: n})
const u32 = fc.nat(0xffffffff)
const u16 = fc.nat(0xffff)
const binaryString = fc.uint8Array({minLength: 20, maxLength: 20}).map(b => Buffer.from(b).toString('latin1'))

/**
 * One frame kind: values, their encoding at an offset, and a decoding into plain values (null
 * when the decoder says it is not a frame). `head` is set for frames that end in bytes whose
 * length only the frame's length gives (a message, a body, a chunk): cut within those, they are
 * the same frame with fewer bytes; cut anywhere else, or any fixed-size frame, they are none.
 */
interface Kind<V> {
  type: number
  values: fc.Arbitrary<V>
  encode(out: Buffer, at: number, v: V): number
  decode(buf: Buffer, offset: number, length: number): unknown
  /** What `decode` gives for `v` itself. */
  expect(v: V): unknown
  head?: number
  /** What `decode` gives for `v` cut to `n` bytes (n >= head), where `head` is set. */
  cut?(v: V, n: number): unknown
}

const kind = <V>(k: Kind<V>): Kind<unknown> => k as Kind<unknown>

/** `x` with plain objects for fast-check's records (they have no prototype). */
function plain(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(plain)
  if (x === null || typeof x !== 'object' || ArrayBuffer.isView(x)) return x
  return Object.fromEntries(Object.entries(x).map(([key, v]) => [key, plain(v)]))
}

const scrapeRequest = new f.ScrapeRequestFrame()
const scrapeResponse = new f.ScrapeResponseFrame()
const chunk = new f.FullScrapeChunkFrame()
const udpAnnounce = new f.UdpAnnounceFrame()
const httpAnnounce = new f.HttpAnnounceFrame()
const httpQuery = new AnnounceQuery()
const httpReply = new f.HttpAnnounceReplyFrame()
const wsRequest = new f.WsRequestFrame()
const wsDeliver = new f.WsDeliverFrame()
const wsRemove = new f.WsRemoveFrame()

const payload = fc.uint8Array({maxLength: 300})

const KINDS: Record<keyof typeof f.FRAME, Kind<unknown>> = {
  scrapeRequest: kind({
    type: f.FRAME.scrapeRequest,
    values: fc.record({id: u32, entries: fc.array(fc.record({index: u16, hash: bytes(20)}), {maxLength: 40})}),
    encode(out, at, v) {
      f.writeScrapeHead(out, at, v.id, v.entries.length)
      v.entries.forEach((e, k) => f.writeScrapeRequestEntry(out, at, k, e.index, e.hash, 0))
      return f.scrapeRequestBytes(v.entries.length)
    },
    decode(buf, offset, length) {
      const r = scrapeRequest
      if (!r.decode(buf, offset, length)) return null
      const entries = Array.from({length: r.count}, (_, k) => ({index: r.index(k), hash: new Uint8Array(buf.subarray(r.hashOffset(k), r.hashOffset(k) + 20))}))
      return {id: r.id, entries}
    },
    expect: v => v,
  }),
  scrapeResponse: kind({
    type: f.FRAME.scrapeResponse,
    values: fc.record({id: u32, entries: fc.array(fc.record({index: u16, seeders: u32, completed: u32, leechers: u32}), {maxLength: 40})}),
    encode(out, at, v) {
      f.writeScrapeHead(out, at, v.id, v.entries.length)
      v.entries.forEach((e, k) => f.writeScrapeResponseEntry(out, at, k, e.index, e.seeders, e.completed, e.leechers))
      return f.scrapeResponseBytes(v.entries.length)
    },
    decode(buf, offset, length) {
      const r = scrapeResponse
      if (!r.decode(buf, offset, length)) return null
      const entries = Array.from({length: r.count}, (_, k) => ({index: r.index(k), seeders: r.seeders(k), completed: r.completed(k), leechers: r.leechers(k)}))
      return {id: r.id, entries}
    },
    expect: v => v,
  }),
  fullScrapeChunk: kind({
    type: f.FRAME.fullScrapeChunk,
    values: fc.record({generation: u32, index: u32, last: fc.boolean(), part: payload, start: fc.nat(20)}),
    encode: (out, at, v) => f.writeFullScrapeChunk(out, at, v.generation, v.index, v.last, v.part, Math.min(v.start, v.part.length), v.part.length),
    decode(buf, offset, length) {
      const c = chunk
      if (!c.decode(buf, offset, length)) return null
      return {generation: c.generation, index: c.index, last: c.last, bytes: new Uint8Array(buf.subarray(c.start, c.end))}
    },
    expect: v => ({generation: v.generation, index: v.index, last: v.last, bytes: v.part.subarray(Math.min(v.start, v.part.length))}),
    head: f.FULL_SCRAPE_CHUNK_HEAD,
    cut: (v, n) => ({
      generation: v.generation,
      index: v.index,
      last: v.last,
      bytes: v.part.subarray(Math.min(v.start, v.part.length)).subarray(0, n - f.FULL_SCRAPE_CHUNK_HEAD),
    }),
  }),
  udpAnnounce: kind({
    type: f.FRAME.udpAnnounce,
    values: fc.record({
      socketFamily: fc.constantFrom(0 as const, 1 as const),
      port: u16,
      ipFamily: fc.constantFrom(4 as const, 6 as const),
      ip: bytes(16),
      request: bytes(98),
    }),
    encode: (out, at, v) => f.writeUdpAnnounce(out, at, v.socketFamily, v.port, v.ipFamily, v.ipFamily === 4 ? v.ip.subarray(0, 4) : v.ip, v.request, 0),
    decode(buf, offset, length) {
      const u = udpAnnounce
      if (!u.decode(buf, offset, length)) return null
      const ip = new Uint8Array(buf.subarray(u.ipOffset, u.ipOffset + (u.ipFamily === 4 ? 4 : 16)))
      return {socketFamily: u.socketFamily, port: u.port, ipFamily: u.ipFamily, ip, request: new Uint8Array(buf.subarray(u.requestStart, u.requestEnd))}
    },
    expect: v => ({...v, ip: v.ipFamily === 4 ? v.ip.subarray(0, 4) : v.ip}),
  }),
  httpAnnounce: kind({
    type: f.FRAME.httpAnnounce,
    values: fc.record({
      id: u32,
      ipFamily: fc.constantFrom(4 as const, 6 as const),
      ip: bytes(16),
      port: u16,
      event: fc.nat(3),
      leftIsZero: fc.boolean(),
      compact: fc.boolean(),
      noPeerId: fc.boolean(),
      numWant: fc.integer({min: -1, max: 0xfffe}),
      infoHash: bytes(20),
      peerId: bytes(20),
    }),
    encode(out, at, v) {
      const q = new AnnounceQuery()
      Object.assign(q, {port: v.port, event: v.event, leftIsZero: v.leftIsZero, compact: v.compact, noPeerId: v.noPeerId, numWant: v.numWant})
      q.infoHash.set(v.infoHash)
      q.peerId.set(v.peerId)
      return f.writeHttpAnnounce(out, at, v.id, q, v.ipFamily, v.ip)
    },
    decode(buf, offset, length) {
      const h = httpAnnounce
      const q = httpQuery
      if (!h.decode(buf, offset, length, q)) return null
      return {
        id: h.id,
        ipFamily: h.ipFamily,
        ip: new Uint8Array(h.ip),
        port: q.port,
        event: q.event,
        leftIsZero: q.leftIsZero,
        compact: q.compact,
        noPeerId: q.noPeerId,
        numWant: q.numWant,
        infoHash: new Uint8Array(q.infoHash),
        peerId: new Uint8Array(q.peerId),
      }
    },
    expect: v => v,
  }),
  httpAnnounceReply: kind({
    type: f.FRAME.httpAnnounceReply,
    values: fc.record({id: u32, body: payload}),
    encode: (out, at, v) => f.writeHttpAnnounceReply(out, at, v.id, v.body, v.body.length),
    decode(buf, offset, length) {
      const r = httpReply
      if (!r.decode(buf, offset, length)) return null
      return {id: r.id, body: new Uint8Array(buf.subarray(r.bodyStart, r.bodyStart + r.bodyLength))}
    },
    expect: v => v,
    head: f.HTTP_ANNOUNCE_REPLY_HEAD,
    cut: (v, n) => ({id: v.id, body: v.body.subarray(0, n - f.HTTP_ANNOUNCE_REPLY_HEAD)}),
  }),
  wsRequest: kind({
    type: f.FRAME.wsRequest,
    values: fc.record({connId: u32, family: fc.constantFrom(0 as const, 1 as const), message: payload}),
    encode: (out, at, v) => f.writeWsRequest(out, at, v.connId, v.family, v.message, 0, v.message.length),
    decode(buf, offset, length) {
      const r = wsRequest
      if (!r.decode(buf, offset, length)) return null
      return {connId: r.connId, family: r.family, message: new Uint8Array(buf.subarray(r.start, r.end))}
    },
    expect: v => v,
    head: f.WS_MESSAGE_HEAD,
    cut: (v, n) => ({...v, message: v.message.subarray(0, n - f.WS_MESSAGE_HEAD)}),
  }),
  wsDeliver: kind({
    type: f.FRAME.wsDeliver,
    values: fc.record({connId: u32, type: fc.nat(255), message: payload, text: fc.boolean()}),
    encode(out, at, v) {
      if (!v.text) return f.writeWsDeliver(out, at, v.connId, v.type, v.message, 0, v.message.length)
      // As text: the same bytes (latin1 text of bytes under 0x80 is their UTF-8).
      const text = Buffer.from(v.message.map(b => b & 0x7f)).toString('latin1')
      return f.writeWsDeliverText(out, at, v.connId, v.type, text)
    },
    decode(buf, offset, length) {
      const d = wsDeliver
      if (!d.decode(buf, offset, length)) return null
      return {connId: d.connId, type: d.type, message: new Uint8Array(buf.subarray(d.start, d.end))}
    },
    expect: v => ({connId: v.connId, type: v.type, message: v.text ? v.message.map(b => b & 0x7f) : v.message}),
    head: f.WS_MESSAGE_HEAD,
    cut: (v, n) => ({connId: v.connId, type: v.type, message: (v.text ? v.message.map(b => b & 0x7f) : v.message).subarray(0, n - f.WS_MESSAGE_HEAD)}),
  }),
  wsRemove: kind({
    type: f.FRAME.wsRemove,
    values: fc.record({connId: u32, family: fc.constantFrom(0 as const, 1 as const), infoHash: binaryString, peerId: binaryString}),
    encode: (out, at, v) => f.writeWsRemove(out, at, v.connId, v.family, v.infoHash, v.peerId),
    decode(buf, offset, length) {
      const r = wsRemove
      if (!r.decode(buf, offset, length)) return null
      return {connId: r.connId, family: r.family, infoHash: r.infoHash, peerId: r.peerId}
    },
    expect: v => v,
  }),
}

test('frame type numbers are distinct bytes, and every frame has its case here', () => {
  const types = Object.values(f.FRAME)
  assert.equal(new Set(types).size, types.length)
  for (const t of types) assert.ok(Number.isInteger(t) && t >= 0 && t <= 255)
  assert.deepEqual(Object.keys(KINDS).sort(), Object.keys(f.FRAME).sort())
  for (const [name, k] of Object.entries(KINDS)) assert.equal(k.type, f.FRAME[name as keyof typeof f.FRAME])
})

for (const [name, k] of Object.entries(KINDS)) {
  test(`${name}: encode then decode gives the same values, at any offset, whatever lies around`, () => {
    fc.assert(
      fc.property(k.values, fc.nat(64), fc.uint8Array({maxLength: 64}), (v, at, around) => {
        const out = Buffer.alloc(at + 4096, 0xa5)
        const length = k.encode(out, at, v)
        // What lies after the frame in the mesh's buffer is another frame: never read.
        const buf = Buffer.concat([out.subarray(0, at + length), around])
        assert.deepEqual(k.decode(buf, at, length), plain(k.expect(v)))
      }),
      {numRuns: 300},
    )
  })

  test(`${name}: every truncation is not a frame${k.head !== undefined ? ' (or, past its head, the same frame with fewer bytes)' : ''}, and never throws`, () => {
    fc.assert(
      fc.property(k.values, v => {
        const out = Buffer.alloc(4096)
        const length = k.encode(out, 0, v)
        for (let n = 0; n < length; n++) {
          // Cut to n bytes: a buffer that ends there, so that a read past it would throw.
          const cut = Buffer.from(out.subarray(0, n))
          const expected = k.head !== undefined && n >= k.head ? plain(k.cut!(v, n)) : null
          assert.deepEqual(k.decode(cut, 0, n), expected, `cut to ${n} of ${length} bytes`)
        }
      }),
      {numRuns: 100},
    )
  })

  test(`${name}: random bytes never throw`, () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 400}), fc.nat(400), fc.nat(400), (b, o, l) => {
        const buf = Buffer.from(b)
        const offset = Math.min(o, buf.length)
        k.decode(buf, offset, Math.min(l, buf.length - offset))
      }),
      {numRuns: 2000},
    )
  })
}
