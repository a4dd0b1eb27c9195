/** The WebTorrent tracker over real WebSockets: relay, bookkeeping, limits, workers, TLS. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import {randomBytes} from 'node:crypto'
import tls from 'node:tls'
import {once} from 'node:events'
import {setTimeout as sleep} from 'node:timers/promises'
import {fetchMetrics, sample, startWsTracker, tempDir} from './harness.js'
import {formatListener} from '../src/server/runtime/listener.js'
import {
  binaryId,
  handshakeRequest,
  isAnnounceResponse,
  isAnswer,
  isFailure,
  isOffer,
  maskedControlFrame,
  maskedFrame,
  RawWsClient,
  StalledClient,
  WsTestClient,
  type Msg,
} from './ws-client.js'
import {makeCertificate} from './certs.js'
import {OP_PING, OP_PONG} from '../src/protocol/ws/frame.js'
import {FULL_SCRAPE_CHUNK} from '../src/server/full-scrape.js'

const sdp = (n: number, tag = '') => `v=0\r\no=- ${tag} "quoted" \\ ünïcödé ${'a'.repeat(n)}\r\n`
const offer = (id = binaryId(), size = 40) => ({offer_id: id, offer: {type: 'offer', sdp: sdp(size, 'offer')}})
const announce = (infoHash: string, peerId: string, extra: Msg = {}) => ({
  action: 'announce',
  info_hash: infoHash,
  peer_id: peerId,
  left: 100,
  numwant: 5,
  uploaded: 0,
  downloaded: 0,
  ...extra,
})

/** A counter summed over workers: `tracker_dropped_total{reason="x"` and the like. */
function total(text: string, metric: string, reason: string): number {
  let n = 0
  for (const line of text.split('\n')) if (line.startsWith(`${metric}{reason="${reason}",`)) n += Number(line.slice(line.lastIndexOf(' ') + 1))
  return n
}

/** Both I/O paths: the batched TCP addon (Linux) and Node's sockets. */
const IO = process.platform === 'linux' ? [true, false] : [false]
const ioName = (batched: boolean) => (batched ? 'batched I/O' : 'Node sockets')

// Batched I/O (the addon, Linux) by default; Node's sockets with batched_io = false. The other tests run on the default.
for (const batched of process.platform === 'linux' ? [true, false] : [false])
  test(`offers reach other peers with their SDP untouched; answers come back only for offers made (${batched ? 'batched I/O' : 'Node sockets'})`, async () => {
    const t = await startWsTracker({network: {batched_io: batched}})
    assert.ok(
      t.tracker.listeners.filter(l => l.service === 'ws').every(l => (l.io === 'batched I/O') === batched),
      t.tracker.listeners.map(formatListener).join('\n'),
    )
    const url = `ws://127.0.0.1:${t.port4}`
    const [a, b] = await Promise.all([WsTestClient.open(url), WsTestClient.open(url)])
    try {
      const ih = binaryId()
      const [pa, pb] = [binaryId(), binaryId()]
      b.send(announce(ih, pb, {left: 0}))
      let r = await b.next(isAnnounceResponse)
      assert.deepEqual([r.complete, r.incomplete, r.info_hash], [0, 0, ih], 'the announcer is not counted')
      // Two offers with different SDP: the one relayed must arrive with its own id and SDP, byte for byte.
      const sent = [offer(binaryId(), 40), offer(binaryId(), 41)]
      a.send(announce(ih, pa, {offers: sent}))
      r = await a.next(isAnnounceResponse)
      assert.deepEqual([r.complete, r.incomplete], [1, 0])
      const got = await b.next(isOffer)
      assert.equal(got.peer_id, pa)
      assert.equal(got.info_hash, ih)
      const mine = sent.find(x => x.offer_id === got.offer_id)
      assert.ok(mine, 'the relayed offer id is one of those sent')
      assert.deepEqual(got.offer, mine.offer)
      await b.nothing(isOffer) // two offers, one other peer: one is relayed
      // The answer goes back to a.
      const answer = {type: 'answer', sdp: sdp(30, 'answer')}
      b.send(announce(ih, pb, {left: 0, answer, to_peer_id: pa, offer_id: got.offer_id}))
      const back = await a.next(isAnswer)
      assert.deepEqual([back.peer_id, back.offer_id, back.answer], [pb, got.offer_id, answer])
      // The same answer again: the offer is used up.
      b.send(announce(ih, pb, {left: 0, answer, to_peer_id: pa, offer_id: got.offer_id}))
      const f = await b.next(isFailure)
      assert.equal(f['failure reason'], 'Could not find the offer corresponding to your answer. It may have expired.')
      assert.equal(f.info_hash, ih)
      // An answer to an offer never made.
      b.send(announce(ih, pb, {left: 0, answer, to_peer_id: pa, offer_id: binaryId()}))
      assert.match((await b.next(isFailure))['failure reason'], /Could not find the offer/)
      await a.nothing(isAnswer)
    } finally {
      a.close()
      b.close()
      await t.stop()
    }
  })

test('offers expire after max_offer_age; a closed connection leaves its swarms at once', async () => {
  const t = await startWsTracker({cleaning: {max_offer_age: 1}})
  const url = `ws://127.0.0.1:${t.port4}`
  const [a, b, c] = await Promise.all([WsTestClient.open(url), WsTestClient.open(url), WsTestClient.open(url)])
  try {
    const ih = binaryId()
    const [pa, pb] = [binaryId(), binaryId()]
    b.send(announce(ih, pb))
    await b.next(isAnnounceResponse)
    a.send(announce(ih, pa, {offers: [offer()]}))
    await a.next(isAnnounceResponse)
    const got = await b.next(isOffer)
    await sleep(2100)
    b.send(announce(ih, pb, {answer: {type: 'answer', sdp: 'x'}, to_peer_id: pa, offer_id: got.offer_id}))
    assert.match((await b.next(isFailure))['failure reason'], /may have expired/)
    // b leaves: c sees only a.
    b.close()
    await sleep(200)
    c.send(announce(ih, binaryId()))
    const r = await c.next(isAnnounceResponse)
    assert.equal(r.incomplete, 1)
  } finally {
    for (const x of [a, b, c]) x.close()
    await t.stop()
  }
})

test('fields an announce leaves out leave the peer as it was: a seeder that answers an offer (no left, as browsers send it) stays a seeder', async () => {
  const t = await startWsTracker()
  const url = `ws://127.0.0.1:${t.port4}`
  const [seeder, leecher, c] = await Promise.all([WsTestClient.open(url), WsTestClient.open(url), WsTestClient.open(url)])
  try {
    const ih = binaryId()
    const [ps, pl] = [binaryId(), binaryId()]
    seeder.send(announce(ih, ps, {left: 0, event: 'completed'}))
    await seeder.next(isAnnounceResponse)
    leecher.send(announce(ih, pl, {left: 100, offers: [offer()]}))
    await leecher.next(isAnnounceResponse)
    const got = await seeder.next(isOffer)
    // The answer as webtorrent sends it: info_hash, peer_id, to_peer_id, offer_id, answer; no left, no event.
    seeder.send({action: 'announce', info_hash: ih, peer_id: ps, to_peer_id: pl, offer_id: got.offer_id, answer: {type: 'answer', sdp: 'x'}})
    await leecher.next(m => m.answer !== undefined)
    c.send({action: 'scrape', info_hash: ih})
    assert.deepEqual((await c.next()).files[ih], {complete: 1, incomplete: 1, downloaded: 1})
    // A leecher's first announce from a magnet link: left null is not a seeder.
    c.send(announce(ih, binaryId(), {left: null}))
    assert.deepEqual(await c.next(isAnnounceResponse).then(r => [r.complete, r.incomplete]), [1, 1])
    c.send({action: 'scrape', info_hash: ih})
    assert.deepEqual((await c.next()).files[ih], {complete: 1, incomplete: 2, downloaded: 1})
  } finally {
    for (const x of [seeder, leecher, c]) x.close()
    await t.stop()
  }
})

test('one peer id per torrent per connection; a peer id held by another connection is not taken over', async () => {
  const t = await startWsTracker()
  const url = `ws://127.0.0.1:${t.port4}`
  const [a, b] = await Promise.all([WsTestClient.open(url), WsTestClient.open(url)])
  try {
    const ih = binaryId()
    const pa = binaryId()
    a.send(announce(ih, pa))
    await a.next(isAnnounceResponse)
    a.send(announce(ih, binaryId()))
    assert.match((await a.next(isFailure))['failure reason'], /Only one peer id/)
    // Another torrent may use another peer id.
    a.send(announce(binaryId(), binaryId()))
    await a.next(isAnnounceResponse)
    b.send(announce(ih, pa, {event: 'stopped'}))
    assert.match((await b.next(isFailure))['failure reason'], /in use by another connection/)
    // a is still in the swarm.
    const c = await WsTestClient.open(url)
    c.send(announce(ih, binaryId()))
    assert.equal((await c.next(isAnnounceResponse)).incomplete, 1)
    // After stopping, a may come back with a new peer id (c is the other peer).
    a.send(announce(ih, pa, {event: 'stopped'}))
    await a.next(isAnnounceResponse)
    a.send(announce(ih, binaryId()))
    assert.equal((await a.next(isAnnounceResponse)).incomplete, 1)
    c.close()
  } finally {
    a.close()
    b.close()
    await t.stop()
  }
})

test('bad messages get a failure reason and the connection stays usable', async () => {
  const t = await startWsTracker({network: {max_message_size: 2048}, protocol: {max_offers: 2}})
  const c = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
  try {
    const ih = binaryId()
    const cases: [Msg | string, RegExp][] = [
      ['not json', /Invalid request/],
      ['{"action":"announce",', /Invalid request/],
      ['[1,2]', /Invalid request/],
      [{action: 'announce', info_hash: 'short', peer_id: binaryId()}, /Invalid info_hash.*20 characters/],
      [{action: 'announce', info_hash: ih, peer_id: 'x'.repeat(21)}, /Invalid peer_id/],
      [{action: 'announce', info_hash: 'ā'.repeat(20), peer_id: binaryId()}, /U\+0000 to U\+00FF/],
      [{action: 'announce', info_hash: 42, peer_id: binaryId()}, /Invalid info_hash/],
      [{action: 'announce', peer_id: binaryId()}, /info_hash" is missing/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), left: 'lots'}, /Invalid left/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), event: 'paused?'}, /Invalid event/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), offers: {}}, /Invalid offers/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), offers: [{offer_id: binaryId()}]}, /Invalid offers/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), offers: [offer(), offer(), offer()]}, /Too many offers: at most 2/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), answer: {type: 'answer', sdp: 'x'}}, /Invalid answer/],
      [{action: 'announce', info_hash: ih, peer_id: binaryId(), offers: [offer(binaryId(), 3000)]}, /Message too large/],
      [{action: 'dance'}, /Unknown action "dance"/],
      [{info_hash: ih}, /"action" is missing/],
      [{action: 'scrape'}, /Full scrapes are not allowed/],
    ]
    for (const [msg, reason] of cases) {
      c.send(msg)
      const f = await c.next()
      assert.match(f['failure reason'] ?? '', reason, JSON.stringify(msg).slice(0, 80))
    }
    c.send(announce(ih, binaryId()))
    const ok = await c.next()
    assert.ok(isAnnounceResponse(ok), JSON.stringify(ok))
    const text = await fetchMetrics(t.metricsUrl)
    assert.ok((sample(text, 'tracker_refusals_total{reason="invalid_request",worker_index="0"}') ?? 0) >= 10)
  } finally {
    c.close()
    await t.stop()
  }
})

test('messages sent in the same packet as the handshake are answered', async () => {
  const t = await startWsTracker()
  const socket = net.connect({port: t.port4, host: '127.0.0.1'})
  try {
    await once(socket, 'connect')
    let got = ''
    socket.on('data', d => (got += d.toString('latin1')))
    const ih = binaryId()
    socket.write(Buffer.concat([Buffer.from(handshakeRequest()), maskedFrame(announce(ih, binaryId())), maskedFrame({action: 'scrape', info_hash: ih})]))
    for (let i = 0; i < 50 && !(got.includes('"interval"') && got.includes('"files"')); i++) await sleep(20)
    assert.match(got, /^HTTP\/1\.1 101 /)
    assert.match(got, /"action":"announce","interval":/)
    assert.match(got, /"action":"scrape","files":/)
  } finally {
    socket.destroy()
    await t.stop()
  }
})

test('scrape: one or many info hashes, counts of everyone; full scrape when enabled; /health', async () => {
  const t = await startWsTracker({protocol: {enable_full_scrape: true, full_scrape_interval: 1}, network: {enable_http_health_checks: true}})
  const c = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
  try {
    const [h1, h2] = [binaryId(), binaryId()]
    c.send(announce(h1, binaryId(), {left: 0}))
    await c.next(isAnnounceResponse)
    c.send(announce(h1 === h2 ? h1 : h2, binaryId(), {event: 'completed', left: 0}))
    await c.next(isAnnounceResponse)
    c.send({action: 'scrape', info_hash: h1})
    let s = await c.next()
    assert.deepEqual(s.files[h1], {complete: 1, incomplete: 0, downloaded: 0})
    const unknown = binaryId()
    c.send({action: 'scrape', info_hash: [h1, h2, unknown, h1]})
    s = await c.next()
    assert.deepEqual(Object.keys(s.files).sort(), [h1, h2, unknown].sort())
    assert.deepEqual(s.files[h2], {complete: 1, incomplete: 0, downloaded: 1})
    assert.deepEqual(s.files[unknown], {complete: 0, incomplete: 0, downloaded: 0})
    await sleep(1200)
    c.send({action: 'scrape'})
    s = await c.next()
    assert.deepEqual(Object.keys(s.files).sort(), [h1, h2].sort())
    const health = await fetch(`http://127.0.0.1:${t.port4}/health`)
    assert.equal(health.status, 200)
    assert.equal(await health.text(), 'Ok')
    assert.equal((await fetch(`http://127.0.0.1:${t.port4}/`)).status, 426)
  } finally {
    c.close()
    await t.stop()
  }
})

test('full scrape with 2 workers: every torrent of both shards, each part larger than one mesh chunk', async () => {
  const N = 10_000
  const t = await startWsTracker({socket_workers: 2, protocol: {enable_full_scrape: true, full_scrape_interval: 1}, limits: {max_torrents_per_connection: N}})
  const c = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
  try {
    // Random first bytes spread the torrents over both shards; some 80 bytes an entry.
    const hashes = Array.from({length: N}, () => randomBytes(20).toString('latin1'))
    for (let i = 0; i < N; i += 500) {
      const batch = hashes.slice(i, i + 500)
      for (const h of batch) c.send(announce(h, binaryId(), {numwant: 0}))
      for (let j = 0; j < batch.length; j++) await c.next(isAnnounceResponse)
    }
    let files: Record<string, unknown> = {}
    for (let i = 0; i < 40 && Object.keys(files).length < N; i++) {
      await sleep(250)
      c.send({action: 'scrape'})
      files = (await c.next()).files
    }
    assert.deepEqual(Object.keys(files).sort(), [...hashes].sort())
    assert.ok(Object.values(files).every(e => (e as {incomplete: number}).incomplete === 1))
    assert.ok(Buffer.byteLength(JSON.stringify({action: 'scrape', files})) > 2 * FULL_SCRAPE_CHUNK)
  } finally {
    c.close()
    await t.stop()
  }
})

test('a client that stops reading: messages to it are dropped and counted, then it is cut off', async () => {
  const t = await startWsTracker({connections: {max_buffered_bytes: 4096, send_timeout: 1}, network: {max_message_size: 65_536}})
  const sender = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
  const stalled = await StalledClient.open(t.port4)
  try {
    const ih = binaryId()
    stalled.send(announce(ih, binaryId()))
    await sleep(200)
    const ps = binaryId()
    // Large offers, all to the stalled client (the only other peer), until it is cut off: first
    // the kernel's buffers fill, then the tracker's queue.
    const flood = setInterval(() => {
      for (let i = 0; i < 20; i++) sender.send(announce(ih, ps, {offers: [offer(binaryId(), 50_000)]}))
    }, 50)
    let dropped = 0
    let cut = 0
    try {
      for (let i = 0; i < 100 && cut === 0; i++) {
        await sleep(100)
        const text = await fetchMetrics(t.metricsUrl)
        dropped = sample(text, 'tracker_dropped_total{reason="slow_consumer",worker_index="0"}') ?? 0
        cut = sample(text, 'tracker_dropped_total{reason="send_timeout",worker_index="0"}') ?? 0
      }
    } finally {
      clearInterval(flood)
    }
    assert.ok(dropped > 0, 'messages to the stalled client were dropped')
    assert.equal(cut, 1, 'the stalled connection was closed after send_timeout')
    // The sender is unaffected.
    sender.send({action: 'scrape', info_hash: ih})
    assert.ok((await sender.next(m => m.action === 'scrape', 5000)).files)
  } finally {
    sender.close()
    stalled.close()
    await t.stop()
  }
})

test('idle connections are closed; dead ones are found by ping', async () => {
  const t = await startWsTracker({connections: {max_connection_idle: 1, ping_interval: 1}})
  try {
    const idle = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
    await idle.waitClosed(4000)
    const dead = await StalledClient.open(t.port4)
    let pinged = 0
    for (let i = 0; i < 50 && pinged === 0; i++) {
      await sleep(100)
      pinged = sample(await fetchMetrics(t.metricsUrl), 'tracker_dropped_total{reason="ping_timeout",worker_index="0"}') ?? 0
    }
    assert.ok(pinged > 0, 'a client that never answers pings is closed')
    dead.close()
  } finally {
    await t.stop()
  }
})

test('wss:// with the built-in TLS, on IPv4 and IPv6', async () => {
  const {cert, key} = makeCertificate(tempDir(), 'ws')
  const t = await startWsTracker({network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  try {
    for (const url of [`wss://127.0.0.1:${t.port4}`, `wss://[::1]:${t.port6}`]) {
      const c = await WsTestClient.open(url)
      c.send(announce(binaryId(), binaryId()))
      assert.ok(isAnnounceResponse(await c.next()))
      c.close()
    }
  } finally {
    await t.stop()
  }
})

test('2 workers: offers and answers cross workers; every peer of one torrent is reached', async () => {
  const t = await startWsTracker({socket_workers: 2, protocol: {max_offers: 10}})
  const N = 24
  const clients = await Promise.all(Array.from({length: N}, () => WsTestClient.open(`ws://127.0.0.1:${t.port4}`)))
  try {
    const ih = binaryId()
    const ids = clients.map(() => binaryId())
    for (let i = 0; i < N; i++) {
      clients[i].send(announce(ih, ids[i]))
      await clients[i].next(isAnnounceResponse)
    }
    // Everyone offers to up to 10 others; everyone answers every offer it gets.
    const offersMade = clients.map(() => Array.from({length: 10}, () => binaryId()))
    clients.forEach((c, i) => c.send(announce(ih, ids[i], {offers: offersMade[i].map(id => offer(id))})))
    for (const c of clients) assert.equal((await c.next(isAnnounceResponse)).incomplete, N - 1)
    await sleep(500)
    let relayed = 0
    for (let i = 0; i < N; i++) {
      for (;;) {
        const o = await clients[i].next(isOffer, 200).catch(() => undefined)
        if (!o) break
        relayed++
        clients[i].send(announce(ih, ids[i], {answer: {type: 'answer', sdp: `from ${i}`}, to_peer_id: o.peer_id, offer_id: o.offer_id}))
      }
    }
    assert.equal(relayed, N * 10, 'every offer reached a peer')
    let answered = 0
    for (const c of clients) {
      for (;;) {
        const a = await c.next(isAnswer, 500).catch(() => undefined)
        if (!a) break
        answered++
      }
    }
    assert.equal(answered, N * 10, 'every answer came back to its offerer')
    const text = await fetchMetrics(t.metricsUrl)
    for (const w of ['0', '1'])
      assert.ok((sample(text, `tracker_responses_total{type="announce",ip_version="4",worker_index="${w}"}`) ?? 0) > 0, `worker ${w} answered`)
  } finally {
    clients.forEach(c => c.close())
    await t.stop()
  }
})

// wss:// connections always use Node's sockets (StreamLink over TLS).
for (const [batched, workers, secure] of [
  ...IO.flatMap(
    b =>
      [
        [b, 1, false],
        [b, 2, false],
      ] as const,
  ),
  [false, 1, true] as const,
])
  test(`a client that floods pings and never reads: the tracker stops reading it, stays small and closes it after send_timeout (${secure ? 'wss://' : ioName(batched)}, ${workers} worker${workers > 1 ? 's' : ''})`, async () => {
    const sendTimeout = 2
    const tlsKeys = secure
      ? (({cert, key}) => ({enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}))(makeCertificate(tempDir(), 'ws'))
      : {}
    const t = await startWsTracker({
      socket_workers: workers,
      network: {batched_io: batched, ...tlsKeys},
      connections: {max_buffered_bytes: 65_536, send_timeout: sendTimeout, ping_interval: 3600, max_connection_idle: 3600},
    })
    const url = `${secure ? 'wss' : 'ws'}://127.0.0.1:${t.port4}`
    const normal = await WsTestClient.open(url)
    const flooder = await StalledClient.open(t.port4, {tls: secure})
    const socket = flooder.socket
    try {
      const rss = process.memoryUsage().rss
      const closed = flooder.closedByServer()
      let closedAt = 0
      void closed.then(() => (closedAt = Date.now()))
      const pings = Buffer.concat(Array.from({length: 256}, () => maskedControlFrame(OP_PING, Buffer.alloc(125, 0x70))))
      const base = socket.bytesWritten
      const start = Date.now()
      while (closedAt === 0 && Date.now() - start < 15_000) {
        if (socket.write(pings)) continue
        // One wait at a time, its listeners removed when it ends, so waits that time out leave none behind.
        const wait = new AbortController()
        await Promise.race([once(socket, 'drain', {signal: wait.signal}).catch(() => {}), closed, sleep(200)])
        wait.abort()
      }
      const taken = socket.bytesWritten - socket.writableLength - base
      assert.ok(closedAt > 0, 'the flooder was closed')
      const after = closedAt - start
      // The clock the sweep reads ticks once a second: closed between send_timeout - 1 and send_timeout + 2 s (more on a busy machine).
      assert.ok(after >= (sendTimeout - 1) * 1000 && after <= (sendTimeout + 5) * 1000, `closed ${after} ms after the flood began`)
      // Without the bound the tracker reads every ping and queues a pong for each (over 1 GiB in 10 s).
      assert.ok(taken < 48 << 20, `the tracker stopped reading: it took ${taken} bytes of pings`)
      if (workers === 1) assert.ok(process.memoryUsage().rss - rss < 128 << 20, 'the tracker (in this process) stayed small')
      const text = await fetchMetrics(t.metricsUrl)
      assert.equal(total(text, 'tracker_dropped_total', 'send_timeout'), 1)
      // The other client is unaffected.
      assert.equal(normal.closed, false)
      const ih = binaryId()
      normal.send({action: 'scrape', info_hash: ih})
      assert.ok((await normal.next(m => m.action === 'scrape')).files)
    } finally {
      normal.close()
      flooder.close()
      await t.stop()
    }
  })

for (const batched of IO)
  test(`only a pong that echoes our ping answers it: unsolicited pongs do not keep a connection alive (${ioName(batched)})`, async () => {
    const t = await startWsTracker({network: {batched_io: batched}, connections: {ping_interval: 1, max_connection_idle: 3600}})
    const url = `ws://127.0.0.1:${t.port4}`
    const ponger = await RawWsClient.open(t.port4, {answerPings: false})
    const answerer = await RawWsClient.open(t.port4, {answerPings: true})
    const normal = await WsTestClient.open(url)
    const timer = setInterval(() => ponger.send(OP_PONG, Buffer.from(binaryId(), 'latin1').subarray(0, 8)), 100)
    try {
      const start = Date.now()
      while (!ponger.closed && Date.now() - start < 8000) await sleep(50)
      assert.ok(ponger.closed, 'a client that sends pongs of its own but never answers a ping is closed')
      // Pinged in one round, closed in the next (2 s; more on a busy machine).
      assert.ok(Date.now() - start <= 5000, `closed after ${Date.now() - start} ms`)
      assert.ok(ponger.pings.length >= 1 && ponger.pings.every(p => p.length === 8), 'pings carry an 8-byte token')
      await sleep(1500)
      assert.equal(answerer.closed, false, 'a client that echoes every ping stays')
      assert.ok(answerer.pings.length >= 3)
      assert.notDeepEqual(answerer.pings[0], answerer.pings[1], 'a new token every round')
      assert.equal(normal.closed, false, 'the ws client (which answers pings itself) stays')
      normal.send({action: 'scrape', info_hash: binaryId()})
      assert.ok((await normal.next(m => m.action === 'scrape')).files)
      assert.equal(total(await fetchMetrics(t.metricsUrl), 'tracker_dropped_total', 'ping_timeout'), 1)
    } finally {
      clearInterval(timer)
      for (const c of [ponger, answerer, normal]) c.close()
      await t.stop()
    }
  })

// Expiry and replaced offer ids giving their slots back: the model test in ws-codec.test.ts.
for (const workers of [1, 2])
  test(`pending offers are capped per connection and per torrent; an answer gives its slot back (${workers} worker${workers > 1 ? 's' : ''})`, async () => {
    const t = await startWsTracker({
      socket_workers: workers,
      protocol: {max_offers: 10},
      limits: {max_pending_offers_per_connection: 5, max_pending_offers_per_torrent: 8},
    })
    const url = `ws://127.0.0.1:${t.port4}`
    const peers = await Promise.all(Array.from({length: 12}, () => WsTestClient.open(url)))
    const [a, c] = await Promise.all([WsTestClient.open(url), WsTestClient.open(url)])
    const ih = binaryId()
    const [pa, pc] = [binaryId(), binaryId()]
    const ids = peers.map(() => binaryId())
    /** Offers relayed within a short wait, with the index of the peer each reached (a is 12 and c 13: they can be offered to as well). */
    const relayed = async (): Promise<{to: number; msg: Msg}[]> => {
      await sleep(300)
      const got: {to: number; msg: Msg}[] = []
      for (const [to, p] of [...peers, a, c].entries())
        for (let msg: Msg | undefined; (msg = await p.next(isOffer, 1).catch(() => undefined)); ) got.push({to, msg})
      return got
    }
    const offerFrom = async (client: WsTestClient, peerId: string): Promise<{to: number; msg: Msg}[]> => {
      client.send(announce(ih, peerId, {offers: Array.from({length: 10}, () => offer())}))
      assert.ok(isAnnounceResponse(await client.next(isAnnounceResponse)), 'the announce itself is answered')
      return relayed()
    }
    const refused = async () => total(await fetchMetrics(t.metricsUrl), 'tracker_refusals_total', 'offer_limit')
    try {
      for (let i = 0; i < peers.length; i++) {
        peers[i].send(announce(ih, ids[i]))
        await peers[i].next(isAnnounceResponse)
      }
      // c is not in the torrent yet: a's offers go to the 12 peers.
      const first = await offerFrom(a, pa)
      assert.equal(first.length, 5, 'the connection cap')
      assert.equal(await refused(), 5)
      assert.equal((await offerFrom(a, pa)).length, 0, 'still at the cap')
      assert.equal(await refused(), 15)
      // An answer frees its offer's slot.
      const {to, msg} = first[0]
      assert.equal(msg.peer_id, pa)
      peers[to].send(announce(ih, ids[to], {answer: {type: 'answer', sdp: 'x'}, to_peer_id: pa, offer_id: msg.offer_id}))
      assert.equal((await a.next(isAnswer)).offer_id, msg.offer_id)
      assert.equal((await offerFrom(a, pa)).length, 1, 'one slot came back')
      // The torrent cap: 5 of a's are pending, room for 3 of c's.
      assert.equal((await offerFrom(c, pc)).length, 3, 'the torrent cap')
      assert.equal(await refused(), 15 + 9 + 7)
    } finally {
      for (const x of [...peers, a, c]) x.close()
      await t.stop()
    }
  })

for (const workers of [1, 2])
  test(`a connection can be in at most max_torrents_per_connection torrents (${workers} worker${workers > 1 ? 's' : ''})`, async () => {
    const t = await startWsTracker({socket_workers: workers, limits: {max_torrents_per_connection: 3}})
    const c = await WsTestClient.open(`ws://127.0.0.1:${t.port4}`)
    try {
      const torrents = Array.from({length: 4}, () => binaryId())
      const pid = binaryId()
      for (const ih of torrents.slice(0, 3)) {
        c.send(announce(ih, pid))
        await c.next(isAnnounceResponse)
      }
      c.send(announce(torrents[3], pid))
      const f = await c.next(isFailure)
      assert.equal(f['failure reason'], 'Too many torrents on one connection: at most 3')
      assert.equal(f.info_hash, torrents[3])
      // Announcing again in a torrent it is in is fine; leaving one makes room.
      c.send(announce(torrents[0], pid))
      await c.next(isAnnounceResponse)
      c.send(announce(torrents[1], pid, {event: 'stopped'}))
      await c.next(isAnnounceResponse)
      c.send(announce(torrents[3], pid))
      await c.next(isAnnounceResponse)
      assert.equal(total(await fetchMetrics(t.metricsUrl), 'tracker_refusals_total', 'torrents_per_connection'), 1)
    } finally {
      c.close()
      await t.stop()
    }
  })

/** A TCP connection to the tracker (TLS when `tls`) that sends `bytes` and then nothing; resolves when connected. */
async function stalled(port: number, o: {tls?: boolean; bytes?: string} = {}): Promise<{socket: net.Socket; closed: Promise<number>; received: () => string}> {
  const socket = o.tls ? tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}) : net.connect({port, host: '127.0.0.1'})
  let got = ''
  socket.on('data', d => (got += d.toString('latin1')))
  socket.on('error', () => {})
  const start = Date.now()
  const closed = new Promise<number>(resolve => socket.once('close', () => resolve(Date.now() - start)))
  await once(socket, o.tls ? 'secureConnect' : 'connect')
  if (o.bytes) socket.write(o.bytes)
  return {socket, closed, received: () => got}
}

for (const [scheme, batched] of [...IO.map(b => ['ws', b] as const), ['wss', false] as const])
  test(`every state before the WebSocket has a timer: stalled ${scheme === 'wss' ? 'TLS handshakes and ' : ''}upgrade requests are closed after handshake_timeout; WebSockets outlive it (${scheme}://, ${ioName(batched)})`, async () => {
    const secure =
      scheme === 'wss' ? (({cert, key}) => ({enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}))(makeCertificate(tempDir(), 'ws')) : {}
    const t = await startWsTracker({connections: {handshake_timeout: 1}, network: {batched_io: batched, ...secure}})
    const sockets: net.Socket[] = []
    const early = await WsTestClient.open(`${scheme}://127.0.0.1:${t.port4}`)
    try {
      const cases = [
        // Over wss://, a socket that sends nothing never starts its TLS handshake; over ws://, it never sends its request.
        {what: 'a socket that sends nothing', s: await stalled(t.port4)},
        {what: 'half an upgrade request', s: await stalled(t.port4, {tls: scheme === 'wss', bytes: 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'})},
      ]
      for (const {what, s} of cases) {
        sockets.push(s.socket)
        const after = await Promise.race([s.closed, sleep(10_000).then(() => Infinity)])
        // 1 s, and Node checks request timers every half second (more on a busy machine).
        assert.ok(after >= 800 && after <= 5000, `${what}: closed after ${after} ms`)
      }
      // Node answers a request that timed out with 408; a TLS handshake that timed out gets nothing.
      assert.match(cases[1].s.received(), /^HTTP\/1\.1 408 /)
      const text = await fetchMetrics(t.metricsUrl)
      assert.equal(total(text, 'tracker_dropped_total', 'tls_handshake_timeout'), scheme === 'wss' ? 1 : 0)
      assert.equal(total(text, 'tracker_dropped_total', 'request_timeout'), scheme === 'wss' ? 1 : 2)
      assert.equal(total(text, 'tracker_dropped_total', 'tls_error'), 0)
      // A WebSocket opened before is still served (the HTTP server's timers stop at the upgrade), and a new client gets in.
      const c = await WsTestClient.open(`${scheme}://127.0.0.1:${t.port4}`)
      for (const x of [early, c]) {
        x.send(announce(binaryId(), binaryId()))
        assert.ok(isAnnounceResponse(await x.next()))
      }
      c.close()
    } finally {
      early.close()
      for (const s of sockets) s.destroy()
      await t.stop()
    }
  })

for (const scheme of ['ws', 'wss'] as const)
  test(`at max_connections held by stalled handshakes a new client still gets a WebSocket; WebSockets are never evicted (${scheme}://)`, async () => {
    const secure =
      scheme === 'wss' ? (({cert, key}) => ({enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}))(makeCertificate(tempDir(), 'ws')) : {}
    const t = await startWsTracker({connections: {max_connections: 4, handshake_timeout: 60}, network: {...secure}})
    const url = `${scheme}://127.0.0.1:${t.port4}`
    const clients: WsTestClient[] = []
    const stalls: Awaited<ReturnType<typeof stalled>>[] = []
    try {
      clients.push(await WsTestClient.open(url), await WsTestClient.open(url))
      // Sockets that stall in their handshake (TLS, or the upgrade request after its first byte:
      // with batched I/O one that sends nothing waits in the kernel) fill the other two slots.
      for (let i = 0; i < 2; i++) {
        stalls.push(await stalled(t.port4, {bytes: scheme === 'ws' ? 'G' : undefined}))
        await sleep(100)
      }
      clients.push(await WsTestClient.open(url))
      assert.ok(await Promise.race([stalls[0].closed.then(() => true), sleep(2000).then(() => false)]), 'the oldest stalled socket made room')
      assert.equal(await Promise.race([stalls[1].closed.then(() => true), sleep(200).then(() => false)]), false, 'the other stalled socket is still open')
      clients.push(await WsTestClient.open(url))
      assert.ok(await Promise.race([stalls[1].closed.then(() => true), sleep(2000).then(() => false)]))
      // Every slot is a WebSocket now: the next client is refused, and none of them is closed.
      await assert.rejects(WsTestClient.open(url), /503/)
      for (const c of clients) {
        c.send({action: 'scrape', info_hash: binaryId()})
        assert.ok((await c.next(m => m.action === 'scrape')).files)
      }
      const text = await fetchMetrics(t.metricsUrl)
      assert.equal(total(text, 'tracker_dropped_total', 'handshake_evicted'), 2)
      assert.equal(total(text, 'tracker_dropped_total', 'max_connections'), 1)
      assert.equal(total(text, 'tracker_dropped_total', 'tls_error'), 0, 'an evicted TLS handshake is counted once')
    } finally {
      for (const c of clients) c.close()
      for (const s of stalls) s.socket.destroy()
      await t.stop()
    }
  })

/** What the tracker answers `data` written on a fresh connection, read until it closes (or `ms`). */
async function answerTo(port: number, data: string | Buffer, ms = 3000): Promise<string> {
  const socket = net.connect({port, host: '127.0.0.1'})
  let got = ''
  socket.on('data', d => (got += d.toString('latin1')))
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(data)
  await Promise.race([once(socket, 'close'), sleep(ms)])
  socket.destroy()
  return got
}

for (const batched of IO)
  test(`upgrade requests are checked alike on both paths: refusals say why, frames sent with the request are read (${ioName(batched)})`, async () => {
    const t = await startWsTracker({network: {batched_io: batched}})
    try {
      const head = (lines: string[], method = 'GET') => `${method} / HTTP/1.1\r\nHost: x\r\n${lines.map(l => l + '\r\n').join('')}\r\n`
      const upgrade = ['Upgrade: websocket', 'Connection: Upgrade']
      const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
      const cases: [string, string | Buffer, RegExp][] = [
        ['a plain GET', head([]), /^HTTP\/1\.1 426 [\s\S]*connect with a WebSocket/],
        ['an upgrade without a key', head([...upgrade, 'Sec-WebSocket-Version: 13']), /^HTTP\/1\.1 400 [\s\S]*Invalid Sec-WebSocket-Key/],
        ['version 8', head([...upgrade, key, 'Sec-WebSocket-Version: 8']), /^HTTP\/1\.1 426 [\s\S]*Sec-WebSocket-Version: 13[\s\S]*version 13/],
        ['a POST upgrade', head([...upgrade, key, 'Sec-WebSocket-Version: 13'], 'POST'), /^HTTP\/1\.1 405 /],
        ['not HTTP', 'HELLO\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['a head over 16 KiB', head([`X-Big: ${'y'.repeat(20_000)}`]), /^HTTP\/1\.1 431 /],
      ]
      for (const [what, data, expected] of cases) assert.match(await answerTo(t.port4, data), expected, what)
      // The handshake and an announce in one write: 101, then the announce's reply.
      const ih = binaryId()
      const both = Buffer.concat([Buffer.from(handshakeRequest()), maskedFrame(announce(ih, binaryId()))])
      const got = await answerTo(t.port4, both, 1000)
      assert.match(got, /^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*Sec-WebSocket-Accept: /)
      assert.match(got, /"action":"announce"/)
      const text = await fetchMetrics(t.metricsUrl)
      assert.equal(sample(text, 'tracker_connections{worker_index="0"}'), 0)
    } finally {
      await t.stop()
    }
  })
