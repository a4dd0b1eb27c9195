import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import * as udp from '../src/protocol/udp/index.js'
import {formatIp, parseIpInto} from '../src/net/ip.js'
import {nastyId} from './helpers.js'

const bytes20 = fc.uint8Array({minLength: 20, maxLength: 20})
const u32 = fc.nat(0xffffffff)
const u64 = fc.nat(Number.MAX_SAFE_INTEGER)

test('announce requests round-trip through the client writer and the server parser', () => {
  fc.assert(
    fc.property(
      fc.record({
        connectionId: fc.uint8Array({minLength: 8, maxLength: 8}),
        transactionId: u32,
        infoHash: bytes20,
        peerId: bytes20,
        downloaded: u64,
        left: u64,
        uploaded: u64,
        event: fc.nat(3),
        ip: u32,
        key: u32,
        numWant: fc.integer({min: -1, max: 0x7fffffff}),
        port: fc.integer({min: 1, max: 65535}),
      }),
      fc.uint8Array({maxLength: 64}),
      (f, trailing) => {
        const buf = new Uint8Array(98 + trailing.length)
        assert.equal(udp.writeAnnounceRequest(buf, {...f, numWant: f.numWant >>> 0}), 98)
        buf.set(trailing, 98) // BEP 41 options after the fixed part are ignored
        const out = new udp.ParsedRequest()
        assert.equal(udp.parseRequest(buf, buf.length, 70, out), udp.ParseStatus.Ok)
        assert.equal(out.action, udp.ACTION_ANNOUNCE)
        assert.equal(out.transactionId, f.transactionId)
        assert.deepEqual(buf.subarray(out.infoHashOffset, out.infoHashOffset + 20), f.infoHash)
        assert.deepEqual(buf.subarray(out.peerIdOffset, out.peerIdOffset + 20), f.peerId)
        assert.equal(out.downloaded, f.downloaded)
        assert.equal(out.left, f.left)
        assert.equal(out.leftIsZero, f.left === 0)
        assert.equal(out.uploaded, f.uploaded)
        assert.equal(out.event, f.event)
        assert.equal(out.ipField, f.ip)
        assert.equal(out.key, f.key)
        assert.equal(out.numWant, f.numWant)
        assert.equal(out.port, f.port)
      },
    ),
  )
})

test('connect and scrape requests round-trip; scrape is cut at max_scrape_torrents', () => {
  fc.assert(
    fc.property(u32, fc.array(bytes20, {minLength: 1, maxLength: 100}), fc.integer({min: 1, max: 255}), (tid, hashes, max) => {
      const out = new udp.ParsedRequest()
      const c = new Uint8Array(16)
      udp.writeConnectRequest(c, tid)
      assert.equal(udp.parseRequest(c, 16, max, out), udp.ParseStatus.Ok)
      assert.equal(out.action, udp.ACTION_CONNECT)
      assert.equal(out.transactionId, tid)
      const s = new Uint8Array(16 + 20 * hashes.length)
      const id = nastyId().subarray(0, 8)
      udp.writeScrapeRequest(s, id, tid, hashes)
      assert.equal(udp.parseRequest(s, s.length, max, out), udp.ParseStatus.Ok)
      assert.equal(out.action, udp.ACTION_SCRAPE)
      assert.equal(out.scrapeCount, Math.min(hashes.length, max))
      for (let i = 0; i < out.scrapeCount; i++) assert.deepEqual(s.subarray(out.scrapeOffset + 20 * i, out.scrapeOffset + 20 * i + 20), hashes[i])
    }),
  )
})

test('malformed requests: what is dropped and what gets an error text', () => {
  const out = new udp.ParsedRequest()
  const c = new Uint8Array(16)
  udp.writeConnectRequest(c, 1)
  c[0] ^= 1 // wrong protocol id
  assert.equal(udp.parseRequest(c, 16, 70, out), udp.ParseStatus.Drop)
  const a = new Uint8Array(98)
  udp.writeAnnounceRequest(a, {
    connectionId: new Uint8Array(8),
    transactionId: 9,
    infoHash: nastyId(),
    peerId: nastyId(),
    downloaded: 0,
    left: 0,
    uploaded: 0,
    event: 0,
    numWant: 1,
    port: 0,
  })
  assert.equal(udp.parseRequest(a, 98, 70, out), udp.ParseStatus.Error)
  assert.equal(out.errorMessage!.toString(), "Port can't be 0")
  assert.equal(udp.parseRequest(a, 97, 70, out), udp.ParseStatus.Drop, 'short announce')
  a[83] = 4 // unknown event
  a[97] = 1
  assert.equal(udp.parseRequest(a, 98, 70, out), udp.ParseStatus.Drop)
  const s = new Uint8Array(16 + 30)
  udp.writeScrapeRequest(s, new Uint8Array(8), 3, [])
  assert.equal(udp.parseRequest(s, 16, 70, out), udp.ParseStatus.Error)
  assert.equal(out.errorMessage!.toString(), 'Full scrapes are not allowed')
  assert.equal(udp.parseRequest(s, 46, 70, out), udp.ParseStatus.Error)
  assert.equal(out.errorMessage!.toString(), 'Invalid info hash list')
  s[11] = 7 // unknown action
  assert.equal(udp.parseRequest(s, 36, 70, out), udp.ParseStatus.Drop)
})

test('random bytes and every truncation never throw and give a known status', () => {
  const out = new udp.ParsedRequest()
  const statuses = new Set([udp.ParseStatus.Ok, udp.ParseStatus.Drop, udp.ParseStatus.Error])
  fc.assert(
    fc.property(fc.uint8Array({maxLength: 200}), fc.nat(3), (b, action) => {
      assert.ok(statuses.has(udp.parseRequest(b, b.length, 70, out)))
      // Also with a plausible action field, so every branch sees garbage.
      if (b.length >= 12) {
        b[8] = b[9] = b[10] = 0
        b[11] = action
        assert.ok(statuses.has(udp.parseRequest(b, b.length, 70, out)))
      }
    }),
    {numRuns: 5000},
  )
  const a = new Uint8Array(98)
  udp.writeAnnounceRequest(a, {
    connectionId: nastyId(),
    transactionId: 1,
    infoHash: nastyId(),
    peerId: nastyId(),
    downloaded: 1,
    left: 2,
    uploaded: 3,
    event: 2,
    numWant: 50,
    port: 6881,
  })
  const s = new Uint8Array(16 + 200)
  udp.writeScrapeRequest(
    s,
    nastyId(),
    1,
    Array.from({length: 10}, () => nastyId()),
  )
  for (const full of [a, s]) {
    for (let n = 0; n <= full.length; n++) assert.ok(statuses.has(udp.parseRequest(full.subarray(0, n), n, 70, out)))
  }
})

test('responses round-trip through the server writers and the client parser (IPv4 and IPv6 peers)', () => {
  fc.assert(
    fc.property(
      u32,
      u32,
      u32,
      u32,
      fc.constantFrom(6 as const, 18 as const),
      fc.array(fc.uint8Array({minLength: 18, maxLength: 18}), {maxLength: 50}),
      (tid, interval, leechers, seeders, size, rawPeers) => {
        const out = new Uint8Array(20 + 18 * 50)
        let n = udp.writeAnnounceHeader(out, tid, interval, leechers, seeders)
        for (const p of rawPeers) {
          out.set(p.subarray(0, size), n)
          n += size
        }
        const r = udp.parseResponse(out, n, size)
        assert.ok(r && r.action === 1)
        // BEP 15 counts are int32: larger ones are clamped, never wrapped negative.
        assert.deepEqual([r.transactionId, r.interval, r.leechers, r.seeders], [tid, interval, Math.min(leechers, 0x7fffffff), Math.min(seeders, 0x7fffffff)])
        assert.deepEqual(
          r.peers.map(p => [...p.ip, p.port >> 8, p.port & 0xff]),
          rawPeers.map(p => [...p.subarray(0, size)]),
        )
      },
    ),
  )
  fc.assert(
    fc.property(u32, fc.array(fc.tuple(u32, u32, u32), {maxLength: 70}), (tid, entries) => {
      const out = new Uint8Array(8 + 12 * 70)
      const n = udp.writeScrapeHeader(out, tid)
      entries.forEach(([s, c, l], i) => udp.writeScrapeEntry(out, i, s, c, l))
      const r = udp.parseResponse(out, n + 12 * entries.length, 6)
      assert.ok(r && r.action === 2)
      const clamp = (x: number): number => Math.min(x, 0x7fffffff)
      assert.deepEqual(
        r.torrents.map(t => [t.seeders, t.completed, t.leechers]),
        entries.map(e => e.map(clamp)),
      )
    }),
  )
  const out = new Uint8Array(64)
  let n = udp.writeConnectResponse(out, 77)
  out.set([1, 2, 3, 4, 5, 6, 7, 8], 8)
  assert.deepEqual(udp.parseResponse(out, n, 6), {action: 0, transactionId: 77, connectionId: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])})
  n = udp.writeErrorResponse(out, 78, udp.ERROR_INFO_HASH_NOT_ALLOWED)
  assert.deepEqual(udp.parseResponse(out, n, 6), {action: 3, transactionId: 78, message: 'Info hash not allowed'})
})

test('connection ids: valid for the same IP within max age only; forged, future and flipped ids fail', () => {
  const v = new udp.ConnectionIdValidator(nastyId().subarray(0, 16), 120)
  const other = new udp.ConnectionIdValidator(nastyId().subarray(0, 16), 120)
  const ip4 = Uint8Array.from([127, 0, 0, 1])
  const ip6 = Uint8Array.from(Array.from({length: 16}, (_, i) => i * 17))
  for (const ip of [ip4, ip6]) {
    const id = new Uint8Array(8)
    v.write(id, 0, ip, 1000)
    assert.ok(v.validate(id, 0, ip, 1000))
    assert.ok(v.validate(id, 0, ip, 1119), 'just inside max age')
    assert.ok(!v.validate(id, 0, ip, 1120), 'expired')
    assert.ok(!other.validate(id, 0, ip, 1000), 'another secret')
    const elsewhere = Uint8Array.from(ip)
    elsewhere[elsewhere.length - 1] ^= 1
    assert.ok(!v.validate(id, 0, elsewhere, 1000), 'another IP')
    for (let bit = 0; bit < 64; bit++) {
      const flipped = Uint8Array.from(id)
      flipped[bit >> 3] ^= 1 << (bit & 7)
      assert.ok(!v.validate(flipped, 0, ip, 1000), `bit ${bit} flipped`)
    }
    const future = new Uint8Array(8)
    v.write(future, 0, ip, 2000)
    assert.ok(!v.validate(future, 0, ip, 1000), 'issued in the future')
    assert.ok(v.validate(future, 0, ip, 1940), 'a minute of clock skew is tolerated')
  }
})

test('IP text to bytes and back: IPv4, RFC 5952 IPv6, mapped IPv4 is IPv4, garbage refused', () => {
  const out = new Uint8Array(16)
  assert.equal(parseIpInto('192.0.2.33', out), 4)
  assert.deepEqual([...out.subarray(0, 4)], [192, 0, 2, 33])
  assert.equal(formatIp(out, 0, 4), '192.0.2.33')
  assert.equal(parseIpInto('::ffff:10.1.2.3', out), 4)
  assert.deepEqual([...out.subarray(0, 4)], [10, 1, 2, 3])
  for (const [text, canonical] of [
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['fe80::', 'fe80::'],
  ]) {
    assert.equal(parseIpInto(text, out), 6, text)
    assert.equal(formatIp(out, 0, 6), canonical)
  }
  for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4.5', ':::', '1::2::3', 'abc', '12345::']) assert.equal(parseIpInto(bad, out), 0, bad)
  fc.assert(
    fc.property(fc.uint8Array({minLength: 16, maxLength: 16}), b => {
      const text = formatIp(b, 0, 6)
      const back = new Uint8Array(16)
      const family = parseIpInto(text, back)
      const mapped = b.subarray(0, 10).every(x => x === 0) && b[10] === 0xff && b[11] === 0xff
      if (mapped) assert.deepEqual(back.subarray(0, 4), b.subarray(12))
      else assert.deepEqual(back, b)
      assert.equal(family, mapped ? 4 : 6)
    }),
  )
})
