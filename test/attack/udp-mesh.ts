/**
 * Class 6: the queues between UDP workers. One client with a valid connection id floods 70-hash
 * scrapes (hashes of every shard, so each request fans out over the mesh) for 15 s. Each worker's
 * memory must stay bounded, and legitimate announces (into torrents of every shard) must be
 * answered within 1 s of the flood stopping.
 */
import dgram from 'node:dgram'
import {randomBytes} from 'node:crypto'
import * as udp from '../../src/protocol/udp/index.js'
import {UdpClient} from '../harness.js'
import {mib, sleep} from './net.js'
import {Probe, udpAnnouncer} from './probe.js'
import {MiB, shardHash} from './tracker.js'
import type {Attack} from './suite.js'

/** Each worker's RSS may grow by less than this during the flood. */
const WORKER_RSS_BOUND = 100 * MiB
/** Sends not yet handed to the kernel: the attacker's own memory stays small. */
const MAX_OUTSTANDING = 2048

const meshQueues: Attack = {
  name: '6.mesh-queues',
  server: 'udp',
  workers: 'multi',
  budgetS: 60,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'udp'})
    await sleep(500)
    const workers = t.workerPids()
    const rss0 = workers.map(p => t.rssOfPid(p))
    const peaks = [...rss0]
    const sampler = setInterval(() => workers.forEach((p, i) => (peaks[i] = Math.max(peaks[i], t.rssOfPid(p)))), 250)
    ctx.defer(() => clearInterval(sampler))
    const legit = new Probe(
      await udpAnnouncer(
        ctx,
        t.port,
        Array.from({length: ctx.workers}, (_, s) => shardHash(s, ctx.workers)),
      ),
      100,
      1000,
    )

    // A connection id for 127.0.0.1 (ids are bound to the address, not the port).
    const handshake = ctx.own(await UdpClient.open(4, t.port))
    const cid = await handshake.connect()
    const packets = Array.from({length: 64}, (_, k) => {
      const b = Buffer.alloc(16 + 20 * 70)
      udp.writeScrapeRequest(
        b,
        cid,
        k,
        Array.from({length: 70}, () => randomBytes(20)),
      )
      return b
    })
    const flood = ctx.own(dgram.createSocket('udp4'))
    await new Promise<void>(resolve => flood.bind(0, '127.0.0.1', () => resolve()))
    let replies = 0
    flood.on('message', () => replies++)
    flood.on('error', () => {})
    let sent = 0
    let outstanding = 0
    const floodMs = ctx.seconds(15, 8) * 1000
    legit.start('during')
    const t0 = Date.now()
    while (Date.now() - t0 < floodMs) {
      for (let i = 0; i < 64 && outstanding < MAX_OUTSTANDING; i++) {
        outstanding++
        sent++
        flood.send(packets[i], t.port, '127.0.0.1', () => outstanding--)
      }
      await new Promise(setImmediate)
    }
    const stoppedAt = Date.now()
    legit.phase('after')
    await sleep(5000)
    await legit.stop()
    clearInterval(sampler)
    workers.forEach((p, i) => (peaks[i] = Math.max(peaks[i], t.rssOfPid(p))))
    const recovered = legit.firstAnswerAfter(stoppedAt)
    const meshDrops = await t.metric('tracker_dropped_total', {reason: 'mesh_queue_full'})
    const drops = await t.byReason('tracker_dropped_total')
    const refusals = await t.byReason('tracker_refusals_total')
    const bounded = peaks.every((p, i) => p - rss0[i] < WORKER_RSS_BOUND)
    return {
      held: bounded && recovered !== null && recovered <= 1000 && legit.ratioSince(stoppedAt + 1000) >= 0.9,
      evidence:
        `worker RSS ${peaks.map((p, i) => `${mib(rss0[i])}->${mib(p)}`).join(', ')} MiB (bound +${mib(WORKER_RSS_BOUND)} each); ` +
        `${sent} scrapes of 70 hashes in ${floodMs / 1000} s, ${replies} answered; legit announces ${legit.text('during')}; ` +
        `first answer ${recovered === null ? 'never' : `${Math.round(recovered)} ms`} after the flood stopped, ${legit.text('after')}; ` +
        `mesh_queue_full ${meshDrops ?? '?'}; drops: ${drops}; refusals: ${refusals}`,
    }
  },
}

export const MESH_ATTACKS: Attack[] = [meshQueues]
