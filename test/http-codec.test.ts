/** HTTP request parsing and bencode writing: properties and robustness. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import bencode from 'bencode'
import * as http from '../src/protocol/http/index.js'
import {nastyId} from './helpers.js'
import {scrapeFiles} from './http-client.js'

const limits: http.HeadLimits = {maxLineBytes: 8192, maxHeadBytes: 16_384, maxHeaders: 64}
const bytes20 = fc.uint8Array({minLength: 20, maxLength: 20})

/** Encodes bytes choosing per byte between %XX (either case) and the raw character where allowed. */
const looseEncoding = (bytes: Uint8Array, choices: boolean[]): string =>
  [...bytes]
    .map((b, i) => {
      const c = String.fromCharCode(b)
      if (choices[i % choices.length] && /[A-Za-z0-9\-._~!$'()*,;:@/]/.test(c)) return c
      const hex = b.toString(16).padStart(2, '0')
      return '%' + (choices[(i + 1) % choices.length] ? hex.toUpperCase() : hex)
    })
    .join('')

test('announce queries round-trip: any 20-byte info hash and peer id, in any valid encoding, any field order', () => {
  fc.assert(
    fc.property(
      fc.record({
        infoHash: bytes20,
        peerId: bytes20,
        port: fc.integer({min: 1, max: 65535}),
        left: fc.oneof(fc.constant(0), fc.nat(Number.MAX_SAFE_INTEGER)),
        uploaded: fc.nat(Number.MAX_SAFE_INTEGER),
        event: fc.constantFrom('', 'started', 'stopped', 'completed', 'empty'),
        numWant: fc.option(fc.nat(1000)),
        compact: fc.option(fc.boolean()),
        noPeerId: fc.boolean(),
      }),
      fc.array(fc.boolean(), {minLength: 1, maxLength: 8}),
      fc.array(fc.constantFrom('key=abc', 'ip=1.2.3.4', 'supportcrypto=1', 'corrupt=0', 'x'), {maxLength: 3}),
      fc.integer(),
      (f, choices, extra, seed) => {
        const parts = [
          `info_hash=${looseEncoding(f.infoHash, choices)}`,
          `peer_id=${looseEncoding(f.peerId, choices)}`,
          `port=${f.port}`,
          `uploaded=${f.uploaded}`,
          'downloaded=0',
          `left=${f.left}`,
          ...extra,
        ]
        if (f.event) parts.push(`event=${f.event}`)
        if (f.numWant !== null) parts.push(`numwant=${f.numWant}`)
        if (f.compact !== null) parts.push(`compact=${f.compact ? 1 : 0}`)
        if (f.noPeerId) parts.push('no_peer_id=1')
        // Shuffle deterministically.
        const order = parts
          .map((p, i) => [((seed ^ (i * 2654435761)) >>> 0) % 1000, p] as const)
          .sort((a, b) => a[0] - b[0])
          .map(x => x[1])
        const q = Buffer.from(order.join('&'), 'latin1')
        const out = new http.AnnounceQuery()
        assert.equal(http.parseAnnounceQuery(q, 0, q.length, out), null, q.toString('latin1'))
        assert.deepEqual(out.infoHash, f.infoHash)
        assert.deepEqual(out.peerId, f.peerId)
        assert.equal(out.port, f.port)
        assert.equal(out.leftIsZero, f.left === 0)
        assert.equal(out.event, ({'': 0, empty: 0, completed: 1, started: 2, stopped: 3} as Record<string, number>)[f.event])
        assert.equal(out.numWant, f.numWant ?? -1)
        assert.equal(out.compact, f.compact ?? true)
        assert.equal(out.noPeerId, f.noPeerId)
      },
    ),
  )
})

test('the client path builder and the server parser agree, for every byte value', () => {
  const all = Buffer.from(Array.from({length: 256}, (_, i) => i))
  for (let at = 0; at < 256; at += 20) {
    const infoHash = Buffer.alloc(20)
    all.copy(infoHash, 0, at, Math.min(at + 20, 256))
    const path = Buffer.from(http.announcePath({infoHash, peerId: nastyId(), port: 1, left: 0, event: 'started', numWant: 5}))
    const out = new http.AnnounceQuery()
    assert.equal(http.parseAnnounceQuery(path, path.indexOf('?') + 1, path.length, out), null)
    assert.deepEqual(Buffer.from(out.infoHash), infoHash)
  }
  const hashes = [nastyId(), nastyId(), nastyId()]
  const path = Buffer.from(http.scrapePath(hashes))
  const out = Buffer.alloc(60)
  assert.equal(http.parseScrapeQuery(path, path.indexOf('?') + 1, path.length, 10, out), 3)
  assert.deepEqual(out, Buffer.concat(hashes))
  assert.equal(http.parseScrapeQuery(path, path.indexOf('?') + 1, path.length, 2, out), 2, 'extra hashes ignored')
})

test('19- and 21-byte hashes, bad percent escapes and truncated escapes are refused', () => {
  const ok = '%00'.repeat(20)
  const cases = [
    '%00'.repeat(19),
    '%00'.repeat(21),
    'a'.repeat(19),
    'a'.repeat(21),
    '%0'.concat('%00'.repeat(19)),
    '%zz'.concat('%00'.repeat(19)),
    '%00'.repeat(19).concat('%'),
    '%00'.repeat(19).concat('%4'),
    '',
  ]
  for (const bad of cases) {
    for (const key of ['info_hash', 'peer_id']) {
      const q = Buffer.from(`info_hash=${key === 'info_hash' ? bad : ok}&peer_id=${key === 'peer_id' ? bad : ok}&port=1&uploaded=0&downloaded=0&left=0`)
      assert.match(http.parseAnnounceQuery(q, 0, q.length, new http.AnnounceQuery()) ?? '', new RegExp(key), `${key}=${bad}`)
    }
    const s = Buffer.from(`info_hash=${bad}`)
    assert.equal(typeof http.parseScrapeQuery(s, 0, s.length, 10, Buffer.alloc(200)), 'string', `scrape ${bad}`)
  }
})

const request = (target: string, headers: string[] = []) =>
  Buffer.from(`GET ${target} HTTP/1.1\r\nHost: tracker.example\r\n${headers.map(h => h + '\r\n').join('')}\r\n`, 'latin1')

test('a request head split at any byte is incomplete until its last byte, then parses the same', () => {
  const full = request('/announce?' + 'info_hash=' + '%ff'.repeat(20), ['Connection: keep-alive', 'X-Forwarded-For: 1.2.3.4, 5.6.7.8'])
  const head = new http.RequestHead()
  for (let cut = 0; cut < full.length; cut++) {
    assert.equal(http.parseHead(full, 0, cut, limits, Buffer.from('x-forwarded-for'), head), http.HeadStatus.Incomplete, `cut at ${cut}`)
  }
  assert.equal(http.parseHead(full, 0, full.length, limits, Buffer.from('x-forwarded-for'), head), http.HeadStatus.Ok)
  assert.equal(head.headEnd, full.length)
  assert.equal(full.toString('latin1', head.pathStart, head.pathEnd), '/announce')
  assert.equal(full.toString('latin1', head.queryStart, head.queryEnd), 'info_hash=' + '%ff'.repeat(20))
  assert.equal(full.toString('latin1', head.ipHeaderStart, head.ipHeaderEnd), '1.2.3.4, 5.6.7.8')
  assert.equal(head.keepAlive(), true)
})

test('pipelined requests parse one after another; Connection and HTTP version decide keep-alive', () => {
  const parts = [
    request('/a?x=1'),
    request('/scrape', ['connection: Close']),
    Buffer.from('GET /b HTTP/1.0\r\n\r\n'),
    Buffer.from('GET /c HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'),
    Buffer.from('\r\nGET /d HTTP/1.1\n\n'),
  ]
  const all = Buffer.concat(parts)
  const head = new http.RequestHead()
  const seen: [string, boolean][] = []
  let at = 0
  while (at < all.length) {
    assert.equal(http.parseHead(all, at, all.length, limits, null, head), http.HeadStatus.Ok)
    seen.push([all.toString('latin1', head.pathStart, head.pathEnd), head.keepAlive()])
    at = head.headEnd
  }
  assert.deepEqual(seen, [
    ['/a', true],
    ['/scrape', false],
    ['/b', false],
    ['/c', true],
    ['/d', true],
  ])
})

test('limits: request line, head size and header count; malformed heads', () => {
  const head = new http.RequestHead()
  const small = {maxLineBytes: 100, maxHeadBytes: 300, maxHeaders: 3}
  const line = (n: number) => request('/' + 'a'.repeat(n - 'GET / HTTP/1.1'.length))
  assert.equal(http.parseHead(line(100), 0, line(100).length, small, null, head), http.HeadStatus.Ok)
  assert.equal(http.parseHead(line(101), 0, line(101).length, small, null, head), http.HeadStatus.LineTooLong)
  // Without the end of the line yet, too long is known as soon as the limit is passed.
  const partial = Buffer.from('GET /' + 'a'.repeat(200))
  assert.equal(http.parseHead(partial, 0, partial.length, small, null, head), http.HeadStatus.LineTooLong)
  const big = request('/', ['X: ' + 'b'.repeat(300)])
  assert.equal(http.parseHead(big, 0, big.length, small, null, head), http.HeadStatus.HeadTooLarge)
  const many = request('/', ['A: 1', 'B: 2', 'C: 3'])
  assert.equal(http.parseHead(many, 0, many.length, small, null, head), http.HeadStatus.HeadTooLarge, 'Host plus three is four headers')
  for (const bad of [
    'GET\r\n\r\n',
    'get / HTTP/1.1\r\n\r\n',
    'GET / HTTP/2.0\r\n\r\n',
    'GET  / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\n folded\r\n\r\n',
    'GET / HTTP/1.1\r\nNoColon\r\n\r\n',
    'GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n',
    'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
  ]) {
    const b = Buffer.from(bad, 'latin1')
    assert.equal(http.parseHead(b, 0, b.length, limits, null, head), http.HeadStatus.Malformed, JSON.stringify(bad))
  }
  const withBody = request('/', ['Content-Length: 5'])
  // Bytes a proxy in front could read differently (RFC 9112 2.2): bare CR, NUL, other controls,
  // names that are not tokens.
  for (const bad of [
    'GET / HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n',
    'GET / HTTP/1.1\r\nX\x00Y: 1\r\n\r\n',
    'GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n',
    'GET / HTTP/1.1\r\nX-A: a\x1bb\r\n\r\n',
    'GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n',
    'GET / HTTP/1.1\r\nX A: 1\r\n\r\n',
    'GET / HTTP/1.1\r\nX-A : 1\r\n\r\n',
    'GET / HTTP/1.1\r\nX(A): 1\r\n\r\n',
    'GET /a\rb HTTP/1.1\r\n\r\n',
    'GET /a\x00b HTTP/1.1\r\n\r\n',
    'GET /a\x7f HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\r\n\r\n',
  ]) {
    const b = Buffer.from(bad, 'latin1')
    assert.equal(http.parseHead(b, 0, b.length, limits, null, head), http.HeadStatus.Malformed, JSON.stringify(bad))
  }
  // What stays valid: tabs and obs-text in values, every tchar in names, bare LF line ends.
  for (const good of ['GET / HTTP/1.1\r\nX-A: a\tb\xe9\xff\r\n\r\n', "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09Az: 1\r\n\r\n", 'GET /?a=%00 HTTP/1.1\nHost: x\n\n']) {
    const b = Buffer.from(good, 'latin1')
    assert.equal(http.parseHead(b, 0, b.length, limits, null, head), http.HeadStatus.Ok, JSON.stringify(good))
  }
  assert.equal(http.parseHead(withBody, 0, withBody.length, limits, null, head), http.HeadStatus.Ok)
  assert.equal(head.contentLength, 5)
})

test('random and mutated input never throws out of the parsers', () => {
  const base = request('/announce?' + http.announcePath({infoHash: nastyId(), peerId: nastyId(), port: 80, left: 1}).split('?')[1])
  fc.assert(
    fc.property(fc.uint8Array({maxLength: 600}), fc.nat(base.length), fc.uint8Array({maxLength: 40}), (noise, at, insert) => {
      for (const input of [Buffer.from(noise), Buffer.concat([base.subarray(0, at), insert, base.subarray(at)])]) {
        const head = new http.RequestHead()
        const status = http.parseHead(input, 0, input.length, {maxLineBytes: 300, maxHeadBytes: 500, maxHeaders: 8}, Buffer.from('x-real-ip'), head)
        assert.ok(status >= 0 && status <= 4)
        http.parseAnnounceQuery(input, 0, input.length, new http.AnnounceQuery())
        http.parseScrapeQuery(input, 0, input.length, 5, Buffer.alloc(100))
      }
    }),
    {numRuns: 2000},
  )
})

test('bencoded responses decode to what was written', () => {
  fc.assert(
    fc.property(
      fc.record({seeders: fc.nat(0x7fffffff), leechers: fc.nat(0x7fffffff), completed: fc.nat(Number.MAX_SAFE_INTEGER)}),
      fc.nat(86_400),
      fc.nat(86_400),
      fc.boolean(),
      fc.array(fc.tuple(fc.uint8Array({minLength: 16, maxLength: 16}), fc.integer({min: 1, max: 65535}), bytes20), {maxLength: 20}),
      (counts, interval, minInterval, v6, peers) => {
        const size = v6 ? 18 : 6
        const peerBuf = Buffer.alloc(peers.length * size)
        const ids = Buffer.alloc(peers.length * 20)
        peers.forEach(([ip, port, id], i) => {
          peerBuf.set(ip.subarray(0, size - 2), i * size)
          peerBuf.writeUInt16BE(port, i * size + size - 2)
          ids.set(id, i * 20)
        })
        const out = Buffer.alloc(http.announceBodyMax(peers.length))
        const family = v6 ? 6 : 4
        let n = http.writeCompactAnnounce(out, 0, counts, interval, minInterval, family, peerBuf, peers.length)
        let d = bencode.decode(out.subarray(0, n))
        assert.deepEqual(
          [d.complete, d.incomplete, d.downloaded, d.interval, d['min interval']],
          [counts.seeders, counts.leechers, counts.completed, interval, minInterval],
        )
        assert.deepEqual(Buffer.from(v6 ? d.peers6 : d.peers), peerBuf)
        assert.equal(Buffer.from(v6 ? d.peers : d.peers6).length, 0)
        // Canonical: re-encoding gives the same bytes (keys sorted, nothing extra).
        assert.deepEqual(Buffer.from(bencode.encode(d)), out.subarray(0, n))
        n = http.writeDictAnnounce(out, 0, counts, interval, minInterval, family, peerBuf, peers.length, ids)
        d = bencode.decode(out.subarray(0, n))
        assert.equal(d.peers.length, peers.length)
        peers.forEach(([, port, id], i) => {
          assert.equal(d.peers[i].port, port)
          assert.deepEqual(Buffer.from(d.peers[i]['peer id']), Buffer.from(id))
        })
        assert.deepEqual(Buffer.from(bencode.encode(d)), out.subarray(0, n))
      },
    ),
  )
  const hashes = [nastyId(), nastyId()].sort(Buffer.compare)
  const out = Buffer.alloc(300)
  let at = http.writeScrapeStart(out, 0)
  at = http.writeScrapeEntry(out, at, hashes[0], 0, 1, 2, 3)
  at = http.writeScrapeEntry(out, at, hashes[1], 0, 0, 0, 0)
  at = http.writeScrapeEnd(out, at)
  assert.ok(at <= 9 + 2 * http.SCRAPE_ENTRY_MAX + 2)
  const files = scrapeFiles(bencode.decode(out.subarray(0, at)))
  assert.deepEqual(files.get(hashes[0].toString('hex')), {complete: 1, downloaded: 2, incomplete: 3})
  assert.deepEqual(files.get(hashes[1].toString('hex')), {complete: 0, downloaded: 0, incomplete: 0})
  assert.equal(Buffer.from(bencode.decode(http.failureBody('Info hash not allowed'))['failure reason']).toString(), 'Info hash not allowed')
})
