/** The HTTP tracker against abusive clients: replies that stay their own, pipelining, slow readers, stalled TLS, a full tracker. */
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import tls from 'node:tls'
import {setTimeout as sleep} from 'node:timers/promises'
import {fetchMetrics, sample, HTTP_IO, httpTrackerOn, tempDir} from './harness.js'
import {compactPeers, decode, httpGet, query, RawHttp, scrapeFiles, type HttpReply} from './http-client.js'
import {nastyId} from './helpers.js'
import {makeCertificate} from './certs.js'
import {descendants} from '../loadtest/bench/proc.js'

const announcePath = (infoHash: Uint8Array, peerId: Uint8Array, port: number, extra: Record<string, string | number> = {}) =>
  '/announce?' + query({info_hash: infoHash, peer_id: peerId, port, uploaded: 0, downloaded: 0, left: 100, ...extra})
const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`
const hex = (h: Uint8Array) => Buffer.from(h).toString('hex')

/** Reads `n` replies from a connection that was left unread until now. */
async function replies(c: RawHttp, n: number, ms = 20_000): Promise<HttpReply[]> {
  const out: HttpReply[] = []
  for (let i = 0; i < n; i++) out.push(await c.next(ms))
  return out
}

// Every test runs on both I/O paths: the addon's batched I/O and Node's sockets.
for (const io of HTTP_IO)
  describe(`HTTP tracker on ${io.name}`, () => {
    const startHttpTracker = httpTrackerOn(io.batched)

    for (const workers of [1, 2]) {
      test(`replies are their own: pipelined 100-hash scrapes and compact=0 announces in one write (${workers} worker${workers > 1 ? 's' : ''})`, async () => {
        const t = await startHttpTracker({socket_workers: workers, protocol: {max_scrape_torrents: 100}})
        try {
          // Two scrapes of 100 hashes each: replies of about 5 KiB, more than one worker buffer's worth.
          const lists = [0, 1].map(() => Array.from({length: 100}, () => nastyId()))
          const c = await RawHttp.open(t.port4)
          c.send(lists.map(l => request('/scrape?' + query({info_hash: l}))).join(''))
          const [a, b] = await replies(c, 2)
          for (const [i, reply] of [a, b].entries()) {
            const got = [...scrapeFiles(decode(reply.body)).keys()].sort()
            assert.deepEqual(got, lists[i].map(hex).sort(), `scrape ${i} lists its own hashes`)
          }
          c.close()
          // Two torrents, 60 peers each on ports of their own; compact=0 replies of several KiB.
          const torrents = [nastyId(), nastyId()]
          for (const [k, h] of torrents.entries()) {
            const d = await RawHttp.open(t.port4)
            d.send(Array.from({length: 60}, (_, i) => request(announcePath(h, nastyId(), 10_000 * (k + 1) + i))).join(''))
            await replies(d, 60)
            d.close()
          }
          const e = await RawHttp.open(t.port4)
          const rounds = 20
          e.send(Array.from({length: rounds}, (_, i) => request(announcePath(torrents[i % 2], nastyId(), 30_000 + i, {compact: 0, numwant: 50}))).join(''))
          for (const [i, reply] of (await replies(e, rounds)).entries()) {
            const peers = decode(reply.body).peers as {port: number}[]
            assert.ok(peers.length >= 50, `reply ${i} has its peers`)
            const base = 10_000 * ((i % 2) + 1)
            assert.ok(
              peers.every(p => (p.port >= base && p.port < base + 60) || p.port >= 30_000),
              `reply ${i}: every peer is of the torrent asked for`,
            )
          }
          e.close()
        } finally {
          await t.stop()
        }
      })

      test(`1,000 pipelined requests in one write are all answered, in order, without a reset (${workers} worker${workers > 1 ? 's' : ''})`, async () => {
        const t = await startHttpTracker({socket_workers: workers})
        try {
          // Even requests announce to a torrent of their own, odd ones scrape the torrent just announced.
          const hashes = Array.from({length: 500}, (_, i) => {
            const h = nastyId()
            h[0] = i // both workers own some
            return h
          })
          const c = await RawHttp.open(t.port4)
          c.send(hashes.map((h, i) => request(announcePath(h, nastyId(), 2000 + i)) + request('/scrape?' + query({info_hash: h}))).join(''))
          const got = await replies(c, 1000, 30_000)
          for (let i = 0; i < hashes.length; i++) {
            const announce = decode(got[2 * i].body)
            assert.equal(announce['failure reason'], undefined, `announce ${i}`)
            assert.equal(announce.incomplete, 0, `announce ${i}: a fresh torrent`)
            const files = scrapeFiles(decode(got[2 * i + 1].body))
            assert.deepEqual([...files.keys()], [hex(hashes[i])], `reply ${2 * i + 1} is the scrape of request ${2 * i + 1}`)
            assert.equal(files.get(hex(hashes[i]))!.incomplete, 1)
          }
          assert.equal(c.ended, false, 'the connection stays open')
          c.close()
        } finally {
          await t.stop()
        }
      })
    }

    test('2 workers: requests written one at a time while the one before waits for the other worker, then a half-close: all answered in order', async () => {
      const t = await startHttpTracker({socket_workers: 2})
      try {
        for (let round = 0; round < 3; round++) {
          const c = await RawHttp.open(t.port4)
          // Every other hash belongs to each worker (first byte), so about half of the announces hop.
          const hashes = Array.from({length: 40}, (_, i) => {
            const h = nastyId()
            h[0] = i
            return h
          })
          for (const [i, h] of hashes.entries()) {
            c.send(request(announcePath(h, nastyId(), 3000 + i)))
            // The next request comes while this one may still be with the other worker.
            if (i % 3 === round) await sleep(1)
            c.send(request('/scrape?' + query({info_hash: h})))
          }
          // Ends its side with replies still owed: they come, then the close.
          c.socket.end()
          const got = await replies(c, 2 * hashes.length)
          for (const [i, h] of hashes.entries()) {
            assert.equal(decode(got[2 * i].body)['failure reason'], undefined, `announce ${i}`)
            const files = scrapeFiles(decode(got[2 * i + 1].body))
            assert.deepEqual([...files.keys()], [hex(h)], `reply ${2 * i + 1} is the scrape of request ${2 * i + 1}`)
            assert.equal(files.get(hex(h))!.incomplete, 1, `scrape ${i} sees its announce`)
          }
          await c.next(5000).then(
            () => assert.fail('nothing after the last reply'),
            () => {},
          )
          assert.equal(c.ended, true, 'closed after the last reply')
        }
      } finally {
        await t.stop()
      }
    })

    test('a client that never reads is not read either, and is closed after send_timeout; others are served meanwhile', async () => {
      const t = await startHttpTracker({connections: {send_timeout: 2}, protocol: {max_scrape_torrents: 100}})
      try {
        const hashes = Array.from({length: 100}, () => nastyId())
        const one = request('/scrape?' + query({info_hash: hashes}))
        const socket = net.connect({port: t.port4, host: '127.0.0.1'})
        socket.on('error', () => {})
        let closed = false
        socket.on('close', () => (closed = true))
        await new Promise(resolve => socket.once('connect', resolve))
        socket.pause() // never reads
        // About 20 MB of replies asked for: far more than the kernel's buffers hold.
        const batch = Buffer.from(one.repeat(100))
        let written = 0
        for (let i = 0; i < 40 && !closed; i++) {
          socket.write(batch)
          written += batch.length
          await sleep(20)
        }
        // The tracker stopped reading: our own writes back up.
        assert.ok(socket.writableLength > 0, `the client's writes wait (${socket.writableLength} of ${written} bytes)`)
        const r = decode((await httpGet(t.port4, '/scrape?' + query({info_hash: nastyId()}))).body)
        assert.ok(r.files, 'another client is served')
        for (let i = 0; i < 100 && !closed; i++) await sleep(100)
        assert.ok(closed, 'closed after send_timeout')
        const text = await fetchMetrics(t.metricsUrl)
        assert.ok((sample(text, 'tracker_dropped_total{reason="slow_reader",worker_index="0"}') ?? 0) >= 1)
        socket.destroy()
      } finally {
        await t.stop()
      }
    })

    test('at max_connections held by clients that send a byte and go silent, new clients are served; the silent ones make room', async () => {
      const t = await startHttpTracker({connections: {max_connections: 50}})
      const held: net.Socket[] = []
      const open = (first: string) => {
        const s = net.connect({port: t.port4, host: '127.0.0.1'}, () => s.write(first))
        s.on('error', () => {})
        held.push(s)
      }
      try {
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 60; i++) open('G')
          await sleep(300)
          const h = nastyId()
          for (let i = 0; i < 10; i++) {
            const r = decode((await httpGet(t.port4, announcePath(h, nastyId(), 5000 + i))).body)
            assert.equal(r.incomplete, i, `round ${round}, announce ${i} answered`)
          }
        }
        let text = await fetchMetrics(t.metricsUrl)
        assert.ok((sample(text, 'tracker_connections{worker_index="0"}') ?? 0) <= 50)
        assert.ok((sample(text, 'tracker_dropped_total{reason="evicted",worker_index="0"}') ?? 0) >= 100)
        if (io.batched) {
          // Connected and never a byte: the kernel holds them (TCP_DEFER_ACCEPT), not a slot of ours.
          held.forEach(s => s.destroy())
          await sleep(300)
          for (let i = 0; i < 60; i++) open('')
          await sleep(500)
          text = await fetchMetrics(t.metricsUrl)
          assert.ok((sample(text, 'tracker_connections{worker_index="0"}') ?? 0) <= 5, text.match(/tracker_connections.*/)?.[0])
          const r = decode((await httpGet(t.port4, announcePath(nastyId(), nastyId(), 5000))).body)
          assert.equal(r.incomplete, 0)
        }
      } finally {
        held.forEach(s => s.destroy())
        await t.stop()
      }
    })

    test('HTTPS: stalled handshakes count against max_connections, make room for new clients and end at request_timeout', async () => {
      const dir = tempDir()
      const {cert, key} = makeCertificate(dir, 'hardening')
      const t = await startHttpTracker({
        network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key},
        connections: {max_connections: 40, request_timeout: 1},
      })
      const stalled: net.Socket[] = []
      let closedByServer = 0
      try {
        for (let i = 0; i < 40; i++) {
          const s = net.connect({port: t.port4, host: '127.0.0.1'})
          s.on('error', () => {})
          s.on('close', () => closedByServer++)
          // Half of them send the start of a ClientHello and nothing more.
          if (i % 2 === 1) s.once('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])))
          stalled.push(s)
        }
        await sleep(200)
        let text = await fetchMetrics(t.metricsUrl)
        assert.equal(sample(text, 'tracker_connections{worker_index="0"}'), 40, 'handshaking sockets are counted')
        // The tracker is full of handshakes; a real client still gets in.
        const r = decode((await httpGet(t.port4, announcePath(nastyId(), nastyId(), 7000), {tls: true})).body)
        assert.equal(r.incomplete, 0)
        for (let i = 0; i < 40 && closedByServer < 40; i++) await sleep(100)
        assert.equal(closedByServer, 40, 'every stalled handshake was closed (one evicted, the rest at request_timeout)')
        text = await fetchMetrics(t.metricsUrl)
        assert.ok((sample(text, 'tracker_dropped_total{reason="tls_handshake_timeout",worker_index="0"}') ?? 0) >= 30)
        assert.ok((sample(text, 'tracker_dropped_total{reason="evicted",worker_index="0"}') ?? 0) >= 1)
        // Not a plain request on the TLS port either: counted as a TLS error, closed.
        const plain = await RawHttp.open(t.port4)
        plain.get('/announce')
        await plain.closed(3000)
        text = await fetchMetrics(t.metricsUrl)
        assert.ok((sample(text, 'tracker_dropped_total{reason="tls_error",worker_index="0"}') ?? 0) >= 1)
        // And a handshake that completes but sends no request ends at request_timeout too.
        const idle = tls.connect({port: t.port4, host: '127.0.0.1', rejectUnauthorized: false})
        idle.on('error', () => {})
        await new Promise(resolve => idle.once('secureConnect', resolve))
        await new Promise(resolve => idle.once('close', resolve))
      } finally {
        stalled.forEach(s => s.destroy())
        await t.stop()
      }
    })

    test('2 workers: an announce whose owner does not answer gets "Tracker is busy" after the forward timeout; the connection goes on', async () => {
      const t = await startHttpTracker({socket_workers: 2})
      // The cluster workers of this test process, in the order they were forked.
      const w1 = descendants(process.pid).at(-1)!
      try {
        // Hashes owned by each worker (first byte modulo 2).
        const owned = (w: number) => {
          const h = nastyId()
          h[0] = w
          return h
        }
        // Both workers are alive: every announce is answered.
        for (let i = 0; i < 4; i++) assert.equal(decode((await httpGet(t.port4, announcePath(owned(i % 2), nastyId(), 100 + i))).body).incomplete, 0)
        process.kill(w1, 'SIGSTOP')
        // Connections land on the workers in turn: those on worker 0 asking for worker 1's torrent wait for it.
        const conns = await Promise.all(Array.from({length: 4}, () => RawHttp.open(t.port4)))
        for (const c of conns) c.get(announcePath(owned(1), nastyId(), 200))
        const answered = await Promise.all(
          conns.map(c =>
            c.next(9000).then(
              r => r,
              () => undefined,
            ),
          ),
        )
        const busy = answered.filter(r => r && Buffer.from(decode(r.body)['failure reason'] ?? '').toString() === 'Tracker is busy; try again later')
        assert.ok(busy.length >= 1, `a forwarded announce was given up (${answered.filter(Boolean).length} of 4 answered)`)
        // The same connection goes on with its next request.
        const c = conns[answered.indexOf(busy[0])]
        c.get(announcePath(owned(0), nastyId(), 300))
        assert.equal(decode((await c.next()).body).incomplete, 0)
        process.kill(w1, 'SIGCONT')
        const text = await fetchMetrics(t.metricsUrl)
        assert.ok((sample(text, 'tracker_dropped_total{reason="forward_timeout",worker_index="0"}') ?? 0) >= 1)
        conns.forEach(k => k.close())
      } finally {
        try {
          process.kill(w1, 'SIGCONT')
        } catch {
          // gone
        }
        await t.stop()
      }
    })

    test('compact peers stay right under pipelining too (no reply is a view of a reused buffer)', async () => {
      const t = await startHttpTracker()
      try {
        const a = nastyId()
        const b = nastyId()
        for (const [k, h] of [a, b].entries()) {
          for (let i = 0; i < 30; i++) await httpGet(t.port4, announcePath(h, nastyId(), 40_000 + 1000 * k + i))
        }
        const c = await RawHttp.open(t.port4)
        c.send(Array.from({length: 200}, (_, i) => request(announcePath(i % 2 ? b : a, nastyId(), 50_000 + i))).join(''))
        for (const [i, reply] of (await replies(c, 200)).entries()) {
          const base = 40_000 + 1000 * (i % 2)
          const ports = compactPeers(decode(reply.body).peers, 6).map(p => Number(p.split(':')[1]))
          assert.ok(
            ports.every(p => (p >= base && p < base + 30) || p >= 50_000),
            `reply ${i}`,
          )
        }
        c.close()
      } finally {
        await t.stop()
      }
    })
  })
