import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  AnnounceRequest,
  AnnounceResult,
  AnnounceStatus,
  EVENT_COMPLETED,
  EVENT_NONE,
  EVENT_STARTED,
  EVENT_STOPPED,
  ScrapeCounts,
  Swarm,
} from '../src/swarm/index.js'
import {nastyId} from './helpers.js'

const limits = {maxTorrents: 1000, maxPeersPerTorrent: 100_000, maxPeerAge: 100}

interface Peer {
  family: 4 | 6
  ip: Uint8Array
  port: number
  peerId: Buffer
}

function peer(family: 4 | 6, n: number, port = 1000 + n): Peer {
  const ip = new Uint8Array(family === 4 ? 4 : 16)
  ip[0] = family === 4 ? 10 : 0x20
  ip[ip.length - 2] = (n >> 8) & 0xff
  ip[ip.length - 1] = n & 0xff
  return {family, ip, port, peerId: nastyId()}
}

function announce(swarm: Swarm, hash: Buffer, p: Peer, opts: {seeder?: boolean; event?: number; numWant?: number; now?: number; ids?: boolean} = {}) {
  const req = new AnnounceRequest()
  req.infoHash = hash
  req.infoHashOffset = 0
  req.peerId = p.peerId
  req.peerIdOffset = 0
  req.ipFamily = p.family
  req.ip = p.ip
  req.port = p.port
  req.event = opts.event ?? EVENT_STARTED
  req.isSeeder = opts.seeder ?? false
  req.numWant = opts.numWant ?? 50
  const res = new AnnounceResult()
  res.peerBuf = new Uint8Array(18 * req.numWant)
  if (opts.ids) res.peerIdBuf = new Uint8Array(20 * req.numWant)
  const status = swarm.announce(req, opts.now ?? 0, res)
  const size = p.family === 4 ? 6 : 18
  const peers: string[] = []
  for (let i = 0; i < res.peerCount; i++) peers.push(Buffer.from(res.peerBuf.subarray(i * size, i * size + size)).toString('hex'))
  const ids: string[] = []
  if (res.peerIdBuf) for (let i = 0; i < res.peerCount; i++) ids.push(Buffer.from(res.peerIdBuf.subarray(i * 20, i * 20 + 20)).toString('hex'))
  return {status, seeders: res.seeders, leechers: res.leechers, completed: res.completed, peers, ids}
}

const keyOf = (p: Peer) => Buffer.concat([p.ip, Buffer.from([p.port >> 8, p.port & 0xff])]).toString('hex')

test('counts exclude the announcer; the announcer never gets itself', () => {
  const swarm = new Swarm(limits, 1)
  const hash = nastyId()
  const a = peer(4, 1)
  const b = peer(4, 2)
  let r = announce(swarm, hash, a)
  assert.deepEqual([r.seeders, r.leechers, r.peers.length], [0, 0, 0])
  r = announce(swarm, hash, b, {seeder: true})
  assert.deepEqual([r.seeders, r.leechers], [0, 1])
  assert.deepEqual(r.peers, [keyOf(a)])
  r = announce(swarm, hash, a)
  assert.deepEqual([r.seeders, r.leechers], [1, 0])
  assert.deepEqual(r.peers, [keyOf(b)])
  const c = new ScrapeCounts()
  swarm.scrape(hash, 0, c)
  assert.deepEqual([c.seeders, c.leechers], [1, 1])
})

test('IPv4 and IPv6 peers are kept apart but counted together', () => {
  const swarm = new Swarm(limits, 2)
  const hash = nastyId()
  const v4 = [peer(4, 1), peer(4, 2)]
  const v6 = [peer(6, 1), peer(6, 2), peer(6, 3)]
  for (const p of [...v4, ...v6]) announce(swarm, hash, p)
  const r4 = announce(swarm, hash, v4[0])
  assert.equal(r4.leechers, 4)
  assert.deepEqual(r4.peers, [keyOf(v4[1])])
  const r6 = announce(swarm, hash, v6[0])
  assert.equal(r6.leechers, 4)
  assert.deepEqual(new Set(r6.peers), new Set([keyOf(v6[1]), keyOf(v6[2])]))
  assert.equal(swarm.peers[0], 2)
  assert.equal(swarm.peers[1], 3)
})

test('a seeder gets leechers only, when leechers exist', () => {
  const swarm = new Swarm(limits, 3)
  const hash = nastyId()
  const seeders = Array.from({length: 10}, (_, i) => peer(4, i))
  const leechers = Array.from({length: 3}, (_, i) => peer(4, 100 + i))
  for (const s of seeders) announce(swarm, hash, s, {seeder: true})
  let r = announce(swarm, hash, seeders[0], {seeder: true})
  assert.equal(r.peers.length, 9, 'no leechers: seeders are returned')
  for (const l of leechers) announce(swarm, hash, l)
  r = announce(swarm, hash, seeders[0], {seeder: true})
  assert.deepEqual(new Set(r.peers), new Set(leechers.map(keyOf)))
  r = announce(swarm, hash, leechers[0])
  assert.equal(r.peers.length, 12, 'a leecher gets everyone else')
})

test('stopped removes the peer and returns no peers; completed counts once', () => {
  const swarm = new Swarm(limits, 4)
  const hash = nastyId()
  const a = peer(4, 1)
  const b = peer(4, 2)
  announce(swarm, hash, a)
  announce(swarm, hash, b)
  let r = announce(swarm, hash, a, {seeder: true, event: EVENT_COMPLETED})
  assert.equal(r.completed, 1)
  r = announce(swarm, hash, a, {seeder: true, event: EVENT_COMPLETED})
  assert.equal(r.completed, 1, 'a known seeder repeating completed does not count again')
  r = announce(swarm, hash, b, {event: EVENT_STOPPED})
  assert.deepEqual([r.seeders, r.leechers, r.peers.length], [1, 0, 0])
  r = announce(swarm, hash, a, {seeder: true, event: EVENT_NONE})
  assert.deepEqual([r.seeders, r.leechers, r.peers.length], [0, 0, 0])
  assert.equal(swarm.peers[0], 1)
})

test('peers expire; cleaning frees empty torrents and purges refused ones', () => {
  const swarm = new Swarm(limits, 5)
  const h1 = nastyId()
  const h2 = nastyId()
  announce(swarm, h1, peer(4, 1), {now: 0})
  announce(swarm, h1, peer(4, 2), {now: 50})
  announce(swarm, h2, peer(6, 1), {now: 50})
  assert.equal(swarm.torrents, 2)
  swarm.clean(120)
  assert.equal(swarm.peers[0], 1)
  assert.equal(swarm.peersExpired, 1)
  assert.equal(swarm.torrents, 2)
  swarm.clean(120, (b, o) => !Buffer.from(b.subarray(o, o + 20)).equals(h2))
  assert.equal(swarm.torrents, 1)
  const c = new ScrapeCounts()
  assert.equal(swarm.scrape(h2, 0, c).leechers, 0)
  swarm.clean(200)
  assert.equal(swarm.torrents, 0)
  assert.equal(swarm.peers[0] + swarm.peers[1], 0)
})

test('caps: torrents and peers per torrent, refusals counted', () => {
  const swarm = new Swarm({maxTorrents: 2, maxPeersPerTorrent: 3, maxPeerAge: 100}, 6)
  const hashes = [nastyId(), nastyId(), nastyId()]
  assert.equal(announce(swarm, hashes[0], peer(4, 1)).status, AnnounceStatus.Ok)
  assert.equal(announce(swarm, hashes[1], peer(4, 1)).status, AnnounceStatus.Ok)
  const refused = announce(swarm, hashes[2], peer(4, 1))
  assert.equal(refused.status, AnnounceStatus.TorrentLimit)
  assert.equal(swarm.refusedTorrentLimit, 1)
  announce(swarm, hashes[0], peer(4, 2))
  announce(swarm, hashes[0], peer(6, 3))
  const over = announce(swarm, hashes[0], peer(4, 4))
  assert.equal(over.status, AnnounceStatus.PeerLimit)
  assert.equal(over.peers.length, 2, 'served peers even though not stored')
  assert.equal(over.leechers, 3)
  assert.equal(swarm.refusedPeerLimit, 1)
  assert.equal(swarm.peers[0] + swarm.peers[1], 4)
})

test('peer ids come back with their peers', () => {
  const swarm = new Swarm(limits, 7)
  const hash = nastyId()
  const ps = Array.from({length: 5}, (_, i) => peer(6, i))
  for (const p of ps) announce(swarm, hash, p)
  const r = announce(swarm, hash, ps[0], {ids: true})
  const byKey = new Map(ps.map(p => [keyOf(p), p.peerId.toString('hex')]))
  assert.equal(r.ids.length, 4)
  r.peers.forEach((k, i) => assert.equal(r.ids[i], byKey.get(k)))
})

test('a large torrent (index, partition moves, removals) stays consistent', () => {
  const swarm = new Swarm(limits, 8)
  const hash = nastyId()
  const ps = Array.from({length: 3000}, (_, i) => peer(4, i))
  ps.forEach((p, i) => announce(swarm, hash, p, {seeder: i % 3 === 0}))
  // Flip statuses, stop a third.
  ps.forEach((p, i) => {
    if (i % 5 === 0) announce(swarm, hash, p, {event: EVENT_STOPPED})
    else if (i % 7 === 0) announce(swarm, hash, p, {seeder: i % 3 !== 0})
  })
  const live = ps.filter((_, i) => i % 5 !== 0)
  const isSeeder = (i: number) => (i % 7 === 0 ? i % 3 !== 0 : i % 3 === 0)
  const seeders = ps.filter((_, i) => i % 5 !== 0 && isSeeder(i)).length
  const c = new ScrapeCounts()
  swarm.scrape(hash, 0, c)
  assert.equal(c.seeders, seeders)
  assert.equal(c.leechers, live.length - seeders)
  // Every live peer is found again (an update, not an insert).
  for (const p of live) announce(swarm, hash, p, {seeder: false, numWant: 0})
  assert.equal(swarm.peers[0], live.length)
  const r = announce(swarm, hash, live[1], {numWant: 200})
  assert.equal(r.peers.length, 200)
  assert.equal(new Set(r.peers).size, 200)
  assert.ok(!r.peers.includes(keyOf(live[1])))
})

test('property: the engine agrees with a plain model', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          torrent: fc.nat(2),
          who: fc.nat(40),
          family: fc.constantFrom(4 as const, 6 as const),
          op: fc.constantFrom('leech', 'seed', 'stop', 'complete', 'clean', 'compact'),
          numWant: fc.nat(60),
          dt: fc.nat(30),
        }),
        {maxLength: 300},
      ),
      ops => {
        const swarm = new Swarm({maxTorrents: 10, maxPeersPerTorrent: 1000, maxPeerAge: 60}, 9)
        const hashes = [nastyId(), nastyId(), nastyId()]
        const peers = new Map<string, Peer>()
        const model = hashes.map(() => new Map<string, {seeder: boolean; expiry: number; family: 4 | 6}>())
        const completed = [0, 0, 0]
        let now = 0
        for (const op of ops) {
          now += op.dt
          if (op.op === 'compact') {
            // Moves every segment to fresh chunks; nothing observable may change.
            swarm.compact(op.family === 4 ? 0 : 1)
            continue
          }
          if (op.op === 'clean') {
            swarm.clean(now)
            model.forEach((m, t) => {
              for (const [k, v] of m) if (v.expiry < now) m.delete(k)
              // An empty torrent is freed, and its completed count with it.
              if (m.size === 0) completed[t] = 0
            })
            continue
          }
          const id = `${op.family}:${op.who}`
          let p = peers.get(id)
          if (!p) peers.set(id, (p = peer(op.family, op.who)))
          const m = model[op.torrent]
          const k = keyOf(p)
          const seeder = op.op === 'seed' || op.op === 'complete'
          const event = op.op === 'stop' ? EVENT_STOPPED : op.op === 'complete' ? EVENT_COMPLETED : EVENT_NONE
          const r = announce(swarm, hashes[op.torrent], p, {seeder, event, numWant: op.numWant, now})
          if (event === EVENT_COMPLETED && !m.get(k)?.seeder) completed[op.torrent]++
          if (event === EVENT_STOPPED) m.delete(k)
          else m.set(k, {seeder, expiry: now + 60, family: op.family})
          const others = [...m.entries()].filter(([key]) => key !== k)
          assert.equal(r.seeders, others.filter(([, v]) => v.seeder).length)
          assert.equal(r.leechers, others.filter(([, v]) => !v.seeder).length)
          assert.equal(r.completed, completed[op.torrent])
          if (event === EVENT_STOPPED) {
            assert.equal(r.peers.length, 0)
            continue
          }
          const sameFamily = others.filter(([, v]) => v.family === op.family)
          const leechers = sameFamily.filter(([, v]) => !v.seeder)
          const eligible = seeder && leechers.length > 0 ? leechers : sameFamily
          assert.equal(r.peers.length, Math.min(op.numWant, eligible.length))
          const allowed = new Set(eligible.map(([key]) => key))
          for (const got of r.peers) assert.ok(allowed.has(got), 'returned peer is an eligible other peer')
          assert.equal(new Set(r.peers).size, r.peers.length)
        }
        let total = 0
        for (const m of model) total += m.size
        assert.equal(swarm.peers[0] + swarm.peers[1], total)
      },
    ),
    {numRuns: 300},
  )
})
