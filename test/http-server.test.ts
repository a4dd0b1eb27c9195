/** The HTTP tracker over real sockets: announces, scrapes, failures, connections, limits. */
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {writeFileSync} from 'node:fs'
import net from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fetchMetrics, sample, HTTP_IO, httpTrackerOn, startHttpTracker, tempDir} from './harness.js'
import {makeCertificate} from './certs.js'
import {formatListener} from '../src/server/runtime/listener.js'
import {compactPeers, decode, httpGet, query, RawHttp, scrapeFiles} from './http-client.js'
import {nastyId} from './helpers.js'
import {FULL_SCRAPE_CHUNK} from '../src/server/full-scrape.js'

const announcePath = (f: {infoHash: Uint8Array; peerId: Uint8Array; port: number; left?: number; event?: string; extra?: Record<string, string | number>}) =>
  '/announce?' +
  query({
    info_hash: f.infoHash,
    peer_id: f.peerId,
    port: f.port,
    uploaded: 0,
    downloaded: 0,
    left: f.left ?? 100,
    ...(f.event ? {event: f.event} : {}),
    ...f.extra,
  })

test('on Linux plain HTTP goes through the batched I/O addon by default; batched_io = false and HTTPS use Node sockets', {
  skip: process.platform === 'linux' ? false : 'the addon is built on Linux only',
}, async () => {
  const dir = tempDir()
  const {cert, key} = makeCertificate(dir, 'io')
  for (const [overrides, kind] of [
    [{}, 'batched I/O'],
    [{network: {batched_io: false}}, undefined],
    [{network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}}, undefined],
  ] as const) {
    const t = await startHttpTracker(overrides)
    try {
      const http = t.tracker.listeners.filter(l => l.service === 'http' || l.service === 'https')
      assert.equal(http.length, 2)
      assert.ok(
        http.every(l => l.io === kind),
        http.map(formatListener).join('\n'),
      )
    } finally {
      await t.stop()
    }
  }
})

// Every test runs on both I/O paths: the addon's batched I/O and Node's sockets.
for (const io of HTTP_IO)
  describe(`HTTP tracker on ${io.name}`, () => {
    const startHttpTracker = httpTrackerOn(io.batched)

    test('announce: counts exclude the announcer, compact peers (IPv4 in peers, IPv6 in peers6), seeders get leechers', async () => {
      const t = await startHttpTracker()
      try {
        const h = nastyId()
        const ids = [nastyId(), nastyId(), nastyId(), nastyId()]
        // Two IPv4 leechers, one IPv4 seeder, one IPv6 leecher.
        let r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: ids[0], port: 1001}))).body)
        assert.equal(r.complete, 0)
        assert.equal(r.incomplete, 0)
        assert.equal(r.interval, 120)
        assert.equal(r['min interval'], 60)
        assert.equal(Buffer.from(r.peers).length, 0)
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: ids[1], port: 1002}))).body)
        assert.equal(r.incomplete, 1)
        assert.deepEqual(compactPeers(r.peers, 6), ['127.0.0.1:1001'])
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: ids[2], port: 1003, left: 0}))).body)
        assert.deepEqual([r.complete, r.incomplete], [0, 2])
        assert.deepEqual(compactPeers(r.peers, 6).sort(), ['127.0.0.1:1001', '127.0.0.1:1002'])
        assert.equal(Buffer.from(r.peers6).length, 0)
        r = decode((await httpGet(t.port6, announcePath({infoHash: h, peerId: ids[3], port: 1004}), {host: '::1'})).body)
        assert.deepEqual([r.complete, r.incomplete], [1, 2], 'counts cover both IP families')
        assert.equal(Buffer.from(r.peers).length, 0)
        assert.deepEqual(compactPeers(r.peers6, 18), [], 'no other IPv6 peer')
        // A second IPv6 peer sees the first in peers6.
        r = decode((await httpGet(t.port6, announcePath({infoHash: h, peerId: nastyId(), port: 1005}), {host: '::1'})).body)
        assert.deepEqual(compactPeers(r.peers6, 18), ['::1:1004'])
        // The seeder announces again: it gets leechers only, never itself.
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: ids[2], port: 1003, left: 0}))).body)
        assert.deepEqual(compactPeers(r.peers, 6).sort(), ['127.0.0.1:1001', '127.0.0.1:1002'])
        // numwant limits the list.
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: ids[0], port: 1001, extra: {numwant: 1}}))).body)
        assert.equal(compactPeers(r.peers, 6).length, 1)
        assert.notEqual(compactPeers(r.peers, 6)[0], '127.0.0.1:1001')
      } finally {
        await t.stop()
      }
    })

    test('announce: compact=0 gives the dictionary model with peer ids; no_peer_id leaves them out', async () => {
      const t = await startHttpTracker()
      try {
        const h = nastyId()
        const first = nastyId()
        await httpGet(t.port4, announcePath({infoHash: h, peerId: first, port: 2001}))
        let r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 2002, extra: {compact: 0}}))).body)
        assert.equal(r.peers.length, 1)
        assert.equal(Buffer.from(r.peers[0].ip).toString(), '127.0.0.1')
        assert.equal(r.peers[0].port, 2001)
        assert.deepEqual(Buffer.from(r.peers[0]['peer id']), first, 'binary peer id survives')
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 2003, extra: {compact: 0, no_peer_id: 1}}))).body)
        assert.equal(r.peers.length, 2)
        assert.ok(r.peers.every((p: Record<string, unknown>) => !('peer id' in p)))
        // IPv6 in the dictionary model: text address in peers.
        await httpGet(t.port6, announcePath({infoHash: h, peerId: nastyId(), port: 2004}), {host: '::1'})
        r = decode((await httpGet(t.port6, announcePath({infoHash: h, peerId: nastyId(), port: 2005, extra: {compact: 0}}), {host: '::1'})).body)
        assert.equal(Buffer.from(r.peers[0].ip).toString(), '::1')
      } finally {
        await t.stop()
      }
    })

    test('stopped removes the peer and gets no peers; completed counts as downloaded in announce and scrape', async () => {
      const t = await startHttpTracker()
      try {
        const h = nastyId()
        const a = nastyId()
        await httpGet(t.port4, announcePath({infoHash: h, peerId: a, port: 3001}))
        await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 3002}))
        let r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: a, port: 3001, left: 0, event: 'completed'}))).body)
        assert.equal(r.downloaded, 1)
        r = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: a, port: 3001, left: 0, event: 'stopped'}))).body)
        assert.equal(Buffer.from(r.peers).length, 0, 'a stopping peer gets no peers')
        const s = decode((await httpGet(t.port4, '/scrape?' + query({info_hash: h}))).body)
        const entry = scrapeFiles(s).get(h.toString('hex'))!
        assert.deepEqual([entry.complete, entry.incomplete, entry.downloaded], [0, 1, 1])
      } finally {
        await t.stop()
      }
    })

    test('scrape: several hashes sorted and merged, unknown ones zero, limited to max_scrape_torrents; full scrape refused', async () => {
      const t = await startHttpTracker({protocol: {max_scrape_torrents: 3}})
      try {
        const known = nastyId()
        await httpGet(t.port4, announcePath({infoHash: known, peerId: nastyId(), port: 4001, left: 0}))
        const unknown = nastyId()
        const raw = await httpGet(t.port4, '/scrape?' + query({info_hash: [unknown, known, unknown]}))
        assert.equal(raw.status, 200)
        const s = decode(raw.body)
        const counts = scrapeFiles(s)
        assert.equal(counts.size, 2, 'duplicates merged')
        assert.equal(counts.get(known.toString('hex'))!.complete, 1)
        assert.equal(counts.get(unknown.toString('hex'))!.complete, 0)
        const body = raw.body.toString('latin1')
        const i1 = body.indexOf(known.toString('latin1'))
        const i2 = body.indexOf(unknown.toString('latin1'))
        assert.equal(i1 < i2, Buffer.compare(known, unknown) < 0, 'keys in sorted order')
        const many = decode((await httpGet(t.port4, '/scrape?' + query({info_hash: [nastyId(), nastyId(), nastyId(), nastyId(), nastyId()]}))).body)
        assert.equal(Object.keys(many.files).length, 3)
        const full = decode((await httpGet(t.port4, '/scrape')).body)
        assert.equal(Buffer.from(full['failure reason']).toString(), 'Full scrapes are not allowed')
      } finally {
        await t.stop()
      }
    })

    test('full scrape, when enabled, serves every torrent from the snapshot', async () => {
      const t = await startHttpTracker({protocol: {enable_full_scrape: true, full_scrape_interval: 1}})
      try {
        const hashes = [nastyId(), nastyId(), nastyId()]
        for (const h of hashes) await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 5001}))
        await sleep(1300)
        const full = decode((await httpGet(t.port4, '/scrape')).body)
        const keys = [...scrapeFiles(full).keys()].sort()
        assert.deepEqual(keys, hashes.map(h => h.toString('hex')).sort())
        assert.ok(Object.values(full.files).every((e: unknown) => (e as {incomplete: number}).incomplete === 1))
      } finally {
        await t.stop()
      }
    })

    test('full scrape with 2 workers: every torrent of both shards, each part larger than one mesh chunk', async () => {
      const t = await startHttpTracker({socket_workers: 2, protocol: {enable_full_scrape: true, full_scrape_interval: 1}})
      try {
        // About 70 bytes an entry: 10,000 torrents make parts of some 350 KB a worker, over FULL_SCRAPE_CHUNK.
        const N = 10_000
        const hashes = Array.from({length: N}, () => nastyId())
        const conns = await Promise.all(Array.from({length: 10}, () => RawHttp.open(t.port4)))
        await Promise.all(
          conns.map(async (c, k) => {
            const mine = hashes.filter((_, i) => i % conns.length === k)
            // Pipelined, 100 at a time.
            for (let i = 0; i < mine.length; i += 100) {
              const batch = mine.slice(i, i + 100)
              for (const h of batch) c.get(announcePath({infoHash: h, peerId: nastyId(), port: 5001}))
              for (let j = 0; j < batch.length; j++) assert.equal((await c.next()).status, 200)
            }
          }),
        )
        for (const c of conns) c.close()
        const expected = hashes.map(h => h.toString('hex')).sort()
        let full: ReturnType<typeof decode>
        for (let i = 0; i < 40; i++) {
          await sleep(250)
          full = decode((await httpGet(t.port4, '/scrape')).body)
          if (scrapeFiles(full).size === N) break
        }
        const files = scrapeFiles(full)
        assert.deepEqual([...files.keys()].sort(), expected)
        const body = (await httpGet(t.port4, '/scrape')).body
        assert.ok(body.length > 2 * FULL_SCRAPE_CHUNK, `${body.length} bytes`)
        assert.ok(Object.values(full.files).every((e: unknown) => (e as {incomplete: number}).incomplete === 1))
      } finally {
        await t.stop()
      }
    })

    test('bad requests get HTTP 200 with a failure reason naming the problem; unknown paths 404; the server stays up', async () => {
      const t = await startHttpTracker()
      try {
        const h = nastyId()
        const id = nastyId()
        const base = {info_hash: h, peer_id: id, port: 1, uploaded: 0, downloaded: 0, left: 0}
        const cases: [Record<string, string | number | Uint8Array>, RegExp][] = [
          [{...base, info_hash: h.subarray(0, 19)}, /info_hash/],
          [{...base, info_hash: Buffer.concat([h, Buffer.from([1])])}, /info_hash/],
          [{...base, peer_id: id.subarray(0, 19)}, /peer_id/],
          [{...base, port: 0}, /Port can't be 0/],
          [{...base, port: 70000}, /port/],
          [{...base, port: 'x'}, /port/],
          [{...base, left: -1}, /left/],
          [{...base, event: 'bogus'}, /event/],
          [{...base, numwant: 'many'}, /numwant/],
          [{...base, compact: 2}, /compact/],
        ]
        for (const name of ['info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left']) {
          const q: Record<string, string | number | Uint8Array> = {...base}
          delete q[name]
          cases.push([q, new RegExp(`Missing ${name}`)])
        }
        for (const [q, reason] of cases) {
          const r = await httpGet(t.port4, '/announce?' + query(q))
          assert.equal(r.status, 200)
          assert.match(Buffer.from(decode(r.body)['failure reason']).toString(), reason, JSON.stringify(Object.keys(q)))
        }
        // Bad percent-encoding.
        let r = await httpGet(t.port4, `/announce?info_hash=%zz${'a'.repeat(19)}&peer_id=${'b'.repeat(20)}&port=1&uploaded=0&downloaded=0&left=0`)
        assert.match(Buffer.from(decode(r.body)['failure reason']).toString(), /info_hash/)
        r = await httpGet(t.port4, '/announce')
        assert.match(Buffer.from(decode(r.body)['failure reason']).toString(), /Missing info_hash/)
        r = await httpGet(t.port4, '/nowhere')
        assert.equal(r.status, 404)
        assert.ok(decode(r.body)['failure reason'])
        // Not HTTP at all: 400 and the connection is closed.
        const c = await RawHttp.open(t.port4)
        c.send('HELLO\r\n\r\n')
        const bad = await c.next()
        assert.equal(bad.status, 400)
        await c.closed()
        // Still serving.
        r = await httpGet(t.port4, '/announce?' + query(base))
        assert.equal(Buffer.from(decode(r.body).peers).length, 0)
      } finally {
        await t.stop()
      }
    })

    test('keep-alive: several requests on one connection, pipelined answers in order, requests split across writes', async () => {
      const t = await startHttpTracker()
      try {
        const c = await RawHttp.open(t.port4)
        const hashes = [nastyId(), nastyId(), nastyId()]
        // Three pipelined requests in one write.
        c.send(hashes.map(h => `GET ${announcePath({infoHash: h, peerId: nastyId(), port: 6001})} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
        for (let i = 0; i < 3; i++) assert.equal((await c.next()).status, 200)
        // One request written a few bytes at a time.
        const req = Buffer.from(`GET /scrape?${query({info_hash: hashes[1]})} HTTP/1.1\r\nHost: x\r\n\r\n`)
        for (let i = 0; i < req.length; i += 7) {
          c.send(req.subarray(i, i + 7))
          await sleep(2)
        }
        const s = decode((await c.next()).body)
        assert.equal((Object.values(s.files)[0] as {incomplete: number}).incomplete, 1)
        assert.equal(c.ended, false, 'kept alive')
        // Connection: close is honoured.
        c.get('/scrape?' + query({info_hash: hashes[0]}), ['Connection: close'])
        const last = await c.next()
        assert.equal(last.headers.connection, 'close')
        await c.closed()
        // HTTP/1.0 closes unless asked to keep alive.
        const d = await RawHttp.open(t.port4)
        d.send(`GET /scrape?${query({info_hash: hashes[0]})} HTTP/1.0\r\n\r\n`)
        await d.next()
        await d.closed()
      } finally {
        await t.stop()
      }
    })

    test('keep_alive = false closes every connection after its response', async () => {
      const t = await startHttpTracker({network: {keep_alive: false}})
      try {
        const c = await RawHttp.open(t.port4)
        c.get('/scrape?' + query({info_hash: nastyId()}))
        const r = await c.next()
        assert.equal(r.headers.connection, 'close')
        await c.closed()
      } finally {
        await t.stop()
      }
    })

    /** One connection: sends `data` (then ends our side, with `end`), reads to the close; a reset is an error. */
    async function exchange(port: number, data: string, o: {end?: boolean; host?: string} = {}): Promise<string> {
      const s = net.connect({port, host: o.host ?? '127.0.0.1'})
      const chunks: Buffer[] = []
      s.on('data', c => chunks.push(c))
      await once(s, 'connect')
      if (o.end) s.end(data)
      else s.write(data)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.once('close', () => resolve())
      })
      return Buffer.concat(chunks).toString('latin1')
    }
    const replyCount = (text: string) => text.split('HTTP/1.1 ').length - 1

    test('a client that sends its request and then ends its side gets the whole reply, then the close', async () => {
      const t = await startHttpTracker()
      try {
        const h = nastyId()
        const text = await exchange(t.port4, `GET ${announcePath({infoHash: h, peerId: nastyId(), port: 1})} HTTP/1.1\r\nHost: x\r\n\r\n`, {end: true})
        assert.equal(replyCount(text), 1)
        const body = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1')
        assert.equal(decode(body).interval, 120)
        // Two pipelined requests, then the end: both answered in order.
        const two = await exchange(t.port4, [1, 2].map(() => `GET /scrape?${query({info_hash: h})} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''), {end: true})
        assert.equal(replyCount(two), 2)
      } finally {
        await t.stop()
      }
    })

    test('Connection: close with more requests behind it in the same write: one reply, then a clean close (no reset)', async () => {
      const t = await startHttpTracker()
      try {
        const req = (close: boolean) => `GET /scrape?${query({info_hash: nastyId()})} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
        for (const behind of [1, 50]) {
          const text = await exchange(t.port4, req(true) + Array.from({length: behind}, () => req(false)).join(''))
          assert.equal(replyCount(text), 1, `${behind} behind`)
          assert.match(text, /\r\nConnection: close\r\n/i)
        }
        // HTTP/1.0 without keep-alive closes too.
        const text = await exchange(t.port4, `GET /scrape?${query({info_hash: nastyId()})} HTTP/1.0\r\n\r\n`)
        assert.equal(text.split('HTTP/1.').length - 1, 1)
      } finally {
        await t.stop()
      }
    })

    test('many clients connecting at once (Connection: close, over IPv4 and IPv6) are all answered, each with its own peer address', async () => {
      for (const workers of [1, 2]) {
        const t = await startHttpTracker({socket_workers: workers})
        try {
          const h = nastyId()
          const n = 300
          const texts = await Promise.all(
            Array.from({length: n}, (_, i) =>
              exchange(
                i % 2 ? t.port6 : t.port4,
                `GET ${announcePath({infoHash: h, peerId: nastyId(), port: 2000 + i})} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
                {
                  host: i % 2 ? '::1' : '127.0.0.1',
                },
              ),
            ),
          )
          assert.ok(texts.every(x => replyCount(x) === 1 && x.startsWith('HTTP/1.1 200')))
          const text = await exchange(t.port4, `GET /scrape?${query({info_hash: h})} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
          const body = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1')
          assert.equal(scrapeFiles(decode(body)).get(Buffer.from(h).toString('hex'))?.incomplete, n, `${workers} worker(s)`)
          // IPv4 peers in peers, IPv6 peers in peers6, each at the address it came from.
          const last = decode((await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 9, extra: {numwant: 500}}))).body)
          const v4 = compactPeers(last.peers, 6)
          const v6 = compactPeers(last.peers6, 18)
          assert.equal(v4.length + v6.length, 50)
          assert.ok(v4.every(p => p.startsWith('127.0.0.1:')) && v6.every(p => p.startsWith('::1:')), [...v4, ...v6].join(' '))
        } finally {
          await t.stop()
        }
      }
    })

    test('reverse proxy mode: the last address of X-Forwarded-For is the peer; a missing header gets a failure reason', async () => {
      const t = await startHttpTracker({network: {runs_behind_reverse_proxy: true}})
      try {
        const h = nastyId()
        await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 7001}), {headers: ['X-Forwarded-For: 10.9.9.9, 203.0.113.7']})
        const r = decode(
          (await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 7002}), {headers: ['x-forwarded-for: 198.51.100.1']})).body,
        )
        assert.deepEqual(compactPeers(r.peers, 6), ['203.0.113.7:7001'])
        const v6 = decode(
          (await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 7003}), {headers: ['X-Forwarded-For: 2001:db8::5']})).body,
        )
        assert.equal(v6.complete + v6.incomplete, 2, 'an IPv6 client behind the proxy counts the others')
        for (const headers of [[], ['X-Forwarded-For: not-an-ip'], ['X-Forwarded-For: ']]) {
          const bad = await httpGet(t.port4, announcePath({infoHash: h, peerId: nastyId(), port: 7004}), {headers})
          assert.equal(bad.status, 200)
          assert.match(Buffer.from(decode(bad.body)['failure reason']).toString(), /X-Forwarded-For/)
        }
      } finally {
        await t.stop()
      }
    })

    test('slow and idle clients are cut off; oversize heads refused; a full tracker evicts the longest-idle connection', async () => {
      const t = await startHttpTracker({
        connections: {request_timeout: 1, idle_timeout: 2, max_connections: 3, max_request_line_bytes: 300, max_request_head_bytes: 1024, max_headers: 5},
      })
      try {
        // Slowloris: a byte every 200 ms never completes a head.
        const slow = await RawHttp.open(t.port4)
        const started = Date.now()
        const drip = setInterval(() => slow.send('X'), 200)
        try {
          await slow.closed(5000)
        } finally {
          clearInterval(drip)
        }
        assert.ok(Date.now() - started < 4000, 'closed within request_timeout plus the sweep')
        // Silent after connecting: same limit.
        const silent = await RawHttp.open(t.port4)
        await silent.closed(4000)
        // Idle keep-alive connection: closed after idle_timeout.
        const idle = await RawHttp.open(t.port4)
        idle.get('/scrape?' + query({info_hash: nastyId()}))
        await idle.next()
        await idle.closed(5000)
        // Oversize request line and head, too many headers.
        let c = await RawHttp.open(t.port4)
        c.get('/scrape?' + 'x'.repeat(400))
        assert.equal((await c.next()).status, 414)
        c = await RawHttp.open(t.port4)
        c.get('/scrape', ['X-Big: ' + 'y'.repeat(2000)])
        assert.equal((await c.next()).status, 431)
        c = await RawHttp.open(t.port4)
        c.get('/scrape', ['A: 1', 'B: 2', 'C: 3', 'D: 4', 'E: 5', 'F: 6'])
        assert.equal((await c.next()).status, 431)
        await sleep(100)
        // Three idle connections fill the tracker; a fourth evicts the oldest.
        const held: RawHttp[] = []
        for (let i = 0; i < 3; i++) {
          const k = await RawHttp.open(t.port4)
          k.get('/scrape?' + query({info_hash: nastyId()}))
          await k.next()
          held.push(k)
          await sleep(20)
        }
        const fourth = await RawHttp.open(t.port4)
        fourth.get('/scrape?' + query({info_hash: nastyId()}))
        assert.equal((await fourth.next()).status, 200)
        await held[0].closed(2000)
        assert.equal(held[1].ended || held[2].ended, false)
        const text = await fetchMetrics(t.metricsUrl)
        for (const reason of ['request_timeout', 'idle_timeout', 'evicted', 'bad_request']) {
          assert.ok((sample(text, `tracker_dropped_total{reason="${reason}",worker_index="0"}`) ?? 0) > 0, reason)
        }
        for (const k of [...held, fourth]) k.close()
      } finally {
        await t.stop()
      }
    })

    test('access list: refused hashes get "Info hash not allowed"; scrape is not filtered', async () => {
      const dir = tempDir()
      const allowed = nastyId()
      const path = join(dir, 'allow.txt')
      writeFileSync(path, `# allowed\n${allowed.toString('hex').toUpperCase()}\n`)
      const t = await startHttpTracker({access_list: {mode: 'allow', path}})
      try {
        let r = decode((await httpGet(t.port4, announcePath({infoHash: allowed, peerId: nastyId(), port: 8001}))).body)
        assert.equal(r['failure reason'], undefined)
        r = decode((await httpGet(t.port4, announcePath({infoHash: nastyId(), peerId: nastyId(), port: 8001}))).body)
        assert.equal(Buffer.from(r['failure reason']).toString(), 'Info hash not allowed')
        r = decode((await httpGet(t.port4, '/scrape?' + query({info_hash: nastyId()}))).body)
        assert.ok(r.files)
      } finally {
        await t.stop()
      }
    })

    test('2 workers: one consistent swarm over 40 connections, both workers serve, scrapes span shards', async () => {
      const t = await startHttpTracker({socket_workers: 2})
      try {
        const N = 40
        // Torrents go to workers by first byte modulo 2: both get some.
        const hashes = Array.from({length: 8}, (_, i) => {
          const h = nastyId()
          h[0] = i
          return h
        })
        const conns = await Promise.all(Array.from({length: N}, () => RawHttp.open(t.port4)))
        for (let round = 0; round < 2; round++) {
          const replies = await Promise.all(
            conns.map(async (c, i) => {
              const out = []
              for (const h of hashes) {
                c.get(announcePath({infoHash: h, peerId: Buffer.from(nastyId()), port: 9000 + i}))
                out.push(decode((await c.next()).body))
              }
              return out
            }),
          )
          if (round === 1) {
            replies.forEach((perHash, i) =>
              perHash.forEach(r => {
                assert.equal(r.incomplete, N - 1)
                const peers = compactPeers(r.peers, 6)
                assert.equal(peers.length, Math.min(N - 1, 50))
                assert.ok(!peers.includes(`127.0.0.1:${9000 + i}`))
              }),
            )
          }
        }
        const s = decode((await httpGet(t.port4, '/scrape?' + query({info_hash: hashes}))).body)
        assert.equal(Object.keys(s.files).length, hashes.length)
        assert.ok(Object.values(s.files).every((e: unknown) => (e as {incomplete: number}).incomplete === N))
        const text = await fetchMetrics(t.metricsUrl)
        for (const w of ['0', '1']) {
          assert.ok((sample(text, `tracker_responses_total{type="announce",ip_version="4",worker_index="${w}"}`) ?? 0) > 0, `worker ${w} answered announces`)
          assert.ok((sample(text, `tracker_torrents{worker_index="${w}"}`) ?? 0) > 0, `worker ${w} owns torrents`)
        }
        for (const c of conns) c.close()
      } finally {
        await t.stop()
      }
    })
  })
