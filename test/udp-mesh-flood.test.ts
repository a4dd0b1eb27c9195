import {test} from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import {randomBytes} from 'node:crypto'
import {descendants, rssBytes} from '../loadtest/bench/proc.js'
import * as udp from '../src/protocol/udp/index.js'
import {fetchMetrics, sample, startUdpTracker, UdpClient} from './harness.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const MiB = 1 << 20

/** 70-hash scrapes with a valid connection id from 127.0.0.1, as fast as `sockets` sockets send. */
async function flood(port: number, connectionId: Uint8Array, ms: number, sockets: number): Promise<number> {
  const socks = await Promise.all(
    Array.from(
      {length: sockets},
      () =>
        new Promise<dgram.Socket>(resolve => {
          const s = dgram.createSocket('udp4')
          s.on('message', () => {})
          s.bind(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const packets = Array.from({length: 32}, (_, i) => {
    const b = Buffer.alloc(16 + 20 * 70)
    udp.writeScrapeRequest(
      b,
      connectionId,
      i,
      Array.from({length: 70}, () => randomBytes(20)),
    )
    return b
  })
  const end = Date.now() + ms
  let sent = 0
  await Promise.all(
    socks.map(
      s =>
        new Promise<void>(resolve => {
          let inFlight = 0
          const pump = (): void => {
            if (Date.now() >= end) {
              if (inFlight === 0) resolve()
              return
            }
            while (inFlight < 128) {
              inFlight++
              s.send(packets[sent++ & 31], port, '127.0.0.1', () => {
                if (--inFlight === 0) setImmediate(pump)
              })
            }
          }
          pump()
        }),
    ),
  )
  for (const s of socks) s.close()
  return sent
}

test('2 workers under a flood of 70-hash scrapes from one client: bounded memory, every scrape accounted for, announces answered after it', async ctx => {
  // The default receive buffer (8 MB), not the harness's OS default: what lets a flood reach the workers.
  const t = await startUdpTracker({socket_workers: 2, network: {use_ipv6: false, socket_recv_buffer_size: 8_000_000}})
  const legit = await UdpClient.open(4, t.port4, '127.0.0.2')
  const attacker = await UdpClient.open(4, t.port4, '127.0.0.1')
  try {
    const workers = descendants(process.pid).filter(pid => rssBytes(pid) > 0)
    assert.equal(workers.length, 2, 'two worker processes')
    await legit.connect()
    const cid = await attacker.connect()
    const peak = workers.map(() => 0)
    const sampler = setInterval(() => workers.forEach((pid, i) => (peak[i] = Math.max(peak[i], rssBytes(pid)))), 100)
    const sent = await flood(t.port4, cid, 4000, 8)
    clearInterval(sampler)
    // Right after: two announces, for torrents of either shard (one is forwarded to its owner).
    const announces = [0, 1].map(first => {
      const infoHash = randomBytes(20)
      infoHash[0] = first
      return legit.request(legit.announceBytes({infoHash, peerId: randomBytes(20), port: 6881}), 2000)
    })
    for (const r of await Promise.all(announces)) assert.equal(r.action, 1, 'answered with an announce reply within 2 s')
    const rss = workers.map(pid => rssBytes(pid))
    // Every scrape a worker took in ended as counts or as a busy error (counted): none is lost.
    let text = ''
    const ended = (w: string) =>
      (sample(text, `tracker_responses_total{type="scrape",ip_version="4",worker_index="${w}"}`) ?? 0) +
      (sample(text, `tracker_refusals_total{reason="busy",worker_index="${w}"}`) ?? 0) +
      (sample(text, `tracker_refusals_total{reason="scrape_timeout",worker_index="${w}"}`) ?? 0)
    const taken = (w: string) => sample(text, `tracker_requests_total{type="scrape",ip_version="4",worker_index="${w}"}`) ?? 0
    for (let i = 0; i < 80; i++) {
      text = await fetchMetrics(t.metricsUrl)
      if (ended('0') === taken('0') && ended('1') === taken('1')) break
      await sleep(100)
    }
    const report = ['0', '1']
      .map(
        w =>
          `worker ${w}: ${taken(w)} scrapes taken in, ${sample(text, `tracker_responses_total{type="scrape",ip_version="4",worker_index="${w}"}`) ?? 0} with counts, ` +
          `busy ${sample(text, `tracker_refusals_total{reason="busy",worker_index="${w}"}`) ?? 0}, ` +
          `timed out ${sample(text, `tracker_refusals_total{reason="scrape_timeout",worker_index="${w}"}`) ?? 0}, ` +
          `frames dropped ${sample(text, `tracker_dropped_total{reason="mesh_queue_full",worker_index="${w}"}`) ?? 0}, ` +
          `peak RSS ${(peak[Number(w)] / MiB).toFixed(0)} MiB`,
      )
      .join('; ')
    ctx.diagnostic(`${sent} scrapes sent in 4 s; ${report}`)
    for (const w of ['0', '1']) {
      assert.equal(ended(w), taken(w), `every scrape ended and was counted (${report}; ${sent} sent)`)
      // Busy errors are the only errors here, and each is counted as a refusal.
      assert.equal(
        sample(text, `tracker_responses_total{type="error",ip_version="4",worker_index="${w}"}`) ?? 0,
        ended(w) - (sample(text, `tracker_responses_total{type="scrape",ip_version="4",worker_index="${w}"}`) ?? 0),
      )
    }
    assert.ok(taken('0') + taken('1') > 10_000, `a flood took place (${report})`)
    // Unbounded queues took each worker past 300 MiB within these 4 s; bounded, each stays near
    // its idle size plus its links' bounds and garbage.
    peak.forEach((p, i) => assert.ok(p < 250 * MiB, `worker ${i} peaked at ${(p / MiB).toFixed(0)} MiB (${report})`))
    rss.forEach((p, i) => assert.ok(p < 250 * MiB, `worker ${i} holds ${(p / MiB).toFixed(0)} MiB after the flood`))
  } finally {
    legit.close()
    attacker.close()
    await t.stop()
  }
})
