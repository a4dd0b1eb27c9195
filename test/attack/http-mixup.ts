/**
 * Class 1: an HTTP reply carries another client's data. Each reply must hold exactly what its
 * own request asked for: the hashes of its scrape, the peers of its torrent.
 */
import {randomBytes} from 'node:crypto'
import {announcePath, scrapePath} from '../../src/protocol/http/client.js'
import {decode, scrapeFiles, type RawHttp} from '../http-client.js'
import {openHttp, sleep} from './net.js'
import {shardHash} from './tracker.js'
import type {Attack, Context, Outcome} from './suite.js'

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`
/** `n` random info hashes, all of worker `shard`'s shard: that worker answers without the mesh. */
const hashes = (n: number, shard = 0, workers = 1): Buffer[] => Array.from({length: n}, () => shardHash(shard, workers))

/** Whether a scrape reply lists exactly `asked` (hex keys); undefined when it is not a scrape reply. */
function scrapeMatches(body: Buffer, asked: Buffer[]): boolean | undefined {
  let files: Map<string, unknown>
  try {
    files = scrapeFiles(decode(body))
  } catch {
    return undefined
  }
  const want = new Set(asked.map(h => h.toString('hex')))
  return files.size === want.size && [...files.keys()].every(k => want.has(k))
}

interface Tally {
  replies: number
  mismatched: number
  other: number
  expected: number
  closedEarly: number
}

const tallyText = (t: Tally, what: string) =>
  `${t.mismatched} of ${t.replies} replies held ${what}` +
  `${t.other ? `, ${t.other} unreadable` : ''}${t.replies < t.expected ? `; ${t.expected - t.replies} of ${t.expected} never came (${t.closedEarly} connections closed early)` : ''}`

/**
 * Held: no mismatch and no unreadable reply, over at least a quarter of the replies asked for (a
 * tracker may close a slow reader past its bound, but one that answers nothing proves nothing).
 */
const verdict = (t: Tally, what: string): Outcome => ({
  held: t.mismatched === 0 && t.other === 0 && t.replies >= 0.25 * t.expected,
  evidence: tallyText(t, what),
})

/** Reads `checks.length` replies from `c` in order, checking each; stops at the first missing one. */
async function readChecked(c: RawHttp, checks: ((body: Buffer) => boolean | undefined)[], t: Tally, ms = 5000): Promise<void> {
  for (const check of checks) {
    let body: Buffer
    try {
      const r = await c.next(ms)
      body = r.body
      if (r.status !== 200) {
        t.replies++
        t.other++
        continue
      }
    } catch {
      t.closedEarly++
      return
    }
    t.replies++
    const ok = check(body)
    if (ok === undefined) t.other++
    else if (!ok) t.mismatched++
  }
}

function pipelinedScrapes(server: 'http' | 'https'): Attack {
  return {
    name: '1.mixup.pipelined-scrapes',
    server,
    workers: 'both',
    fast: true,
    budgetS: 40,
    async run(ctx: Context) {
      const t = await ctx.tracker({protocol: 'http', tls: server === 'https'})
      const rounds = ctx.seconds(20, 10)
      const tally: Tally = {replies: 0, mismatched: 0, other: 0, expected: 2 * rounds, closedEarly: 0}
      for (let i = 0; i < rounds; i++) {
        const c = await openHttp(ctx, t.port, {tls: server === 'https'})
        // Workers take connections in turn: of each run of them, one answers from its own shard
        // and the others ask the mesh.
        const shard = Math.floor(i / ctx.workers) % ctx.workers
        const a = hashes(100, shard, ctx.workers)
        const b = hashes(100, shard, ctx.workers)
        c.send(GET(scrapePath(a)) + GET(scrapePath(b)))
        await readChecked(c, [body => scrapeMatches(body, a), body => scrapeMatches(body, b)], tally)
        c.close()
      }
      return verdict(tally, 'hashes of another scrape')
    },
  }
}

/**
 * Connections pipeline 100-hash scrapes one write at a time and do not read until all are sent:
 * about 2 MB of replies each, more than the kernel's socket buffers take on loopback, so replies
 * wait in the tracker while other clients' requests are answered.
 */
const slowReaderScrapes: Attack = {
  name: '1.mixup.slow-reader-scrapes',
  server: 'http',
  workers: 'both',
  budgetS: 90,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'http'})
    const connections = ctx.seconds(8, 6)
    const perConnection = ctx.seconds(300, 250)
    const conns = await Promise.all(Array.from({length: connections}, () => openHttp(ctx, t.port)))
    for (const c of conns) c.socket.pause()
    const asked = conns.map(() => [] as Buffer[][])
    for (let i = 0; i < perConnection; i++) {
      conns.forEach((c, k) => {
        const set = hashes(100, Math.floor(k / ctx.workers) % ctx.workers, ctx.workers)
        asked[k].push(set)
        c.send(GET(scrapePath(set)))
      })
      await sleep(2)
    }
    await sleep(500)
    const tally: Tally = {replies: 0, mismatched: 0, other: 0, expected: connections * perConnection, closedEarly: 0}
    for (const c of conns) c.socket.resume()
    await Promise.all(
      conns.map((c, k) =>
        readChecked(
          c,
          asked[k].map(set => (body: Buffer) => scrapeMatches(body, set)),
          tally,
        ),
      ),
    )
    return verdict(tally, 'hashes they did not ask for')
  },
}

/**
 * Non-compact announces (`compact=0`, peers as dictionaries with their ports) into many torrents,
 * each with peers on ports of its own, from slow readers: every peer of a reply must be of the
 * torrent asked for.
 */
const slowReaderNonCompact: Attack = {
  name: '1.mixup.non-compact-slow-reader',
  server: 'http',
  workers: 'both',
  budgetS: 90,
  async run(ctx) {
    // 150 peers per torrent: a dictionary reply of about 9 KB.
    const t = await ctx.tracker({protocol: 'http', config: {protocol: {max_response_peers: 200}}})
    const torrents = hashes(ctx.seconds(16, 8))
    const seeds = 150
    const firstPort = (torrent: number) => 2000 + 200 * torrent
    // Seeders, on four kept-alive connections, one request at a time.
    const seeders = await Promise.all(Array.from({length: 4}, () => openHttp(ctx, t.port)))
    await Promise.all(
      seeders.map(async (c, k) => {
        for (let i = k; i < torrents.length * seeds; i += seeders.length) {
          const torrent = Math.floor(i / seeds)
          c.send(GET(announcePath({infoHash: torrents[torrent], peerId: randomBytes(20), port: firstPort(torrent) + (i % seeds), left: 0})))
          await c.next()
        }
        c.close()
      }),
    )
    const connections = ctx.seconds(16, 8)
    const perConnection = ctx.seconds(60, 30)
    const conns = await Promise.all(Array.from({length: connections}, () => openHttp(ctx, t.port)))
    for (const c of conns) c.socket.pause()
    const peerIds = conns.map(() => torrents.map(() => randomBytes(20)))
    const asked = conns.map(() => [] as number[])
    for (let i = 0; i < perConnection; i++) {
      conns.forEach((c, k) => {
        const torrent = (i * 7 + k) % torrents.length
        asked[k].push(torrent)
        c.send(
          GET(
            announcePath({
              infoHash: torrents[torrent],
              peerId: peerIds[k][torrent],
              port: firstPort(torrent) + seeds + k,
              left: 1,
              numWant: 200,
              compact: false,
            }),
          ),
        )
      })
      await sleep(2)
    }
    await sleep(500)
    const tally: Tally = {replies: 0, mismatched: 0, other: 0, expected: connections * perConnection, closedEarly: 0}
    const ownPeers =
      (torrent: number) =>
      (body: Buffer): boolean | undefined => {
        let peers: {port: number}[]
        try {
          peers = decode(body).peers
        } catch {
          return undefined
        }
        if (!Array.isArray(peers) || peers.length < seeds) return undefined
        return peers.every(p => p.port >= firstPort(torrent) && p.port < firstPort(torrent) + 200)
      }
    for (const c of conns) c.socket.resume()
    await Promise.all(conns.map((c, k) => readChecked(c, asked[k].map(ownPeers), tally)))
    return verdict(tally, "another torrent's peers")
  },
}

export const MIXUP_ATTACKS: Attack[] = [pipelinedScrapes('http'), pipelinedScrapes('https'), slowReaderScrapes, slowReaderNonCompact]
