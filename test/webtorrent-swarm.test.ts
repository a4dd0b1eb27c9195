/** The WebTorrent swarm engine (src/swarm/webtorrent.ts): counts, offer targets, answers and the pending-offer caps. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {AnswerStatus, type WebTorrentPeer, WebTorrentSwarm, WsAnnounceStatus} from '../src/swarm/index.js'

test('engine: counts exclude the announcer; offers go to distinct others; answers need a live offer', () => {
  const swarm = new WebTorrentSwarm({
    maxTorrents: 10,
    maxPeersPerTorrent: 100,
    maxPeerAge: 60,
    maxOfferAge: 30,
    maxPendingOffersPerConnection: 100,
    maxPendingOffersPerTorrent: 100,
  })
  const counts = {complete: 0, incomplete: 0, downloaded: 0}
  const ih = 'h'.repeat(20)
  const conn = (id: number) => ({worker: 0, id})
  for (let i = 0; i < 5; i++) assert.equal(swarm.announce(0, ih, `peer${i}`.padEnd(20, '.'), conn(i), i === 0, 2, 0, counts), WsAnnounceStatus.Ok)
  assert.deepEqual(counts, {complete: 1, incomplete: 3, downloaded: 0})
  const from = 'peer1'.padEnd(20, '.')
  swarm.announce(0, ih, from, conn(1), false, 0, 0, counts)
  const offers = ['o1', 'o2', 'o3', 'o4', 'o5'].map(id => ({offerId: id.padEnd(20)}))
  const targets = swarm.offerTargets(swarm.announced!, offers, 0)
  assert.equal(targets.length, 4, 'one offer per other peer at most')
  assert.equal(new Set(targets.map(p => p.peerId)).size, 4)
  assert.ok(!targets.some(p => p.peerId === from))
  // An answer is looked up in the torrent of the announce that carries it: the target announces.
  const answer = (target: WebTorrentPeer, offerId: string, now: number) => {
    assert.equal(swarm.announce(0, ih, target.peerId, target.conn, target.seeder, 0, now, counts, target), WsAnnounceStatus.Ok)
    assert.equal(swarm.announced, target, 'a live known peer is updated in place')
    return swarm.answerTarget(target.peerId, from, offerId.padEnd(20), now)
  }
  // The first target answers offer o1.
  assert.equal(answer(targets[0], 'o2', 1), AnswerStatus.NoOffer, 'o2 went to another peer')
  const back = answer(targets[0], 'o1', 1)
  assert.ok(typeof back === 'object' && back.peerId === from)
  assert.equal(answer(targets[0], 'o1', 1), AnswerStatus.NoOffer, 'used up')
  assert.equal(answer(targets[1], 'o2', 31), AnswerStatus.NoOffer, 'expired')
  assert.equal(swarm.answerTarget(targets[0].peerId, 'nobody'.padEnd(20), 'o1'.padEnd(20), 1), AnswerStatus.NoPeer)
  // Another connection cannot take a peer id over, nor remove it.
  assert.equal(swarm.announce(0, ih, from, conn(99), false, 3, 1, counts), WsAnnounceStatus.PeerIdTaken)
  assert.equal(swarm.removePeer(0, ih, from, conn(99)), false)
  assert.equal(swarm.removePeer(0, ih, from, conn(1)), true)
  assert.equal(answer(targets[2], 'o3', 1), AnswerStatus.NoPeer, 'the offerer left')
  // A removed peer a caller kept is not used again: the announce stores a new one.
  swarm.announce(0, ih, from, conn(1), false, 0, 1, counts, back as WebTorrentPeer)
  assert.ok(swarm.announced !== back && swarm.announced?.peerId === from)
  assert.equal(swarm.removePeer(0, ih, from, conn(1)), true)
  swarm.scrape(ih, counts)
  assert.deepEqual(counts, {complete: 1, incomplete: 3, downloaded: 0})
  // IPv6 peers count too, but offers stay within a family.
  swarm.announce(1, ih, 'v6peer'.padEnd(20), conn(50), false, 2, 1, counts)
  assert.deepEqual(counts, {complete: 1, incomplete: 3, downloaded: 0})
  assert.equal(swarm.offerTargets(swarm.announced!, [{offerId: 'x'.padEnd(20)}], 1).length, 0)
  // Expiry.
  swarm.clean(1000)
  swarm.scrape(ih, counts)
  assert.deepEqual(counts, {complete: 0, incomplete: 0, downloaded: 0})
  assert.equal(swarm.torrentCount(), 0)
})

test('engine: pending-offer counts never drift, whatever announces, offers, answers, stops, reused ids, expiry and cleaning do', () => {
  const maxPerConnection = 6
  const maxPerTorrent = 9
  const torrents = ['a', 'b', 'c'].map(c => c.repeat(20))
  // Connections on two workers; each has a peer id per torrent.
  const conns = [
    {worker: 0, id: 1},
    {worker: 0, id: 2},
    {worker: 1, id: 1},
    {worker: 1, id: 7},
    {worker: 0, id: 3},
  ]
  const peerId = (c: number) => `peer${c}`.padEnd(20, '.')
  const offerIds = ['o1', 'o2', 'o3', 'o4', 'o5'].map(id => id.padEnd(20, '-'))
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('announce' as const),
      c: fc.nat(conns.length - 1),
      t: fc.nat(torrents.length - 1),
      f: fc.constantFrom(0 as const, 1 as const),
      event: fc.constantFrom(0, 1, 2, 3),
    }),
    fc.record({
      kind: fc.constant('offers' as const),
      c: fc.nat(conns.length - 1),
      t: fc.nat(torrents.length - 1),
      f: fc.constantFrom(0 as const, 1 as const),
      ids: fc.array(fc.constantFrom(...offerIds), {maxLength: 8}),
    }),
    fc.record({
      kind: fc.constant('answer' as const),
      c: fc.nat(conns.length - 1),
      to: fc.nat(conns.length - 1),
      t: fc.nat(torrents.length - 1),
      f: fc.constantFrom(0 as const, 1 as const),
      id: fc.constantFrom(...offerIds),
    }),
    // The target of a pending offer answers it (random answers rarely match one).
    fc.record({kind: fc.constant('answerPending' as const), n: fc.nat(100)}),
    fc.record({kind: fc.constant('close' as const), c: fc.nat(conns.length - 1)}),
    fc.record({kind: fc.constant('tick' as const), seconds: fc.nat(40), refuse: fc.option(fc.nat(torrents.length - 1))}),
  )
  fc.assert(
    fc.property(fc.array(op, {maxLength: 120}), fc.integer(), (ops, seed) => {
      let state = seed
      const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x80000000
      const swarm = new WebTorrentSwarm(
        {
          maxTorrents: 100,
          maxPeersPerTorrent: 100,
          maxPeerAge: 60,
          maxOfferAge: 30,
          maxPendingOffersPerConnection: maxPerConnection,
          maxPendingOffersPerTorrent: maxPerTorrent,
        },
        random,
      )
      // The swarm's own tables, read only to recount.
      const inside = swarm as unknown as {
        families: Map<string, {list: unknown[]; offers: Map<string, {offerer: WebTorrentPeer; targetId: string; expires: number}>}>[]
      }
      const counts = {complete: 0, incomplete: 0, downloaded: 0}
      let now = 0
      let refused = 0
      const check = () => {
        const byConn = new Map<string, number>()
        let all = 0
        for (const map of inside.families) {
          for (const t of map.values()) {
            assert.ok(t.offers.size <= maxPerTorrent, 'the torrent cap holds')
            for (const offer of t.offers.values()) {
              const key = `${offer.offerer.conn.worker}/${offer.offerer.conn.id}`
              byConn.set(key, (byConn.get(key) ?? 0) + 1)
              all++
            }
          }
        }
        assert.equal(swarm.pendingOffers(), all, 'the total matches the offers held')
        for (const conn of conns) {
          const held = byConn.get(`${conn.worker}/${conn.id}`) ?? 0
          assert.equal(swarm.pendingOffers(conn), held, "a connection's count matches its offers held")
          assert.ok(held <= maxPerConnection, 'the connection cap holds')
        }
        assert.equal(swarm.refusedOfferLimit, refused)
      }
      for (const o of ops) {
        if (o.kind === 'announce') {
          swarm.announce(o.f, torrents[o.t], peerId(o.c), conns[o.c], false, o.event, now, counts)
        } else if (o.kind === 'offers') {
          if (swarm.announce(o.f, torrents[o.t], peerId(o.c), conns[o.c], false, 0, now, counts) !== WsAnnounceStatus.Ok) continue
          const from = swarm.announced!
          const t = inside.families[o.f].get(torrents[o.t])!
          const wanted = Math.min(o.ids.length, t.list.length - 1)
          const room = Math.max(0, Math.min(maxPerConnection - swarm.pendingOffers(conns[o.c]), maxPerTorrent - t.offers.size))
          const targets = swarm.offerTargets(
            from,
            o.ids.map(offerId => ({offerId})),
            now,
          )
          // Offers go unrelayed only past a cap, and then exactly those past it.
          assert.equal(targets.length, Math.max(0, Math.min(wanted, room)))
          refused += Math.max(0, wanted - targets.length)
        } else if (o.kind === 'answer') {
          swarm.announce(o.f, torrents[o.t], peerId(o.c), conns[o.c], false, 0, now, counts)
          swarm.answerTarget(peerId(o.c), peerId(o.to), o.id, now)
        } else if (o.kind === 'answerPending') {
          const pending = inside.families.flatMap((map, f) =>
            [...map].flatMap(([ih, t]) => [...t.offers].map(([offerId, offer]) => ({f: f as 0 | 1, ih, offerId, offer}))),
          )
          if (pending.length === 0) continue
          const {f, ih, offerId, offer} = pending[o.n % pending.length]
          const c = conns.findIndex((_, i) => peerId(i) === offer.targetId)
          if (swarm.announce(f, ih, offer.targetId, conns[c], false, 0, now, counts) !== WsAnnounceStatus.Ok) continue
          const before = swarm.pendingOffers()
          const target = swarm.answerTarget(offer.targetId, offer.offerer.peerId, offerId, now)
          assert.equal(swarm.pendingOffers(), before - 1, 'an answer uses its offer up')
          if (offer.offerer.index >= 0 && offer.expires >= now) assert.equal(target, offer.offerer)
        } else if (o.kind === 'close') {
          for (const ih of torrents) for (const f of [0, 1] as const) swarm.removePeer(f, ih, peerId(o.c), conns[o.c])
        } else {
          now += o.seconds
          const refusedTorrent = o.refuse === null ? undefined : torrents[o.refuse]
          swarm.clean(now, refusedTorrent === undefined ? undefined : ih => ih !== refusedTorrent)
        }
        check()
      }
      // Everything expires: every slot is given back.
      swarm.clean(now + 1000)
      check()
      assert.equal(swarm.pendingOffers(), 0)
      assert.equal((swarm as unknown as {pendingByConnection: Map<number, number>}).pendingByConnection.size, 0, 'no count is left behind')
    }),
    {numRuns: 500},
  )
})
