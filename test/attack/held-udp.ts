/**
 * UDP attacks that already held, kept so that they keep holding: forged connection ids get
 * silence, no reply is bigger than what was sent without a valid id, malformed packets of every
 * length get nothing or an error and never stop the tracker.
 */
import {randomBytes} from 'node:crypto'
import * as udp from '../../src/protocol/udp/index.js'
import {UdpClient} from '../harness.js'
import {sleep} from './net.js'
import type {Attack, Context} from './suite.js'
import type {Tracker} from './tracker.js'

/** Clients from 127.0.0.1-4, each on its own source port, counting every datagram they get. */
async function clients(ctx: Context, t: Tracker, count: number): Promise<{c: UdpClient; got: number; bytes: number}[]> {
  return Promise.all(
    Array.from({length: count}, async (_, i) => {
      const c = ctx.own(await UdpClient.open(4, t.port, `127.0.0.${1 + (i % 4)}`))
      const entry = {c, got: 0, bytes: 0}
      c.socket.on('message', m => {
        entry.got++
        entry.bytes += m.length
      })
      return entry
    }),
  )
}

function scrapeBytes(cid: Uint8Array, tid: number, n: number): Buffer {
  const b = Buffer.alloc(16 + 20 * n)
  udp.writeScrapeRequest(
    b,
    cid,
    tid,
    Array.from({length: n}, () => randomBytes(20)),
  )
  return b
}

const forgedIds: Attack = {
  name: 'held.udp-forged-ids',
  server: 'udp',
  workers: 'both',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'udp'})
    const list = await clients(ctx, t, 64)
    let sent = 0
    for (const e of list) {
      e.c.connectionId = randomBytes(8)
      for (let k = 0; k < 10; k++) {
        e.c.sendRaw(e.c.announceBytes({infoHash: randomBytes(20), peerId: randomBytes(20), port: 1000 + k}))
        e.c.sendRaw(scrapeBytes(e.c.connectionId, k, 1 + k))
        sent += 2
      }
      // Paced: the kernel's receive buffer must not be what drops them.
      await sleep(5)
    }
    await sleep(500)
    const replies = list.reduce((n, e) => n + e.got, 0)
    const dropped = await t.metric('tracker_dropped_total', {reason: 'bad_connection_id'})
    return {
      held: replies === 0 && dropped === sent,
      evidence: `${sent} announces and scrapes with forged ids from 64 ports: ${replies} replies; bad_connection_id drops ${dropped ?? '?'}`,
    }
  },
}

const amplification: Attack = {
  name: 'held.udp-amplification',
  server: 'udp',
  workers: 'any',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'udp'})
    const kinds: [string, (tid: number) => Buffer][] = [
      [
        'connect',
        tid => {
          const b = Buffer.alloc(16)
          udp.writeConnectRequest(b, tid)
          return b
        },
      ],
      [
        'forged-id announce',
        tid => {
          const b = Buffer.alloc(98)
          udp.writeAnnounceRequest(b, {
            connectionId: randomBytes(8),
            transactionId: tid,
            infoHash: randomBytes(20),
            peerId: randomBytes(20),
            downloaded: 0,
            left: 1,
            uploaded: 0,
            event: 2,
            numWant: 200,
            port: 6881,
          })
          return b
        },
      ],
      ['forged-id 70-hash scrape', tid => scrapeBytes(randomBytes(8), tid, 70)],
      ['garbage', () => randomBytes(1 + Math.floor(Math.random() * 200))],
    ]
    const parts: string[] = []
    let worst = 0
    for (const [name, make] of kinds) {
      const list = await clients(ctx, t, 8)
      let out = 0
      for (let k = 0; k < 50; k++) {
        for (const e of list) {
          const b = make(k)
          out += b.length
          e.c.sendRaw(b)
        }
        await sleep(2)
      }
      await sleep(300)
      const back = list.reduce((n, e) => n + e.bytes, 0)
      worst = Math.max(worst, back / out)
      parts.push(`${name} ${back}/${out} B`)
    }
    return {held: worst <= 1, evidence: `bytes back/sent without a valid id: ${parts.join(', ')}; worst ratio ${worst.toFixed(2)}`}
  },
}

/** Packets that are not a valid request, of length `n` (0..200), in five shapes. */
function malformed(n: number, cid: Uint8Array): Buffer[] {
  const shaped = (action: number): Buffer | null => {
    if (n < 16) return null
    const b = randomBytes(n)
    b.set(cid, 0)
    b.writeUInt32BE(action, 8)
    return b
  }
  const out: Buffer[] = [randomBytes(n)]
  // An announce: too short, or with an event that does not exist.
  const announce = shaped(udp.ACTION_ANNOUNCE)
  if (announce && n >= 98) announce.writeUInt32BE(0xffffffff, 80)
  // A scrape whose hash list is not whole (a whole one would be a valid scrape).
  const scrape = shaped((n - 16) % 20 === 0 && n > 16 ? 9 : udp.ACTION_SCRAPE)
  const clientError = shaped(udp.ACTION_ERROR)
  const connect = n >= 16 ? Buffer.alloc(n) : null
  if (connect) {
    udp.writeConnectRequest(connect, 1)
    connect.writeUInt32BE(7, 8)
  }
  for (const b of [announce, scrape, clientError, connect]) if (b) out.push(b)
  return out
}

const malformedPackets: Attack = {
  name: 'held.udp-malformed',
  server: 'udp',
  workers: 'both',
  fast: true,
  budgetS: 40,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'udp'})
    const list = await clients(ctx, t, 8)
    const cids = await Promise.all(list.map(e => e.c.connect()))
    // Count only what comes after the connect replies.
    for (const e of list) e.got = e.bytes = 0
    const replies: Buffer[] = []
    for (const e of list) e.c.socket.on('message', m => replies.push(m))
    let sent = 0
    for (let n = 0; n <= 200; n++) {
      list.forEach((e, i) => {
        if (i % 2 !== n % 2) return
        for (const b of malformed(n, cids[i])) {
          e.c.sendRaw(b)
          sent++
        }
      })
      await sleep(1)
    }
    await sleep(500)
    const answers = replies.length
    const errors = replies.filter(m => udp.parseResponse(m, m.length, 6)?.action === udp.ACTION_ERROR).length
    const legit = await list[0].c.announce({infoHash: randomBytes(20), peerId: randomBytes(20), port: 6881}).then(
      () => true,
      () => false,
    )
    return {
      held: t.alive && answers === errors && legit,
      evidence:
        `${sent} malformed packets of lengths 0-200: ${answers} replies, ${errors} of them errors; tracker ${t.alive ? 'alive' : 'dead'}, ` +
        `a valid announce ${legit ? 'answered' : 'NOT answered'} after; drops: ${await t.byReason('tracker_dropped_total')}`,
    }
  },
}

export const HELD_UDP_ATTACKS: Attack[] = [forgedIds, amplification, malformedPackets]
